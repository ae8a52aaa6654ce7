package engine

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/viterin/vek/vek32"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/namm-dev/namm/engine/kvcache"
	"github.com/namm-dev/namm/internal/mat"
	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/model"
)

// Attention on the host. With the projections on the host (hostproj.go),
// what was left of a layer's graph on the pure-Go backend was model.Attend,
// and its two products, q.K and P.V, ran in simplego's generic matrix
// kernel at ~0.4-0.7 GFMA/s: 8.7 ms of CPU time per decoded token at a 1k
// cache, more than all the projections. hostAttend computes the same
// attention in Go over the host-shared cache (matrix products with vek's
// AVX2 kernels, see hostAttend), attends only to the slots in use (not the
// whole capacity bucket), and derives the statistics a policy asked for
// from the probabilities it already has.
// A policy's device state (the NAMM's features) is still updated by its
// own graph (stateExec), from the rows hostAttend returns. model.Attend
// stays the reference: TestHostAttentionMatchesGraph compares the two with
// evicting policies, and the golden parity tests run this path.

// probsPool holds hostPass.probs buffers between passes.
var probsPool sync.Pool

// hostPass is a pass's per-token inputs, on the host.
type hostPass struct {
	t int // width (real tokens, then padding)
	// probs is scratch for hostAttend's probabilities, reused by every
	// layer of the pass and, through probsPool, by later passes (16 MB per
	// layer in a 4k prefill's late chunks: allocating it per pass cost a
	// serial clear of the memory each time, a tenth of an 8k prefill).
	probs    []float32
	qpos     []int32   // [T], -1 for padding
	cos, sin []float32 // [T, H/2]
	qw       []float32 // [2, T]: real queries, last real query
	// workers for hostAttend's loops over heads and query rows (0: all
	// cores; 1 when the batch runs its sequences' attention in parallel).
	workers int
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

// ropeRow rotates one head's vector x [H] in place with transformers'
// rotate_half convention (first half, second half), as model's rope.
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
//
// Per KV head the G query heads' T queries are G*T rows (g major). Their
// probabilities are kept as pc [G*T, used] over the cache slots in use and
// pn [G*T, T] over the pass's tokens. A pass of several tokens computes
// its products with the cache and with its own T tokens through mulRows
// (the cache's keys and values as per-pass copies: the keys transposed, the
// values untransposed).
// One decoding token's products are matrix-vector shaped: there gonum's
// dot products over the cache serve.
func (e *Engine) hostAttend(lc *kvcache.Layer, qkv []float32, p *hostPass, mask model.StatMask, wantRows bool) (*hostAttention, error) {
	cfg := e.Config
	nh, kh, hd, grp := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.GroupSize()
	t, c, used := p.t, lc.Capacity, lc.Used
	gt := grp * t
	width := (nh + 2*kh) * hd
	half := hd / 2
	scale := float32(1 / math.Sqrt(float64(hd)))

	q := make([]float32, t*nh*hd) // [T, N, H], rotated and scaled
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

	var kc, vc []float32
	var pos []int32
	err := flat32(lc.K, func(d []float32) { kc = d })
	if err == nil {
		err = flat32(lc.V, func(d []float32) { vc = d })
	}
	if err == nil {
		err = tensors.ConstFlatData(lc.Pos, func(d []int32) { pos = d })
	}
	if err != nil {
		return nil, err
	}
	// The backend shares these buffers with Go; nothing writes them while
	// the pass runs (appendKV comes after), so reading outside the callbacks
	// is safe here.
	// Every value of pc and pn is written before it is read: no clearing.
	if need := kh * gt * (used + t); cap(p.probs) < need {
		// Sized for the whole capacity: `used` grows every chunk of a
		// prefill, the capacity in steps.
		p.probs = make([]float32, need, kh*gt*(c+t))
	}
	pc := p.probs[:kh*gt*used]                 // [K, G*T, used]
	pn := p.probs[kh*gt*used : kh*gt*(used+t)] // [K, G*T, T]
	sm := &softmax{qpos: p.qpos, win: int32(cfg.SlidingWindow)}
	if t == 1 {
		// One query per head: q.K is `used` dots of H values, P.V is H dots
		// of `used` values along V's rows ([K, H, C]).
		par.For(nh, p.workers, func(h int) {
			k, g := h/grp, h%grp
			qv := q[h*hd : (h+1)*hd]
			cr, nr := pc[(k*grp+g)*used:(k*grp+g+1)*used], pn[k*grp+g:k*grp+g+1]
			if used > 0 {
				blas32.Gemv(blas.NoTrans, 1, blas32.General{Rows: used, Cols: hd, Stride: hd, Data: kc[k*c*hd:]},
					blas32.Vector{N: hd, Inc: 1, Data: qv}, 0, blas32.Vector{N: used, Inc: 1, Data: cr})
			}
			nr[0] = vek32.Dot(qv, r.newK[k*hd:(k+1)*hd])
			sm.row(pos[k*c:k*c+used], cr, nr, p.qpos[0], true)
			out := r.attn[h*hd : (h+1)*hd]
			for i := range hd {
				vrow := vc[(k*hd+i)*c:]
				var a float32
				if used > 0 {
					a = vek32.Dot(cr, vrow[:used])
				}
				out[i] = a + nr[0]*r.newV[k*hd+i]
			}
		})
	} else {
		ldk := mat.PaddedStride(used)
		qk := make([]float32, gt*hd)   // a KV head's queries [G*T, H]
		kt := make([]float32, hd*ldk)  // its cache keys, transposed [H, used], rows ldk apart
		knt := make([]float32, hd*t)   // its new keys, transposed [H, T]
		vnt := make([]float32, t*hd)   // its new values [T, H]
		vt := make([]float32, used*hd) // its cache values [used, H]
		ok := make([]float32, gt*hd)   // its output [G*T, H]
		on := make([]float32, gt*hd)
		for k := range kh {
			for g := range grp {
				for tt := range t {
					copy(qk[(g*t+tt)*hd:(g*t+tt+1)*hd], q[(tt*nh+k*grp+g)*hd:])
				}
			}
			transpose(knt, r.newK[k*t*hd:], t, hd, hd, t)
			transpose(vnt, r.newV[k*hd*t:], hd, t, t, hd)
			kpc, kpn := pc[k*gt*used:(k+1)*gt*used], pn[k*gt*t:(k+1)*gt*t]
			if used > 0 {
				transpose(kt, kc[k*c*hd:], used, hd, hd, ldk)
				mulRows(kpc, qk, kt, gt, hd, used, ldk, p.workers)
			}
			mulRows(kpn, qk, knt, gt, hd, t, t, p.workers)
			kpos := pos[k*c : k*c+used]
			mc := !sm.cacheVisible(kpos)
			par.For(gt, p.workers, func(i int) {
				sm.row(kpos, kpc[i*used:(i+1)*used], kpn[i*t:(i+1)*t], p.qpos[i%t], mc)
			})
			clear(ok)
			if used > 0 {
				transpose(vt, vc[k*hd*c:], hd, used, c, hd)
				mulRows(ok, kpc, vt, gt, used, hd, hd, p.workers)
			}
			mulRows(on, kpn, vnt, gt, t, hd, hd, p.workers)
			vek32.Add_Inplace(ok, on)
			for g := range grp {
				for tt := range t {
					copy(r.attn[(tt*nh+k*grp+g)*hd:(tt*nh+k*grp+g+1)*hd], ok[(g*t+tt)*hd:])
				}
			}
		}
	}

	n := c + t // the statistics' key axis: the cache slots, then the pass
	var rowsT *tensors.Tensor
	if mask&(model.StatColSums|model.StatLastRow|model.StatRows) != 0 || wantRows {
		// rows [K, T, C+T]: the probabilities averaged over the group's query
		// heads; slots from `used` to C are empty and stay zero.
		if mask&model.StatRows != 0 {
			// Written in place in the statistic's own tensor: a copy of
			// megabytes per layer saved in a long prefill.
			rowsT = tensors.FromShape(shapes.Make(dtypes.Float32, kh, t, n))
			tensors.MustMutableFlatData(rowsT, func(d []float32) { r.rows = d })
		} else {
			r.rows = make([]float32, kh*t*n)
		}
		inv := 1 / float32(grp)
		workers := p.workers
		if t == 1 {
			workers = 1 // a decoded token's few rows: not worth waking a core
		}
		par.For(kh*t, workers, func(kr int) {
			k, tt := kr/t, kr%t
			dst := r.rows[kr*n : (kr+1)*n]
			for g := range grp {
				i := k*gt + g*t + tt
				vek32.Add_Inplace(dst[:used], pc[i*used:(i+1)*used])
				vek32.Add_Inplace(dst[c:], pn[i*t:(i+1)*t])
			}
			vek32.MulNumber_Inplace(dst, inv)
		})
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
		r.stats = append(r.stats, rowsT)
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

// mulRows is mat.MulStrided (dst [rows, m] = a [rows, n] times b [n, m],
// b's rows stride apart) over blocks of rows in parallel: a prefill chunk's
// products with the cache, q.K on the keys transposed and P.V on the
// values, as per-pass copies (used*H values, 1/rows of the work). vek's
// product slows down past the last multiple of 8 columns (a NAMM's cache is
// seldom one) and for an output only H wide.
func mulRows(dst, a, b []float32, rows, n, m, stride, workers int) {
	const blk = 16
	par.For((rows+blk-1)/blk, workers, func(i int) {
		r0 := i * blk
		r1 := min(rows, r0+blk)
		mat.MulStrided(dst[r0*m:r1*m], a[r0*n:r1*n], b, r1-r0, n, m, stride)
	})
}

// transpose writes dst [cols, rows] = src [rows, cols] (src rows `stride`
// apart, dst rows `ld` apart).
func transpose(dst, src []float32, rows, cols, stride, ld int) {
	for i := range rows {
		for j, v := range src[i*stride : i*stride+cols] {
			dst[j*ld+i] = v
		}
	}
}

// softmax turns one query's scores over the cache slots in use and the
// pass's tokens into probabilities, in place, hiding the keys the query
// cannot see (empty or evicted slots, later tokens, outside the window).
type softmax struct {
	qpos []int32 // the pass's positions, -1 for padding
	win  int32   // sliding window, 0 for none
}

func (sm *softmax) visible(kp, qp int32) bool {
	return kp >= 0 && kp <= qp && (sm.win <= 0 || kp > qp-sm.win)
}

// cacheVisible reports whether every query of the pass sees every slot in
// kpos: no empty or evicted slot in use, no window, all older than the
// pass (the usual case; the per-slot checks are then skipped).
func (sm *softmax) cacheVisible(kpos []int32) bool {
	if sm.win > 0 {
		return false
	}
	first := int32(math.MaxInt32)
	for _, qp := range sm.qpos {
		if qp >= 0 {
			first = min(first, qp)
		}
	}
	for _, kp := range kpos {
		if kp < 0 || kp >= first {
			return false
		}
	}
	return true
}

// row normalises a query at position qp: cache scores cr (slots at
// positions kpos) and pass scores nr. maskCache false skips the cache's
// visibility checks (see cacheVisible). A padding query gets zeros: its
// output is never read.
func (sm *softmax) row(kpos []int32, cr, nr []float32, qp int32, maskCache bool) {
	if qp < 0 {
		clear(cr)
		clear(nr)
		return
	}
	// Hidden keys score -Inf until the exp, and 0 after it; the rest runs
	// as vector operations (vek's AVX2 exp, ~1e-7 relative, on inputs
	// clamped at -87, where float32's exp underflows).
	negInf := float32(math.Inf(-1))
	if maskCache {
		for s, kp := range kpos {
			if !sm.visible(kp, qp) {
				cr[s] = negInf
			}
		}
	}
	for j, kp := range sm.qpos {
		if !sm.visible(kp, qp) {
			nr[j] = negInf
		}
	}
	m := vek32.Max(nr)
	if len(cr) > 0 {
		m = max(m, vek32.Max(cr))
	}
	var den float32
	for _, part := range [][]float32{cr, nr} {
		if len(part) == 0 {
			continue
		}
		vek32.SubNumber_Inplace(part, m)
		vek32.MaximumNumber_Inplace(part, -87)
		vek32.Exp_Inplace(part)
		den += vek32.Sum(part)
	}
	// exp(-87) is 1.6e-38, not 0: hidden keys get exactly 0, as in the
	// graph (their share of den is below float32's resolution).
	if maskCache {
		for s, kp := range kpos {
			if !sm.visible(kp, qp) {
				cr[s] = 0
			}
		}
	}
	for j, kp := range sm.qpos {
		if !sm.visible(kp, qp) {
			nr[j] = 0
		}
	}
	inv := 1 / den
	if len(cr) > 0 {
		vek32.MulNumber_Inplace(cr, inv)
	}
	vek32.MulNumber_Inplace(nr, inv)
}

// forwardHost runs one pass of each sequence with every layer on the host
// (hostProjections). The sequences' rows are stacked so that each weight is
// read once for all of them: the projections, the SwiGLU and the LM head
// run over every row at once (matVecs), the attention per sequence over
// its own cache, with its own statistics and policy state. Each row gets
// the same arithmetic in any batch, so a sequence's results do not depend
// on what it is batched with (TestBatchMatchesAlone).
func (e *Engine) forwardHost(seqs []*Session, ins []*passInput) ([]passOutput, error) {
	cfg := e.Config
	d, kh, hd := cfg.HiddenSize, cfg.NumKVHeads, cfg.HeadDim
	off := make([]int, len(seqs)) // first row of each sequence
	rows := 0
	for i, in := range ins {
		off[i] = rows
		rows += in.width
	}
	x := make([]float32, rows*d)
	hp := make([]*hostPass, len(seqs))
	var decoding, wide []int // sequences by pass width: one token, more
	for i, in := range ins {
		copy(x[off[i]*d:], in.embed)
		hp[i] = &hostPass{t: in.width, qpos: in.qpos, cos: in.cos, sin: in.sin, qw: in.qw}
		if b, ok := probsPool.Get().(*[]float32); ok {
			hp[i].probs = *b
		}
		if in.width == 1 {
			decoding = append(decoding, i)
		} else {
			wide = append(wide, i)
		}
	}
	if len(decoding) > 1 {
		for _, i := range decoding {
			hp[i].workers = 1
		}
	}
	defer func() {
		for _, p := range hp {
			if p.probs != nil {
				probsPool.Put(&p.probs)
			}
		}
	}()
	outs := make([]passOutput, len(seqs))
	for i := range outs {
		outs[i].stats = make([][]*tensors.Tensor, cfg.NumLayers)
	}
	stateEx := make([]*graph.Exec, len(seqs))
	for i, s := range seqs {
		if s.dev != nil {
			var err error
			if stateEx[i], err = e.stateExec(s.dev); err != nil {
				return nil, err
			}
		}
	}
	qkvWidth := (cfg.NumHeads + 2*kh) * hd
	nq := cfg.NumHeads * hd
	attn := make([]float32, rows*nq)
	for l := range cfg.NumLayers {
		qkv, err := e.hostLayerIn(l, x, rows)
		if err != nil {
			return nil, fmt.Errorf("engine: layer %d: %w", l, err)
		}
		attended := make([]*hostAttention, len(seqs))
		errs := make([]error, len(seqs))
		attend := func(i int) {
			s, in := seqs[i], ins[i]
			a, err := e.hostAttend(&s.cache.Layers[l], qkv[off[i]*qkvWidth:(off[i]+in.width)*qkvWidth], hp[i], in.mask, s.dev != nil)
			if err != nil {
				errs[i] = fmt.Errorf("engine: layer %d: %w", l, err)
				return
			}
			copy(attn[off[i]*nq:], a.attn)
			attended[i] = a
		}
		// Decoding rows' attention is a few small products per head: one
		// goroutine per sequence keeps the cores busy, where each sequence's
		// own loop over heads would wake them for microseconds of work.
		// Wider passes (prefill chunks) split their heads and rows instead.
		par.For(len(decoding), 0, func(j int) { attend(decoding[j]) })
		for _, i := range wide {
			attend(i)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for i, s := range seqs {
			in, a, lc := ins[i], attended[i], &s.cache.Layers[l]
			if s.dev != nil {
				key := fmt.Sprintf("state/%s/t%d/c%d/w%d", s.dev.StateKind(), in.width, lc.Capacity, len(in.ctl))
				rowsT := tensors.FromFlatDataAndDimensions(a.rows, kh, in.width, lc.Capacity+in.width)
				ctlT := tensors.FromFlatDataAndDimensions(in.ctl, len(in.ctl))
				out, err := e.timed(key, stateEx[i], rowsT, lc.Feat, ctlT, int32(lc.Used))
				if err != nil {
					return nil, fmt.Errorf("engine: layer %d: policy state: %w", l, err)
				}
				lc.Feat = out[0]
			}
			outs[i].stats[l] = a.stats
			newK := tensors.FromFlatDataAndDimensions(a.newK, kh, in.width, hd)
			newV := tensors.FromFlatDataAndDimensions(a.newV, kh, hd, in.width)
			if err := s.appendKV(lc, newK, newV, in.qpos, nil); err != nil {
				return nil, fmt.Errorf("engine: layer %d: appending to the cache: %w", l, err)
			}
			lc.AppendIndex(in.qpos[:in.nReal])
		}
		if err := e.hostLayerOut(l, x, rows, attn); err != nil {
			return nil, fmt.Errorf("engine: layer %d: %w", l, err)
		}
	}
	var last []int // rows whose logits are wanted, and their sequences
	var who []int
	for i, in := range ins {
		seqs[i].hidden = tensors.FromFlatDataAndDimensions(append([]float32(nil), x[off[i]*d:(off[i]+in.width)*d]...), in.width, d)
		if in.wantLogits {
			last = append(last, off[i]+in.nReal-1)
			who = append(who, i)
		}
	}
	if len(last) > 0 {
		logits, err := e.hostLogits(x, last)
		if err != nil {
			return nil, err
		}
		for j, i := range who {
			outs[i].logits = logits[j]
		}
	}
	return outs, nil
}
