package namm

import (
	"fmt"
	"math"

	"github.com/viterin/vek/vek32"

	"github.com/namm-dev/namm/internal/f32math"
)

// BAM sizes (namm-reference.md §2).
const (
	bamWidth = 32           // single-head attention width
	bamQKV   = 3 * bamWidth // 96
	bamOut   = 2 * FeatDims // 50: [r(25) ++ m(25)]
	// NumParams is the length of the flat parameter vector:
	// W_qkv 25x96, b_qkv 96, W_o 32x50, b_o 50, w 25, b 1.
	NumParams = FeatDims*bamQKV + bamQKV + bamWidth*bamOut + bamOut + FeatDims + 1
)

// Params are the BAM scorer's weights, shared by every layer and KV head.
// Matrices are [in][out] as in the reference's flat layout.
type Params struct {
	Wqkv [FeatDims][bamQKV]float32 // q, k, v = columns 0-31, 32-63, 64-95
	Bqkv [bamQKV]float32
	Wo   [bamWidth][bamOut]float32
	Bo   [bamOut]float32
	W    [FeatDims]float32
	B    float32
}

// ParamsFromFlat unpacks a flat vector in the reference order
// (W_qkv row-major in x out, b_qkv, W_o, b_o, w, b).
func ParamsFromFlat[T float32 | float64](flat []T) (Params, error) {
	var p Params
	if len(flat) != NumParams {
		return p, fmt.Errorf("namm: parameter vector has %d values, want %d", len(flat), NumParams)
	}
	for i, v := range flat {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return p, fmt.Errorf("namm: parameter %d is %v", i, v)
		}
	}
	i := 0
	next := func() float32 { v := float32(flat[i]); i++; return v }
	for r := range FeatDims {
		for c := range bamQKV {
			p.Wqkv[r][c] = next()
		}
	}
	for c := range bamQKV {
		p.Bqkv[c] = next()
	}
	for r := range bamWidth {
		for c := range bamOut {
			p.Wo[r][c] = next()
		}
	}
	for c := range bamOut {
		p.Bo[c] = next()
	}
	for c := range FeatDims {
		p.W[c] = next()
	}
	p.B = next()
	return p, nil
}

// Flat returns the parameters as a flat vector in the reference order.
func (p *Params) Flat() []float32 {
	out := make([]float32, 0, NumParams)
	for r := range FeatDims {
		out = append(out, p.Wqkv[r][:]...)
	}
	out = append(out, p.Bqkv[:]...)
	for r := range bamWidth {
		out = append(out, p.Wo[r][:]...)
	}
	out = append(out, p.Bo[:]...)
	out = append(out, p.W[:]...)
	return append(out, p.B)
}

// IsZero reports whether every parameter is zero (every score is then 0).
func (p *Params) IsZero() bool {
	for _, v := range p.Flat() {
		if v != 0 {
			return false
		}
	}
	return true
}

// Score runs BAM over the tokens of one (layer, KV head), x: [S][25] in
// chronological order, and returns one score per token; a token with a
// negative score is an eviction candidate.
//
// One attention layer, single head, width 32, with the backward mask: token
// i attends to tokens j >= i (itself and every newer token). Cost: about
// S^2 * 32 multiply-adds (S^2/2 for QK^T, S^2/2 for PV) and S^2/2 exps.
func Score(p *Params, x [][FeatDims]float32) []float32 {
	s := len(x)
	out := make([]float32, s)
	if s == 0 {
		return out
	}
	q := make([][bamWidth]float32, s)
	k := make([][bamWidth]float32, s)
	v := make([][bamWidth]float32, s)
	for i := range x {
		var acc [bamQKV]float32
		acc = p.Bqkv
		for r, xr := range x[i] {
			if xr == 0 {
				continue
			}
			w := &p.Wqkv[r]
			for c := range bamQKV {
				acc[c] += xr * w[c]
			}
		}
		copy(q[i][:], acc[:bamWidth])
		copy(k[i][:], acc[bamWidth:2*bamWidth])
		copy(v[i][:], acc[2*bamWidth:])
	}
	// The attention in blocks of scoreRows queries: the block's scores
	// against every newer token, [rows, m], and its output, [rows, 32], are
	// two row-major products (vek's AVX2 kernels), on a transposed copy of
	// the keys it sees (32*m values, 1/rows of the products' work).
	scale := float32(1 / math.Sqrt(bamWidth))
	qf := make([]float32, s*bamWidth)
	vf := make([]float32, s*bamWidth)
	for i := range s {
		for c := range bamWidth {
			qf[i*bamWidth+c] = q[i][c] * scale
		}
		copy(vf[i*bamWidth:], v[i][:])
	}
	kt := make([]float32, bamWidth*s)
	sc := make([]float32, scoreRows*s)
	att := make([]float32, scoreRows*bamWidth)
	negInf := float32(math.Inf(-1))
	for i0 := 0; i0 < s; i0 += scoreRows {
		rows, m := min(scoreRows, s-i0), s-i0
		for j := range m {
			for c := range bamWidth {
				kt[c*m+j] = k[i0+j][c]
			}
		}
		blk := sc[:rows*m]
		vek32.MatMul_Into(blk, qf[i0*bamWidth:(i0+rows)*bamWidth], kt[:bamWidth*m], bamWidth)
		for r := range rows {
			row := blk[r*m : (r+1)*m]
			for j := range r {
				row[j] = negInf // the backward mask: token i0+r sees tokens >= i0+r
			}
			mx := negInf
			for _, d := range row[r:] {
				mx = max(mx, d)
			}
			var sum float32
			for j, d := range row {
				e := f32math.ExpNeg(d - mx)
				row[j] = e
				sum += e
			}
			inv := 1 / sum
			for j := range row {
				row[j] *= inv
			}
		}
		vek32.MatMul_Into(att[:rows*bamWidth], blk, vf[i0*bamWidth:], m)
		for r := range rows {
			i := i0 + r
			var o [bamOut]float32
			o = p.Bo
			for c, a := range att[r*bamWidth : (r+1)*bamWidth] {
				w := &p.Wo[c]
				for u := range bamOut {
					o[u] += a * w[u]
				}
			}
			var sco float32
			for f, xf := range x[i] {
				h := xf*(1+o[FeatDims+f]) + o[f]
				sco += h * p.W[f]
			}
			out[i] = sco + p.B
		}
	}
	return out
}

// scoreRows is the query block of Score.
const scoreRows = 64
