package namm

import (
	"fmt"
	"math"

	"github.com/viterin/vek/vek32"

	"github.com/namm-dev/namm/internal/mat"
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
	// q, k, v [S, 96] = x W_qkv + b: one product through MulStrided's
	// kernel (96 columns, three blocks of 32, on this goroutine: callers run
	// the KV heads in parallel).
	xf := make([]float32, s*FeatDims)
	for i := range x {
		copy(xf[i*FeatDims:], x[i][:])
	}
	wqkv := make([]float32, 0, FeatDims*bamQKV)
	for r := range FeatDims {
		wqkv = append(wqkv, p.Wqkv[r][:]...)
	}
	qkv := make([]float32, s*bamQKV)
	mat.MulStrided(qkv, xf, wqkv, s, FeatDims, bamQKV, bamQKV)
	scale := float32(1 / math.Sqrt(bamWidth))
	ld := mat.PaddedStride(s)
	qf := make([]float32, s*bamWidth)  // scaled queries [S, 32]
	kt := make([]float32, bamWidth*ld) // keys, transposed [32, S], rows ld apart
	vf := make([]float32, s*bamWidth)  // values [S, 32]
	for i := range s {
		row := qkv[i*bamQKV : (i+1)*bamQKV]
		vek32.Add_Inplace(row, p.Bqkv[:])
		vek32.MulNumber_Into(qf[i*bamWidth:(i+1)*bamWidth], row[:bamWidth], scale)
		for c, v := range row[bamWidth : 2*bamWidth] {
			kt[c*ld+i] = v
		}
		copy(vf[i*bamWidth:], row[2*bamWidth:])
	}
	wo := make([]float32, 0, bamWidth*bamOut)
	for r := range bamWidth {
		wo = append(wo, p.Wo[r][:]...)
	}

	// The attention in blocks of scoreRows queries: the block's scores
	// against every newer token, [rows, m], and its output, [rows, 32], with
	// mat.MulStrided (on the window of the transposed keys the block sees,
	// and on the newer tokens' values), which takes these shapes (32 wide, m
	// long) at 1.5-2.4x vek's product's speed per core. Callers run the KV
	// heads in parallel.
	sc := make([]float32, scoreRows*s)
	att := make([]float32, scoreRows*bamWidth)
	o := make([]float32, scoreRows*bamOut)
	for i0 := 0; i0 < s; i0 += scoreRows {
		rows, m := min(scoreRows, s-i0), s-i0
		blk := sc[:rows*m]
		mat.MulStrided(blk, qf[i0*bamWidth:(i0+rows)*bamWidth], kt[i0:], rows, bamWidth, m, ld)
		for r := range rows {
			// The backward mask: token i0+r sees tokens i0+r and newer, the
			// row's columns r and on; the ones before it get exactly 0.
			row := blk[r*m : (r+1)*m]
			seen := row[r:]
			vek32.SubNumber_Inplace(seen, vek32.Max(seen))
			vek32.MaximumNumber_Inplace(seen, -87) // float32's exp underflows below
			vek32.Exp_Inplace(seen)
			vek32.MulNumber_Inplace(seen, 1/vek32.Sum(seen))
			clear(row[:r])
		}
		mat.MulStrided(att[:rows*bamWidth], blk, vf[i0*bamWidth:], rows, m, bamWidth, bamWidth)
		mat.MulInto(o[:rows*bamOut], att[:rows*bamWidth], wo, rows, bamWidth, bamOut)
		for r := range rows {
			i := i0 + r
			or := o[r*bamOut : (r+1)*bamOut]
			var sco float32
			for f, xf := range x[i] {
				h := xf*(1+or[FeatDims+f]+p.Bo[FeatDims+f]) + or[f] + p.Bo[f]
				sco += h * p.W[f]
			}
			out[i] = sco + p.B
		}
	}
	return out
}

// scoreRows is the query block of Score.
const scoreRows = 64
