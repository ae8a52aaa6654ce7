package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"math"
	"runtime"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/namm-dev/namm/model"
)

// Attention on the host. With the projections on the host (hostproj.go),
// what was left of a layer's graph on the pure-Go backend was model.Attend,
// and its two products, q.K and P.V, ran in simplego's generic matrix
// kernel at ~0.4-0.7 GFMA/s: 8.7 ms of CPU time per decoded token at a 1k
// cache, more than all the projections. hostAttend computes the same
// attention with gonum's float32 GEMM over the host-shared cache, attends
// only to the slots in use (not the whole capacity bucket), and derives
// the statistics a policy asked for from the probabilities it already has.
// A policy's device state (the NAMM's features) is still updated by its
// own graph (stateExec), from the rows hostAttend returns. model.Attend
// stays the reference: TestHostAttentionMatchesGraph compares the two with
// evicting policies, and the golden parity tests run this path.

// hostPass is a pass's per-token inputs, on the host.
type hostPass struct {
	t        int       // width (real tokens, then padding)
	qpos     []int32   // [T], -1 for padding
	cos, sin []float32 // [T, H/2]
	qw       []float32 // [2, T]: real queries, last real query
}

// hostAttention is what hostAttend returns for one layer.
type hostAttention struct {
	attn       []float32 // [T, N*H], before the output projection
	newK, newV []float32 // [K, T, H] (rotated), [K, H, T]
	// rows [K, T, C+T] are the probabilities averaged over each KV group's
	// query heads (nil unless statistics or device state need them).
	rows  []float32
	stats []*tensors.Tensor // in StatMask bit order, as model.Attend's
}

// ropeRows rotates x [T, heads*H] (row stride `stride`, from offset off)
// in place with transformers' rotate_half convention, as model's rope.
func ropeRow(x, cos, sin []float32) {
	half := len(cos)
	for i := range half {
		x1, x2 := x[i], x[half+i]
		x[i] = x1*cos[i] - x2*sin[i]
		x[half+i] = x2*cos[i] + x1*sin[i]
	}
}

