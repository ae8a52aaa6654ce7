package engine

import (
	"fmt"
	"math"
	"runtime"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/internal/mat"
	"github.com/namm-dev/namm/internal/par"
)

// Projections on the host. On the pure-Go backend simplego's matrix
// kernels run a layer's projections (q/k/v, output, gate/up, down) at
// ~0.5-1.5 GFMA/s per core. With float32 weights the engine runs each layer
// on the host instead: the RMSNorms, the projections and the SwiGLU in Go
// over the host-shared weights (project: matrix-vector products for one
// row, internal/mat's AVX2 products for several), and the attention the
// same way (hostattn.go); only a policy's state update stays a graph.
// The final norm and the LM head, V x D
// multiply-adds per token (8.2 M for a 32,000-token vocabulary at D = 256,
// twice the six layers of the 15M shape), run the same way. The graph path
// (model.Layer, model.Logits) stays the reference and the GPU's.

// hostProjections reports whether layers and the LM head run their
// projections on the host (see above).
func (e *Engine) hostProjections() bool {
	return e.hostCache() && e.Weights.DType == dtypes.Float32 && !e.graphLayers
}

// prefillWidth is the rows of a prefill pass of n tokens: the chunk size
// where every shape is a compiled graph, but on the host only n rounded up
// to 16 (a short prompt no longer runs a whole chunk of padding through
// every projection).
func (e *Engine) prefillWidth(n int) int {
	cs := e.opts.ChunkSize
	if !e.hostProjections() {
		return cs
	}
	return min(cs, (n+15)/16*16)
}

// flat32 calls f with t's float32 data (shared with the backend: no copy).
func flat32(t *tensors.Tensor, f func([]float32)) error {
	return tensors.ConstFlatData(t, f)
}

// rmsNormRows is model.RMSNorm over the rows of x [T, D] in float32.
func rmsNormRows(x []float32, d int, w []float32, eps float64) []float32 {
	out := make([]float32, len(x))
	for r := 0; r < len(x); r += d {
		var ss float32
		for _, a := range x[r : r+d] {
			ss += a * a
		}
		inv := float32(1 / math.Sqrt(float64(ss/float32(d))+eps))
		for i, a := range x[r : r+d] {
			out[r+i] = (a * inv) * w[i]
		}
	}
	return out
}

// matVecs is y = x W^T + beta y for rows x [B, in] and W [out, in]
// row-major (beta 0, or 1 for a residual): on every core a block of W's
// rows, each row read once for a block of x's rows that stays in cache
// (mat.Dots). Decoding rows and prefill chunks of every sequence of a batch
// go through it together, so a step reads each weight once, and a row's
// arithmetic (mat.Dots') is the same in any batch. BenchmarkDotsAgainstMulInto
// (internal/mat, 2-core EPYC): a [768, 256] weight over 16 and 32 rows,
// Dots on one core 4.6x and 2.3x faster than vek's matrix product on two;
// over 128 rows 0.6x, about even per core.
func matVecs(x []float32, b, in int, w []float32, out int, y []float32, beta float32) {
	parts := min(runtime.GOMAXPROCS(0), 8, max(1, out/64))
	per := (out + parts - 1) / parts
	blk := max(4, min(b, (128<<10)/(4*in))) // rows of x per 128 KiB
	par.For(parts, parts, func(i int) {
		dots := make([]float32, min(b, blk))
		for r0 := 0; r0 < b; r0 += blk {
			n := min(blk, b-r0)
			xs, d := x[r0*in:(r0+n)*in], dots[:n]
			for o := i * per; o < min(out, (i+1)*per); o++ {
				mat.Dots(d, w[o*in:(o+1)*in], xs)
				for r, v := range d {
					at := (r0+r)*out + o
					if beta != 0 {
						v += beta * y[at]
					}
					y[at] = v
				}
			}
		}
	})
}

// project is y = x W^T + beta y for x [rows, in] and a weight W [out, in]
// (beta 0, or 1 for a residual), W as it is.
func project(x []float32, rows, in int, w *tensors.Tensor, out int, y []float32, beta float32) error {
	return flat32(w, func(wd []float32) {
		matVecs(x[:rows*in], rows, in, wd[:out*in], out, y[:rows*out], beta)
	})
}

