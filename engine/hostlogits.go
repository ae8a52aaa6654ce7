package engine

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The LM head on the host. On the pure-Go backend a decoded token's logits
// (V x D multiply-adds: 8.2 M for a 32,000-token vocabulary at D = 256,
// twice the work of all six layers of the 15M shape) ran in simplego's
// generic small-matmul kernel at ~0.5 GFMA/s per core. gonum's float32
// matrix-vector product (SSE dot products) over the same host-shared
// weights, rows split across the cores, is several times faster.

// useHostLogits reports whether logits are computed on the host: the
// pure-Go backend (its buffers are the host's) with float32 weights.
func (e *Engine) useHostLogits() bool {
	return e.hostCache() && e.Weights.DType == dtypes.Float32
}

// hostLogits applies the final RMSNorm and the LM head to row `row` of the
// hidden states x [T, D] -> [V], as model.Logits computes them (RMSNorm in
// float32 as transformers does; the head's rows are vocabulary entries in
// order, model.HeadGroups' padding after the last).
func (e *Engine) hostLogits(x *tensors.Tensor, row int) ([]float32, error) {
	cfg := e.Config
	d, v := cfg.HiddenSize, cfg.VocabSize
	h := make([]float32, d)
	if err := tensors.ConstFlatData(x, func(flat []float32) {
		copy(h, flat[row*d:(row+1)*d])
	}); err != nil {
		return nil, fmt.Errorf("engine: reading the hidden states: %w", err)
	}
	var ss float32
	for _, a := range h {
		ss += a * a
	}
	inv := float32(1 / math.Sqrt(float64(ss/float32(d))+cfg.RMSNormEps))
	if err := tensors.ConstFlatData(e.Weights.Norm, func(w []float32) {
		for i := range h {
			h[i] = (h[i] * inv) * w[i]
		}
	}); err != nil {
		return nil, fmt.Errorf("engine: reading the final norm: %w", err)
	}
	logits := make([]float32, v)
	err := tensors.ConstFlatData(e.Weights.Head, func(w []float32) {
		parts := min(runtime.GOMAXPROCS(0), 8)
		per := (v + parts - 1) / parts
		var wg sync.WaitGroup
		for r0 := 0; r0 < v; r0 += per {
			r1 := min(v, r0+per)
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := blas32.General{Rows: r1 - r0, Cols: d, Stride: d, Data: w[r0*d : r1*d]}
				blas32.Gemv(blas.NoTrans, 1, a, blas32.Vector{N: d, Inc: 1, Data: h}, 0, blas32.Vector{N: r1 - r0, Inc: 1, Data: logits[r0:r1]})
			}()
		}
		wg.Wait()
	})
	if err != nil {
		return nil, fmt.Errorf("engine: reading the LM head: %w", err)
	}
	return logits, nil
}