// hostAttend is model.Attend for layer cache lc on the host: qkv is the
// layer's q/k/v projection [T, (N+2K)*H], biases added.
func (e *Engine) hostAttend(lc *layerCache, qkv []float32, p *hostPass, mask model.StatMask, wantRows bool) (*hostAttention, error) {
	cfg := e.Config
	nh, kh, hd, grp := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.GroupSize()
	t, c, used := p.t, lc.capacity, lc.used
	n := c + t // the statistics' key axis: the cache slots, then the pass
	width := (nh + 2*kh) * hd
	half := hd / 2
	scale := float32(1 / math.Sqrt(float64(hd)))

	q := make([]float32, t*nh*hd)
	r := &hostAttention{attn: make([]float32, t*nh*hd), newK: make([]float32, kh*t*hd), newV: make([]float32, kh*hd*t)}
	for tt := range t {
		row := qkv[tt*width : (tt+1)*width]
		cs, sn := p.cos[tt*half:(tt+1)*half], p.sin[tt*half:(tt+1)*half]
		for h := range nh {
			qh := q[(tt*nh+h)*hd : (tt*nh+h+1)*hd]
			copy(qh, row[h*hd:(h+1)*hd])
			ropeRow(qh, cs, sn)
			for i := range qh {
				qh[i] *= scale // after RoPE, as model.Attend scales q
			}
		}
		for k := range kh {
			kk := r.newK[(k*t+tt)*hd : (k*t+tt+1)*hd]
			copy(kk, row[(nh+k)*hd:(nh+k+1)*hd])
			ropeRow(kk, cs, sn)
			for i, v := range row[(nh+kh+k)*hd : (nh+kh+k+1)*hd] {
				r.newV[(k*hd+i)*t+tt] = v
			}
		}
	}

	// probs [K, G, T, C+T]; slots from `used` to C are empty and stay zero.
	probs := make([]float32, kh*grp*t*n)
	var kc, vc []float32
	var pos []int32
	err := flat32(lc.k, func(d []float32) { kc = d })
	if err == nil {
		err = flat32(lc.v, func(d []float32) { vc = d })
	}
	if err == nil {
		err = tensors.ConstFlatData(lc.pos, func(d []int32) { pos = d })
	}
	if err != nil {
		return nil, err
	}
	// The backend shares these buffers with Go; nothing writes them while
	// the pass runs (appendKV comes after), so reading outside the callbacks
	// is safe here.
	win := int32(cfg.SlidingWindow)
	visible := func(kp, qp int32) bool {
		return kp >= 0 && kp <= qp && (win <= 0 || kp > qp-win)
	}
	head := func(h int) {
		k, g := h/grp, h%grp
		pr := probs[(k*grp+g)*t*n:]
		qm := blas32.General{Rows: t, Cols: hd, Stride: nh * hd, Data: q[h*hd:]}
		kn := blas32.General{Rows: t, Cols: hd, Stride: hd, Data: r.newK[k*t*hd:]}
		if used > 0 {
			kcm := blas32.General{Rows: used, Cols: hd, Stride: hd, Data: kc[k*c*hd:]}
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, qm, kcm, 0, blas32.General{Rows: t, Cols: used, Stride: n, Data: pr})
		}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, qm, kn, 0, blas32.General{Rows: t, Cols: t, Stride: n, Data: pr[c:]})
		kpos := pos[k*c : k*c+used]
		for tt := range t {
			row := pr[tt*n : (tt+1)*n]
			qp := p.qpos[tt]
			if qp < 0 {
				clear(row) // a padding query: its output is never read
				continue
			}
			m := float32(math.Inf(-1))
			for s, kp := range kpos {
				if visible(kp, qp) {
					m = max(m, row[s])
				}
			}
			for j, kp := range p.qpos {
				if visible(kp, qp) {
					m = max(m, row[c+j])
				}
			}
			var den float32
			for s, kp := range kpos {
				if visible(kp, qp) {
					row[s] = float32(math.Exp(float64(row[s] - m)))
					den += row[s]
				} else {
					row[s] = 0
				}
			}
			for j, kp := range p.qpos {
				if visible(kp, qp) {
					row[c+j] = float32(math.Exp(float64(row[c+j] - m)))
					den += row[c+j]
				} else {
					row[c+j] = 0
				}
			}
			inv := 1 / den
			for s := range used {
				row[s] *= inv
			}
			for j := range t {
				row[c+j] *= inv
			}
		}
		om := blas32.General{Rows: t, Cols: hd, Stride: nh * hd, Data: r.attn[h*hd:]}
		if used > 0 {
			vcm := blas32.General{Rows: hd, Cols: used, Stride: c, Data: vc[k*hd*c:]}
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, blas32.General{Rows: t, Cols: used, Stride: n, Data: pr}, vcm, 0, om)
		}
		vn := blas32.General{Rows: hd, Cols: t, Stride: t, Data: r.newV[k*hd*t:]}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, blas32.General{Rows: t, Cols: t, Stride: n, Data: pr[c:]}, vn, 1, om)
	}
	parallel(nh, head)

	if mask&(model.StatColSums|model.StatLastRow|model.StatRows) != 0 || wantRows {
		r.rows = make([]float32, kh*t*n)
		inv := 1 / float32(grp)
		for k := range kh {
			for tt := range t {
				dst := r.rows[(k*t+tt)*n : (k*t+tt+1)*n]
				for g := range grp {
					src := probs[((k*grp+g)*t+tt)*n : ((k*grp+g)*t+tt+1)*n]
					for i, v := range src {
						dst[i] += v
					}
				}
				for i := range dst {
					dst[i] *= inv
				}
			}
		}
	}
	weighted := func(w []float32) *tensors.Tensor { // sum over queries of w[t] rows[k, t, :]
		out := make([]float32, kh*n)
		for k := range kh {
			for tt, wt := range w {
				if wt == 0 {
					continue
				}
				for i, v := range r.rows[(k*t+tt)*n : (k*t+tt+1)*n] {
					out[k*n+i] += wt * v
				}
			}
		}
		return tensors.FromFlatDataAndDimensions(out, kh, n)
	}
	if mask&model.StatColSums != 0 {
		r.stats = append(r.stats, weighted(p.qw[:t]))
	}
	if mask&model.StatLastRow != 0 {
		r.stats = append(r.stats, weighted(p.qw[t:]))
	}
	if mask&model.StatRows != 0 {
		r.stats = append(r.stats, tensors.FromFlatDataAndDimensions(r.rows, kh, t, n))
	}
	if mask&model.StatKeyNorms != 0 {
		norms := make([]float32, kh*t)
		for i := range norms {
			var ss float32
			for _, v := range r.newK[i*hd : (i+1)*hd] {
				ss += v * v
			}
			norms[i] = float32(math.Sqrt(float64(ss)))
		}
		r.stats = append(r.stats, tensors.FromFlatDataAndDimensions(norms, kh, t))
	}
	return r, nil
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// forwardHost runs a pass with every layer on the host (hostProjections):
// forwardLayers' contract, with a graph only for a policy's state update.
func (s *Session) forwardHost(mask model.StatMask, nReal, width int, xt, cosT, sinT, qposT, qwT, ctlT *tensors.Tensor, qpos []int32, wantLogits bool) ([][]*tensors.Tensor, []float32, error) {
	e := s.e
	xh, err := tensors.CopyFlatData[float32](xt)
	if err != nil {
		return nil, nil, err
	}
	p := &hostPass{t: width, qpos: qpos}
	for _, f := range []struct {
		dst *[]float32
		src *tensors.Tensor
	}{{&p.cos, cosT}, {&p.sin, sinT}, {&p.qw, qwT}} {
		if *f.dst, err = tensors.CopyFlatData[float32](f.src); err != nil {
			return nil, nil, err
		}
	}
	var stateEx *graph.Exec
	if s.dev != nil {
		if stateEx, err = e.stateExec(s.dev); err != nil {
			return nil, nil, err
		}
	}
	statsOut := make([][]*tensors.Tensor, len(s.layers))
	kh, hd := e.Config.NumKVHeads, e.Config.HeadDim
	for l := range s.layers {
		lc := &s.layers[l]
		qkv, err := e.hostLayerIn(l, xh, width)
		if err != nil {
			return nil, nil, fmt.Errorf("engine: layer %d: %w", l, err)
		}
		a, err := e.hostAttend(lc, qkv, p, mask, s.dev != nil)
		if err != nil {
			return nil, nil, fmt.Errorf("engine: layer %d: %w", l, err)
		}
		if s.dev != nil {
			key := fmt.Sprintf("state/%s/t%d/c%d/w%d", s.dev.StateKind(), width, lc.capacity, ctlT.Shape().Size())
			rows := tensors.FromFlatDataAndDimensions(a.rows, kh, width, lc.capacity+width)
			out, err := e.timed(key, stateEx, rows, lc.feat, ctlT, int32(lc.used))
			if err != nil {
				return nil, nil, fmt.Errorf("engine: layer %d: policy state: %w", l, err)
			}
			lc.feat = out[0]
		}
		if err := e.hostLayerOut(l, xh, width, a.attn); err != nil {
			return nil, nil, fmt.Errorf("engine: layer %d: %w", l, err)
		}
		statsOut[l] = a.stats
		newK := tensors.FromFlatDataAndDimensions(a.newK, kh, width, hd)
		newV := tensors.FromFlatDataAndDimensions(a.newV, kh, hd, width)
		if err := s.appendKV(lc, newK, newV, qpos, qposT); err != nil {
			return nil, nil, fmt.Errorf("engine: layer %d: appending to the cache: %w", l, err)
		}
		lc.appendIndex(qpos[:nReal])
	}
	s.x = tensors.FromFlatDataAndDimensions(xh, width, e.Config.HiddenSize)
	if !wantLogits {
		return statsOut, nil, nil
	}
	logits, err := e.hostLogits(s.x, nReal-1)
	return statsOut, logits, err
}