// hostLayerIn computes layer l's q/k/v projection [T, (N+2K)*H] of the
// hidden states x [T, D] on the host (RMSNorm, matrix product, biases).
func (e *Engine) hostLayerIn(l int, x []float32, rows int) ([]float32, error) {
	cfg := e.Config
	lw := &e.Weights.Layers[l]
	d, t := cfg.HiddenSize, rows
	nq, nkv := cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	out := nq + 2*nkv
	qkv := make([]float32, t*out)
	var h []float32
	if err := flat32(lw.AttnNorm, func(w []float32) { h = rmsNormRows(x, d, w, cfg.RMSNormEps) }); err != nil {
		return nil, err
	}
	if err := project(h, t, d, lw.Wqkv, out, qkv, 0); err != nil {
		return nil, err
	}
	if lw.Bq != nil {
		for i, b := range []*tensors.Tensor{lw.Bq, lw.Bk, lw.Bv} {
			off := []int{0, nq, nq + nkv}[i]
			if err := flat32(b, func(bias []float32) {
				for r := range t {
					row := qkv[r*out+off : r*out+off+len(bias)]
					for j, v := range bias {
						row[j] += v
					}
				}
			}); err != nil {
				return nil, err
			}
		}
	}
	return qkv, nil
}

// hostLayerOut finishes layer l on the host from its attention attn
// [T, N*H]: x += attn Wo^T, then x += down(silu(gate) * up) of the
// RMSNormed x, in place.
func (e *Engine) hostLayerOut(l int, x []float32, rows int, a []float32) error {
	cfg := e.Config
	lw := &e.Weights.Layers[l]
	d, inter, nq, t := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHeads*cfg.HeadDim, rows
	if err := project(a, t, nq, lw.Wo, d, x, 1); err != nil {
		return err
	}
	var h []float32
	if err := flat32(lw.MLPNorm, func(w []float32) { h = rmsNormRows(x, d, w, cfg.RMSNormEps) }); err != nil {
		return err
	}
	gu := make([]float32, t*2*inter)
	if err := project(h, t, d, lw.Wgu, 2*inter, gu, 0); err != nil {
		return err
	}
	act := make([]float32, t*inter)
	// The exps cost as much as a small projection: rows in parallel.
	par.For(t, 0, func(r int) {
		g, u := gu[r*2*inter:r*2*inter+inter], gu[r*2*inter+inter:(r+1)*2*inter]
		for i := range inter {
			// silu(g) = g * sigmoid(g), as the graph's Mul(gate, Sigmoid(gate)).
			sig := float32(1 / (1 + math.Exp(-float64(g[i]))))
			act[r*inter+i] = (g[i] * sig) * u[i]
		}
	})
	return project(act, t, inter, lw.Wdown, d, x, 1)
}

// hostLogits applies the final RMSNorm and the LM head to the listed rows
// of the hidden states x [T, D] -> [len(rows)][V], as model.Logits computes
// them, reading the head once for all rows. The head's rows are vocabulary
// entries in order (model.HeadGroups pads after the last), so its first V
// rows are the [V, D] matrix.
func (e *Engine) hostLogits(x []float32, rows []int) ([][]float32, error) {
	cfg := e.Config
	d, v := cfg.HiddenSize, cfg.VocabSize
	h := make([]float32, len(rows)*d)
	for i, r := range rows {
		copy(h[i*d:(i+1)*d], x[r*d:(r+1)*d])
	}
	if err := flat32(e.Weights.Norm, func(w []float32) { h = rmsNormRows(h, d, w, cfg.RMSNormEps) }); err != nil {
		return nil, fmt.Errorf("engine: reading the final norm: %w", err)
	}
	flat := make([]float32, len(rows)*v)
	if err := flat32(e.Weights.Head, func(w []float32) { matVecs(h, len(rows), d, w[:v*d], v, flat, 0) }); err != nil {
		return nil, fmt.Errorf("engine: reading the LM head: %w", err)
	}
	out := make([][]float32, len(rows))
	for i := range rows {
		out[i] = flat[i*v : (i+1)*v : (i+1)*v]
	}
	return out, nil
}
