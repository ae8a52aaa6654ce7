package model

import (
	"math"
	"math/bits"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Shapes use the repository's einsum alphabet (see package policy):
// T new tokens, S cache slots (the capacity C of a bucket), N query heads,
// K KV heads, G = N/K, H head dim, D model dim, I MLP width, V vocabulary.

// StatMask selects the attention statistics a layer graph returns.
type StatMask uint8

const (
	StatColSums  StatMask = 1 << iota // [K, S]
	StatLastRow                       // [K, S]
	StatRows                          // [K, T, S]
	StatKeyNorms                      // [K, T]
)

// Count is the number of statistics selected.
func (m StatMask) Count() int { return bits.OnesCount8(uint8(m)) }

// LayerWeights are one decoder layer's weight nodes. Matrices are Hugging
// Face's [out, in] ones split by rows into G groups, [G, out/G, in] (see
// RowGroups); q, k and v are fused, gate and up are the two groups of one.
type LayerWeights struct {
	AttnNorm   *Node // [D]
	Wqkv       *Node // [G, (N+2K)*H/G, D]: rows of q, then k, then v
	Bq, Bk, Bv *Node // [N*H], [K*H], [K*H] or nil
	Wo         *Node // [G, D/G, N*H]
	MLPNorm    *Node // [D]
	Wgu        *Node // [2, I, D]: gate, up
	Wdown      *Node // [G, D/G, I]
}

// LayerState is one layer's cache in a graph: K, V and the original
// position of each slot (-1 for an empty or evicted slot).
type LayerState struct {
	K   *Node // [K, S, H]
	V   *Node // [K, H, S] (transposed: P.V then streams contiguous rows)
	Pos *Node // [K, S] int32
	// Feat [K, S, W] float32 is a memory policy's per-token state (see
	// policy.DeviceState), or nil.
	Feat *Node
}

// PassInputs describe the pass's new tokens.
type PassInputs struct {
	X        *Node // [T, D] hidden states
	Cos, Sin *Node // [T, H/2] RoPE tables for the tokens' positions
	QueryPos *Node // [T] int32 absolute positions; -1 for padding
	// QueryWeights [2, T] float32: row 0 is 1 for real (not padding)
	// queries, row 1 is one-hot on the last real query.
	QueryWeights *Node
	// With LayerState.Feat: UpdateState builds the state update from the
	// pass's attention rows (policy.DeviceState.UpdateState), StateCtl is its
	// control vector, and WriteAt (int32 scalar) the slot where the pass's
	// tokens are appended.
	UpdateState func(rows, state, ctl, writeAt *Node) *Node
	StateCtl    *Node
	WriteAt     *Node
}

// LayerOutputs are the results of one layer on one pass. The pass's keys and
// values are returned, not written: the caller appends them to the cache
// (in place on the host for the pure-Go backend, with a donated
// DynamicUpdateSlice on XLA), so no pass copies the whole cache.
type LayerOutputs struct {
	X    *Node // [T, D]
	NewK *Node // [K, T, H]
	NewV *Node // [K, H, T]
	// Stats in StatMask bit order, those asked for. Attention statistics
	// cover S+T keys: the cache slots, then the pass's own tokens.
	Stats []*Node
	// Feat [K, S, W] is the updated per-token state, the pass's tokens
	// written at slot WriteAt (nil without LayerState.Feat).
	Feat *Node
}

// RMSNorm as transformers computes it: in float32, then cast, then weight.
func RMSNorm(x, w *Node, eps float64) *Node {
	dt := x.DType()
	x32 := ConvertDType(x, dtypes.Float32)
	ms := ReduceAndKeep(Square(x32), ReduceMean, -1)
	y := Mul(x32, Rsqrt(AddScalar(ms, eps)))
	y = ConvertDType(y, dt)
	return Mul(y, bcastLeft(w, y.Shape().Dimensions...))
}

// linear computes x W^T for x [T, in] and W grouped [G, out/G, in] -> [T, out].
// One token runs the groups as a batch (one core each on the pure-Go
// backend); several tokens contract W as the one [out, in] matrix it is.
func linear(x, w *Node) *Node {
	t, in := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	g, r := w.Shape().Dimensions[0], w.Shape().Dimensions[1]
	if t == 1 && g > 1 {
		xb := BroadcastToDims(InsertAxes(x, 0), g, 1, in)
		return Reshape(Einsum("ntd,nrd->ntr", xb, w), 1, g*r)
	}
	return Reshape(Einsum("td,nrd->tnr", x, w), t, g*r)
}

// addBias adds b [out] to y [T, out] when b is not nil.
func addBias(y, b *Node) *Node {
	if b == nil {
		return y
	}
	return Add(y, bcastLeft(b, y.Shape().Dimensions...))
}

// directOutputs is the most outputs per batch entry for which the pure-Go
// backend's matmul takes its direct path; above it, it re-blocks both
// operands on every call (for one decoding token, the whole K cache).
const directOutputs = 16384

// cacheScores is q.K for qg [T, K, G, H] and the K cache [K, S, H] ->
// [K, G, T, S]. When few queries meet a long cache (decoding), the cache is
// cut into nc chunks along S that are batch entries of the matmul, so that
// each has at most directOutputs outputs; the reshape of the cache is one
// contiguous copy.
//
// The same layout is kept on XLA: there the plain einsum made XLA drop its
// Triton softmax for separate reductions (more kernels per decoded token)
// and decode was no faster (docs/performance.md, "Tried and reverted").
func cacheScores(qg, k *Node) *Node {
	dims := qg.Shape().Dimensions
	t, kh, grp, hd := dims[0], dims[1], dims[2], dims[3]
	s := k.Shape().Dimensions[1]
	rows := grp * t
	if rows*s <= directOutputs || rows > 64 {
		return Einsum("tkgh,ksh->kgts", qg, k)
	}
	nc := (rows*s + directOutputs - 1) / directOutputs
	for s%nc != 0 || rows*(s/nc) > directOutputs {
		nc++
	}
	kc := Reshape(k, kh, nc, s/nc, hd)
	qb := BroadcastToDims(InsertAxes(TransposeAllAxes(qg, 1, 2, 0, 3), 1), kh, nc, grp, t, hd)
	sc := Einsum("kcgth,kcuh->kcgtu", qb, kc) // [K, nc, G, T, S/nc]
	return Reshape(TransposeAllAxes(sc, 0, 2, 3, 1, 4), kh, grp, t, s)
}

// rope rotates x [T, heads, H] by the angles whose cos and sin are [T, H/2],
// with transformers' rotate_half convention (first half, second half).
func rope(x, cos, sin *Node) *Node {
	dims := x.Shape().Dimensions
	t, heads, h := dims[0], dims[1], dims[2]
	half := h / 2
	c := BroadcastToDims(InsertAxes(cos, 1), t, heads, half)
	s := BroadcastToDims(InsertAxes(sin, 1), t, heads, half)
	x1 := Slice(x, AxisRange(), AxisRange(), AxisRange(0, half))
	x2 := Slice(x, AxisRange(), AxisRange(), AxisRange(half, h))
	o1 := Sub(Mul(x1, c), Mul(x2, s))
	o2 := Add(Mul(x2, c), Mul(x1, s))
	return Concatenate([]*Node{o1, o2}, 2)
}

// Layer is one decoder layer over a pass: attention to the cache and to the
// pass's own tokens (causal), then the SwiGLU MLP.
func Layer(cfg *Config, w LayerWeights, st LayerState, in PassInputs, stats StatMask) LayerOutputs {
	return LayerBatch(cfg, w, []LayerState{st}, []PassInputs{in}, []StatMask{stats})[0]
}

// LayerBatch is Layer over the passes of several sequences: their rows
// (ins[i].X [T_i, D]) are stacked so that each projection and the MLP run
// as one product per weight, and each sequence attends to its own cache
// sts[i] with its own positions, masks and statistics stats[i] (nothing of
// one sequence reaches another's attention; sequences that need nothing of
// their own attend over one batch axis, attendBatch). It returns each
// sequence's outputs, X being its rows.
func LayerBatch(cfg *Config, w LayerWeights, sts []LayerState, ins []PassInputs, stats []StatMask) []LayerOutputs {
	nh, kh, hd := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim
	rows := make([]int, len(ins)+1) // sequence i's rows are [rows[i], rows[i+1])
	xs := make([]*Node, len(ins))
	for i, in := range ins {
		xs[i] = in.X
		rows[i+1] = rows[i] + in.X.Shape().Dimensions[0]
	}
	x := stack(xs)
	h := RMSNorm(x, w.AttnNorm, cfg.RMSNormEps)
	qkv := linear(h, w.Wqkv) // [T, (N+2K)*H]
	var outs []LayerOutputs
	var attn *Node
	if batchable(sts, ins, stats) {
		part := func(from, to int) *Node { return Slice(qkv, AxisRange(), AxisRange(from, to)) }
		attn, outs = attendBatch(cfg, addBias(part(0, nh*hd), w.Bq), addBias(part(nh*hd, (nh+kh)*hd), w.Bk),
			addBias(part((nh+kh)*hd, (nh+2*kh)*hd), w.Bv), sts, ins, stats[0])
	} else {
		outs = make([]LayerOutputs, len(ins))
		attns := make([]*Node, len(ins))
		for i := range ins {
			part := func(from, to int) *Node { return Slice(qkv, AxisRange(rows[i], rows[i+1]), AxisRange(from, to)) }
			q := addBias(part(0, nh*hd), w.Bq)
			k := addBias(part(nh*hd, (nh+kh)*hd), w.Bk)
			v := addBias(part((nh+kh)*hd, (nh+2*kh)*hd), w.Bv)
			attns[i], outs[i] = Attend(cfg, q, k, v, sts[i], ins[i], stats[i])
		}
		attn = stack(attns)
	}
	x = Add(x, linear(attn, w.Wo))

	h = RMSNorm(x, w.MLPNorm, cfg.RMSNormEps)
	inter := cfg.IntermediateSize
	gu := linear(h, w.Wgu) // [T, 2*I]
	gate := Slice(gu, AxisRange(), AxisRange(0, inter))
	up := Slice(gu, AxisRange(), AxisRange(inter, 2*inter))
	x = Add(x, linear(Mul(Mul(gate, Sigmoid(gate)), up), w.Wdown))
	for i := range outs {
		outs[i].X = x
		if len(ins) > 1 {
			outs[i].X = Slice(x, AxisRange(rows[i], rows[i+1]))
		}
	}
	return outs
}

// stack concatenates row blocks [T_i, ...] along the rows (one block: as
// it is).
func stack(xs []*Node) *Node {
	if len(xs) == 1 {
		return xs[0]
	}
	return Concatenate(xs, 0)
}

// Attend is a layer's attention from its projections q [T, N*H], k and v
// [T, K*H] (biases added): RoPE, attention to the cache and to the pass's
// own tokens (causal), the statistics asked for and the policy's state
// update. It returns the attention output [T, N*H], before the output
// projection, and every LayerOutputs field but X. Layer runs it between
// its projections. (With float32 weights on the pure-Go backend the engine
// runs a layer on the host instead, engine/hostattn.go, and is tested
// against this.)
func Attend(cfg *Config, q, k, v *Node, st LayerState, in PassInputs, stats StatMask) (*Node, LayerOutputs) {
	dt := q.DType()
	t := q.Shape().Dimensions[0]
	nh, kh, hd, grp := cfg.NumHeads, cfg.NumKVHeads, cfg.HeadDim, cfg.GroupSize()
	slots := st.K.Shape().Dimensions[1]
	q = Reshape(q, t, nh, hd)
	k = Reshape(k, t, kh, hd)
	v = Reshape(v, t, kh, hd)
	q = rope(q, in.Cos, in.Sin)
	k = rope(k, in.Cos, in.Sin)
	kT := TransposeAllAxes(k, 1, 0, 2) // [K, T, H]
	vT := TransposeAllAxes(v, 1, 2, 0) // [K, H, T]

	// Visibility masks as additive biases: cache slots [K, T, S] and the
	// pass's tokens [T, T]. A key is visible when it holds a token at or
	// before the query's position (and inside the sliding window, if any).
	visC := visible(BroadcastToDims(InsertAxes(st.Pos, 1), kh, t, slots),
		BroadcastToDims(InsertAxes(in.QueryPos, 0, -1), kh, t, slots), cfg.SlidingWindow)
	visN := visible(BroadcastToDims(InsertAxes(in.QueryPos, 0), t, t),
		BroadcastToDims(InsertAxes(in.QueryPos, -1), t, t), cfg.SlidingWindow)

	// Scale q (T*N*H values) rather than the scores (N*T*(S+T) values).
	scale := 1 / math.Sqrt(float64(hd))
	qg := Reshape(ConvertDType(MulScalar(ConvertDType(q, dtypes.Float32), scale), dt), t, kh, grp, hd) // [T, K, G, H]
	sC := ConvertDType(cacheScores(qg, st.K), dtypes.Float32)
	sN := ConvertDType(Einsum("tkgh,kuh->kgtu", qg, kT), dtypes.Float32)
	sC = Add(sC, BroadcastToDims(InsertAxes(maskBias(visC), 1), kh, grp, t, slots))
	sN = Add(sN, BroadcastToDims(InsertAxes(maskBias(visN), 0, 0), kh, grp, t, t))
	sm := newSplitSoftmax(sC, sN, dt)
	// needRows: a policy reads the attention probabilities (averaged over
	// each group's query heads).
	needRows := stats&(StatColSums|StatLastRow|StatRows) != 0 || st.Feat != nil
	var attn, pC, pN *Node
	if t == 1 || needRows {
		// Normalised before P.V. For one token this is few values, and P.V's
		// output then feeds the output projection directly (normalising after
		// P.V made XLA fuse the scaling into an elementwise product with the
		// whole Wo weight, written to memory). When rows are needed, P.V and
		// the rows read the same rounded probabilities: one copy of them, not
		// a second float32 one laid out for the group mean.
		pC, pN = sm.probs(sm.eC, sC), sm.probs(sm.eN, sN)
		attn = Add(Einsum("kgts,khs->tkgh", pC, st.V), Einsum("kgtu,khu->tkgh", pN, vT))
	} else {
		// Several tokens, no rows: the 1/sum normalisation after P.V, on H
		// values per query instead of S+T.
		attn = Add(Einsum("kgts,khs->tkgh", ConvertDType(sm.eC, dt), st.V), Einsum("kgtu,khu->tkgh", ConvertDType(sm.eN, dt), vT))
		inv := ConvertDType(TransposeAllAxes(Reciprocal(sm.den), 2, 0, 1), dt) // [T, K, G]
		attn = Mul(attn, BroadcastToDims(InsertAxes(inv, -1), t, kh, grp, hd))
	}
	attn = Reshape(attn, t, nh*hd)

	var rows *Node // [K, T, S+T], query heads of each group averaged
	if needRows {
		// Averaged per part (cache, pass), then joined: the joined
		// [K, G, T, S+T] probabilities would be a full extra copy.
		groupMean := func(p *Node) *Node { return ReduceMean(ConvertDType(p, dtypes.Float32), 1) }
		rows = Concatenate([]*Node{groupMean(pC), groupMean(pN)}, -1)
	}
	return attn, attendOutputs(kT, vT, rows, st, in, stats)
}

// attendOutputs is a sequence's LayerOutputs but X from its pass's keys kT
// [K, T, H], values vT [K, H, T] and attention rows [K, T, S+T] (query heads
// of each group averaged; nil when neither its statistics nor its policy
// state read them): the state update and the statistics asked for.
func attendOutputs(kT, vT, rows *Node, st LayerState, in PassInputs, stats StatMask) LayerOutputs {
	t := kT.Shape().Dimensions[1]
	out := LayerOutputs{NewK: kT, NewV: vT}
	if st.Feat != nil {
		out.Feat = updateFeat(st.Feat, rows, in)
	}
	if stats&(StatColSums|StatLastRow|StatRows) != 0 {
		if stats&StatColSums != 0 {
			valid := Reshape(Slice(in.QueryWeights, AxisElem(0)), t)
			out.Stats = append(out.Stats, WeightedSum(rows, valid, 1))
		}
		if stats&StatLastRow != 0 {
			last := Reshape(Slice(in.QueryWeights, AxisElem(1)), t)
			out.Stats = append(out.Stats, WeightedSum(rows, last, 1))
		}
		if stats&StatRows != 0 {
			out.Stats = append(out.Stats, rows)
		}
	}
	if stats&StatKeyNorms != 0 {
		k32 := ConvertDType(kT, dtypes.Float32)
		out.Stats = append(out.Stats, Sqrt(ReduceSum(Square(k32), -1))) // [K, T]
	}
	return out
}

// splitSoftmax is the softmax over the cache slots and the pass's tokens
// together, without concatenating them: from float32 scores sC [..., S] and
// sN [..., T] (masked), their exponentials less the joint maximum m and the
// joint sum den [...].
type splitSoftmax struct {
	eC, eN, m, den *Node
	dt             dtypes.DType // the model's
	logDen         *Node        // m + log(den), built when first needed
}

func newSplitSoftmax(sC, sN *Node, dt dtypes.DType) *splitSoftmax {
	sm := &splitSoftmax{dt: dt, m: Max(ReduceMax(sC, -1), ReduceMax(sN, -1))}
	sm.eC = Exp(Sub(sC, overLast(sm.m, sC)))
	sm.eN = Exp(Sub(sN, overLast(sm.m, sN)))
	sm.den = Add(ReduceSum(sm.eC, -1), ReduceSum(sm.eN, -1))
	return sm
}

// overLast broadcasts x [...] over the last axis of like [..., n].
func overLast(x, like *Node) *Node {
	return BroadcastToDims(InsertAxes(x, -1), like.Shape().Dimensions...)
}

// probs normalises one part's exponentials e (scores s) over both parts and
// rounds them to the model's dtype, as transformers' eager attention does
// (and the reference NAMM and baselines read those rounded values,
// namm-reference.md §1).
//
// In a narrower dtype than float32 they are computed from the scores as
// exp(s - m - log(den)) instead of e/den: a different expression from the e
// of den's sum, so XLA recomputes the exponential from the scores (which it
// reads anyway) instead of writing e in float32 and reading it twice more
// (for the rounded probabilities and for the rows). The two differ by ~1e-7
// relative, far below the rounding to the model's dtype. In float32 it
// stays e/den, exactly what the host path computes.
func (sm *splitSoftmax) probs(e, s *Node) *Node {
	if sm.dt == dtypes.Float32 || !probsFromScores {
		return ConvertDType(Div(e, overLast(sm.den, e)), sm.dt)
	}
	if sm.logDen == nil {
		sm.logDen = Add(sm.m, Log(sm.den))
	}
	return ConvertDType(Exp(Sub(s, overLast(sm.logDen, s))), sm.dt)
}

// visible is where a key at position kp may be seen from a query at qp
// (same shapes): the key holds a token (kp >= 0) at or before the query,
// and inside the sliding window if the model has one.
func visible(kp, qp *Node, window int) *Node {
	vis := LogicalAnd(GreaterOrEqual(kp, ZerosLike(kp)), LessOrEqual(kp, qp))
	if window > 0 {
		vis = LogicalAnd(vis, GreaterThan(kp, SubScalar(qp, window)))
	}
	return vis
}

// maskBias turns visibility into an additive float32 bias: 0 where
// visible, -1e30 elsewhere.
func maskBias(vis *Node) *Node {
	return MulScalar(ConvertDType(LogicalNot(vis), dtypes.Float32), -1e30)
}

// probsFromScores selects exp(s - m - log(den)) for the rounded
// probabilities in dtypes narrower than float32 (see Attend); tests turn it
// off to compare with e/den.
var probsFromScores = true

// WeightedSum is sum_b w[b] x[..., b, ...] over axis of x (w: [the size of
// that axis]), as a multiply and a sum in x's dtype. As a product with a
// vector it would run in TF32 on a GPU (XLA's default for float32 products:
// 10-bit mantissas), where the baselines' and the NAMM's references sum
// attention values in float32.
func WeightedSum(x, w *Node, axis int) *Node {
	shape := make([]int, x.Rank())
	for i := range shape {
		shape[i] = 1
	}
	shape[axis] = w.Shape().Size()
	return ReduceSum(Mul(x, BroadcastToDims(Reshape(w, shape...), x.Shape().Dimensions...)), axis)
}

// updateFeat runs the policy's state update (its pass's tokens land at
// slot WriteAt).
func updateFeat(feat, rows *Node, in PassInputs) *Node {
	kh, s := feat.Shape().Dimensions[0], feat.Shape().Dimensions[1]
	t := rows.Shape().Dimensions[1]
	// Padding queries see every key uniformly; they must add nothing.
	valid := Reshape(Slice(in.QueryWeights, AxisElem(0)), 1, t, 1)
	rows = Mul(rows, BroadcastToDims(valid, kh, t, s+t))
	return in.UpdateState(rows, feat, in.StateCtl, in.WriteAt)
}

// PlaceTokens turns a state over the S cache slots then the pass's t
// tokens, next [K, S+t, W], into the cache's [K, S, W] with the tokens at
// slots writeAt..writeAt+t-1 (int32 scalar). A Gather and a Where rather
// than a DynamicUpdateSlice, which the pure-Go backend lacks.
func PlaceTokens(next *Node, t int, writeAt *Node) *Node {
	dims := next.Shape().Dimensions
	kh, s, w := dims[0], dims[1]-t, dims[2]
	old := Slice(next, AxisRange(), AxisRange(0, s), AxisRange())
	add := TransposeAllAxes(Slice(next, AxisRange(), AxisRange(s, s+t), AxisRange()), 1, 0, 2) // [T, K, W]
	g := next.Graph()
	j := Sub(Iota(g, shapes.Make(dtypes.Int32, s), 0), BroadcastToDims(writeAt, s)) // [S]
	inPass := LogicalAnd(GreaterOrEqual(j, ZerosLike(j)), LessThan(j, Const(g, int32(t))))
	j = Min(Max(j, ZerosLike(j)), Const(g, int32(t-1)))
	placed := TransposeAllAxes(Gather(add, InsertAxes(j, -1)), 1, 0, 2) // [K, S, W]
	return Where(BroadcastToDims(Reshape(inPass, 1, s, 1), kh, s, w), placed, old)
}

// GatherFeat keeps, for each KV head k, the state rows idx[k, :] of feat
// [K, S, W]; rows at or past keepLen[k] are zeroed.
func GatherFeat(feat, idx, keepLen *Node) *Node {
	g := feat.Graph()
	kh, s2 := idx.Shape().Dimensions[0], idx.Shape().Dimensions[1]
	w := feat.Shape().Dimensions[2]
	heads := Iota(g, shapes.Make(dtypes.Int32, kh, s2, 1), 0)
	ind := Concatenate([]*Node{heads, InsertAxes(idx, -1)}, -1) // [K, S', 2]
	nf := Gather(feat, ind)                                     // [K, S', W]
	slot := Iota(g, shapes.Make(dtypes.Int32, kh, s2, w), 1)
	limit := BroadcastToDims(Reshape(keepLen, kh, 1, 1), kh, s2, w)
	return Where(LessThan(slot, limit), nf, ZerosLike(nf))
}

// AppendKV writes a pass's keys, values and positions into the cache at slot
// writeAt (donate the cache buffers: see WriteSlots).
func AppendKV(st LayerState, newK, newV, qpos, writeAt *Node) LayerState {
	kh, t := newK.Shape().Dimensions[0], newK.Shape().Dimensions[1]
	return LayerState{
		K:   WriteSlots(st.K, newK, writeAt, 1),
		V:   WriteSlots(st.V, newV, writeAt, 2),
		Pos: WriteSlots(st.Pos, BroadcastToDims(InsertAxes(qpos, 0), kh, t), writeAt, 1),
	}
}

// WriteSlots writes update into buf from index at (int32 scalar) along
// axis, the other axes whole (at + update's size along axis must fit). On
// backends with DynamicUpdateSlice it is one, which XLA runs in place on a
// donated buffer; elsewhere (the pure-Go backend) a Gather and a Where,
// which give the same values.
func WriteSlots(buf, update, at *Node, axis int) *Node {
	g := buf.Graph()
	if g.Backend().Capabilities().Operations[backends.OpTypeDynamicUpdateSlice] {
		starts := make([]*Node, buf.Rank())
		for i := range starts {
			starts[i] = ScalarZero(g, dtypes.Int32)
		}
		starts[axis] = at
		return DynamicUpdateSlice(buf, update, starts)
	}
	dims := buf.Shape().Dimensions
	s, t := dims[axis], update.Shape().Dimensions[axis]
	// Axis first, gathered along it, then back in place.
	front := []int{axis}
	back := make([]int, len(dims))
	for i := range dims {
		if i != axis {
			front = append(front, i)
		}
		switch {
		case i == axis:
			back[i] = 0
		case i < axis:
			back[i] = i + 1
		default:
			back[i] = i
		}
	}
	j := Sub(Iota(g, shapes.Make(dtypes.Int32, s), 0), BroadcastToDims(at, s)) // [S]
	in := LogicalAnd(GreaterOrEqual(j, ZerosLike(j)), LessThan(j, Const(g, int32(t))))
	j = Min(Max(j, ZerosLike(j)), Const(g, int32(t-1)))
	placed := TransposeAllAxes(Gather(TransposeAllAxes(update, front...), InsertAxes(j, -1)), back...)
	mask := make([]int, len(dims))
	for i := range mask {
		mask[i] = 1
	}
	mask[axis] = s
	return Where(BroadcastToDims(Reshape(in, mask...), dims...), placed, buf)
}

// Logits applies the final norm and the LM head to the rows of x selected by
// the weights sel [T] (one-hot on the last real token) -> [V], or to every row
// when sel is nil -> [T, V]. head is grouped [n, R, D] (see HeadGroups):
// each group is one batch entry of the matmul.
func Logits(cfg *Config, x, norm, head, sel *Node) *Node {
	if sel != nil {
		x = Reshape(Einsum("td,t->d", x, ConvertDType(sel, x.DType())), 1, x.Shape().Dimensions[1])
	}
	h := RMSNorm(x, norm, cfg.RMSNormEps)
	t, d := h.Shape().Dimensions[0], h.Shape().Dimensions[1]
	n, rows := head.Shape().Dimensions[0], head.Shape().Dimensions[1]
	hb := BroadcastToDims(InsertAxes(h, 0), n, t, d)
	logits := Einsum("ntd,nrd->ntr", hb, head) // [n, T, R]
	if t == 1 {
		logits = Reshape(logits, 1, n*rows)
	} else {
		logits = Reshape(TransposeAllAxes(logits, 1, 0, 2), t, n*rows)
	}
	if v := cfg.VocabSize; n*rows != v {
		logits = Slice(logits, AxisRange(), AxisRange(0, v))
	}
	logits = ConvertDType(logits, dtypes.Float32)
	if sel != nil {
		logits = Reshape(logits, cfg.VocabSize)
	}
	return logits
}

// GatherCache keeps, for each KV head k, the slots idx[k, :] of the cache
// (K [K, S, H], V [K, H, S], Pos [K, S]) -> capacities S' = idx's second
// dimension. Entries at or past keepLen[k] are marked empty (position -1).
func GatherCache(k, v, pos, idx, keepLen *Node) []*Node {
	g := k.Graph()
	kh, s2 := idx.Shape().Dimensions[0], idx.Shape().Dimensions[1]
	heads := Iota(g, shapes.Make(dtypes.Int32, kh, s2, 1), 0)
	ind := Concatenate([]*Node{heads, InsertAxes(idx, -1)}, -1) // [K, S', 2]
	nk := Gather(k, ind)                                        // [K, S', H]
	nv := Gather(TransposeAllAxes(v, 0, 2, 1), ind)
	nv = TransposeAllAxes(nv, 0, 2, 1) // [K, H, S']
	np := Gather(pos, ind)             // [K, S']
	slot := Iota(g, shapes.Make(dtypes.Int32, kh, s2), 1)
	limit := BroadcastToDims(InsertAxes(keepLen, -1), kh, s2)
	np = Where(LessThan(slot, limit), np, MulScalar(OnesLike(np), -1))
	return []*Node{nk, nv, np}
}

// bcastLeft broadcasts x to dims, adding leading axes as needed.
func bcastLeft(x *Node, dims ...int) *Node {
	return BroadcastToDims(ExpandLeftToRank(x, len(dims)), dims...)
}
