package model

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
)

// Attention over a batch axis. Attend runs once per sequence, each on its
// own cache: on a GPU a small model's step is bound by kernel launches, so
// B sequences would cost about B times the kernels of one. Sequences of one
// width, with caches of one size, that ask for the same statistics and all
// carry policy state or none (a fused run of the full cache, of one
// baseline, or of a population of NAMMs) attend once for all of them
// (attendBatch): scores, softmax and the products over one more axis. What
// is each sequence's own (its statistics, its policy's state update) is
// then taken from its slice of the attention rows.

// batchable reports whether LayerBatch may attend to all its sequences at
// once (see above).
func batchable(sts []LayerState, ins []PassInputs, stats []StatMask) bool {
	if len(ins) < 2 {
		return false
	}
	t, s := ins[0].X.Shape().Dimensions[0], sts[0].K.Shape().Dimensions[1]
	for i := range ins {
		if stats[i] != stats[0] || (sts[i].Feat == nil) != (sts[0].Feat == nil) ||
			ins[i].X.Shape().Dimensions[0] != t || sts[i].K.Shape().Dimensions[1] != s {
			return false
		}
	}
	return true
}

// attendBatch is Attend for B sequences that batchable accepts, from the
// stacked projections q [B*T, N*H], k and v [B*T, K*H] (biases added, in
// sequence order), stats being every sequence's statistics. It returns the
// attention output [B*T, N*H] and each sequence's LayerOutputs but X. Each
// sequence's values are Attend's: the same operations in the same order,
// over one more axis.
func attendBatch(cfg *Config, q, k, v *Node, sts []LayerState, ins []PassInputs, stats StatMask) (*Node, []LayerOutputs) {
	dt := q.DType()
	b := len(ins)
	t := ins[0].X.Shape().Dimensions[0]
	nh, kh, hd, grp := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.GroupSize()
	slots := sts[0].K.Shape().Dimensions[1]
	stackRows := func(f func(i int) *Node) *Node { // [B, ...] from B nodes
		ns := make([]*Node, b)
		for i := range ns {
			ns[i] = InsertAxes(f(i), 0)
		}
		return Concatenate(ns, 0)
	}
	cos := Reshape(stackRows(func(i int) *Node { return ins[i].Cos }), b*t, hd/2)
	sin := Reshape(stackRows(func(i int) *Node { return ins[i].Sin }), b*t, hd/2)
	q = rope(Reshape(q, b*t, nh, hd), cos, sin)
	k = rope(Reshape(k, b*t, kh, hd), cos, sin)
	kT := TransposeAllAxes(Reshape(k, b, t, kh, hd), 0, 2, 1, 3)    // [B, K, T, H]
	vT := TransposeAllAxes(Reshape(v, b, t, kh, hd), 0, 2, 3, 1)    // [B, K, H, T]
	kc := stackRows(func(i int) *Node { return sts[i].K })          // [B, K, S, H]
	vc := stackRows(func(i int) *Node { return sts[i].V })          // [B, K, H, S]
	pc := stackRows(func(i int) *Node { return sts[i].Pos })        // [B, K, S]
	qpos := stackRows(func(i int) *Node { return ins[i].QueryPos }) // [B, T]

	visC := visible(BroadcastToDims(Reshape(pc, b, kh, 1, slots), b, kh, t, slots),
		BroadcastToDims(Reshape(qpos, b, 1, t, 1), b, kh, t, slots), cfg.SlidingWindow)
	visN := visible(BroadcastToDims(Reshape(qpos, b, 1, t), b, t, t),
		BroadcastToDims(Reshape(qpos, b, t, 1), b, t, t), cfg.SlidingWindow)

	scale := 1 / math.Sqrt(float64(hd))
	qg := Reshape(ConvertDType(MulScalar(ConvertDType(q, dtypes.Float32), scale), dt), b, t, kh, grp, hd)
	sC := ConvertDType(Einsum("btkgh,bksh->bkgts", qg, kc), dtypes.Float32)
	sN := ConvertDType(Einsum("btkgh,bkuh->bkgtu", qg, kT), dtypes.Float32)
	sC = Add(sC, BroadcastToDims(Reshape(maskBias(visC), b, kh, 1, t, slots), b, kh, grp, t, slots))
	sN = Add(sN, BroadcastToDims(Reshape(maskBias(visN), b, 1, 1, t, t), b, kh, grp, t, t))
	sm := newSplitSoftmax(sC, sN, dt)
	needRows := stats&(StatColSums|StatLastRow|StatRows) != 0 || sts[0].Feat != nil
	var attn, pC, pN *Node
	if t == 1 || needRows {
		// As Attend: normalised before P.V, rounded to the model's dtype.
		pC, pN = sm.probs(sm.eC, sC), sm.probs(sm.eN, sN)
		attn = Add(Einsum("bkgts,bkhs->btkgh", pC, vc), Einsum("bkgtu,bkhu->btkgh", pN, vT))
	} else {
		attn = Add(Einsum("bkgts,bkhs->btkgh", ConvertDType(sm.eC, dt), vc), Einsum("bkgtu,bkhu->btkgh", ConvertDType(sm.eN, dt), vT))
		inv := ConvertDType(TransposeAllAxes(Reciprocal(sm.den), 0, 3, 1, 2), dt) // [B, T, K, G]
		attn = Mul(attn, BroadcastToDims(InsertAxes(inv, -1), b, t, kh, grp, hd))
	}
	var rows *Node // [B, K, T, S+T]
	if needRows {
		groupMean := func(p *Node) *Node { return ReduceMean(ConvertDType(p, dtypes.Float32), 2) }
		rows = Concatenate([]*Node{groupMean(pC), groupMean(pN)}, -1)
	}
	outs := make([]LayerOutputs, b)
	for i := range outs {
		var r *Node
		if rows != nil {
			r = Reshape(Slice(rows, AxisElem(i)), kh, t, slots+t)
		}
		outs[i] = attendOutputs(Reshape(Slice(kT, AxisElem(i)), kh, t, hd), Reshape(Slice(vT, AxisElem(i)), kh, hd, t), r, sts[i], ins[i], stats)
	}
	return Reshape(attn, b*t, nh*hd), outs
}
