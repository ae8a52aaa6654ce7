package namm

import (
	"fmt"
	"github.com/namm-dev/namm/internal/bucket"
	"math"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Scorer runs the BAM scoring step (Score) as one GoMLX graph on a backend,
// for all the KV heads of a layer at once. On an accelerator this replaces
// the host loop, which costs S^2 * 32 multiply-adds per (layer, head).
//
// The parameters are a graph input, not constants: a new parameter vector
// (a CMA-ES candidate) is new data, not a recompilation. Token counts are
// padded to a bucket (scoreBucket) and heads to a group size, so only a few
// shapes compile. A Scorer is safe for concurrent use.
type Scorer struct {
	backend backends.Backend
	exec    *Exec
	builds  atomic.Int32 // graphs built (one per shape)

	mu         sync.Mutex
	lastParams Params
	paramsT    *tensors.Tensor   // lastParams as a [NumParams] tensor
	stateExecs map[execKey]*Exec // state-scoring graphs by kind and static sizes
	holders    []*tensors.Tensor // placeholders for compiling ahead, by shape
}

// scoreMaxElems bounds the attention matrix of one execution, heads x
// S_pad x S_pad float32 values (512 MiB): above it the heads of a layer are
// scored in several executions.
var scoreMaxElems = 1 << 27 // a variable for tests

// scorers holds one Scorer per backend: sessions share its compiled graphs
// (an XLA compilation costs far more than a NAMM step).
var scorers sync.Map // backends.Backend -> *Scorer

// NewScorer returns the scorer of a backend, built on first use (graphs
// compile on first use of each shape).
func NewScorer(b backends.Backend) (*Scorer, error) {
	if b == nil {
		return nil, fmt.Errorf("namm: NewScorer: nil backend")
	}
	if s, ok := scorers.Load(b); ok {
		return s.(*Scorer), nil
	}
	s := &Scorer{backend: b}
	ex, err := NewExecAny(b, func(in []*Node) []*Node {
		s.builds.Add(1)
		return []*Node{bamGraph(in[0], in[1], in[2])}
	})
	if err != nil {
		return nil, fmt.Errorf("namm: building the BAM graph: %w", err)
	}
	ex.SetMaxCache(64)
	s.exec = ex.WithName("namm_bam")
	got, _ := scorers.LoadOrStore(b, s)
	return got.(*Scorer), nil
}

// Score scores the tokens of the K heads of one layer: x[k] is head k's
// [S_k][FeatDims] inputs in chronological order (heads may hold different
// counts). It returns [K][S_k] scores, equal to Score(p, x[k]) up to float32
// rounding.
func (s *Scorer) Score(p *Params, x [][][FeatDims]float32) ([][]float32, error) {
	out := make([][]float32, len(x))
	maxS := 0
	for k := range x {
		maxS = max(maxS, len(x[k]))
		out[k] = make([]float32, len(x[k]))
	}
	if maxS == 0 {
		return out, nil
	}
	sp := bucket.Round(maxS)
	group := max(1, min(len(x), scoreMaxElems/(sp*sp)))
	pt, err := s.paramsTensor(p)
	if err != nil {
		return nil, err
	}
	for k0 := 0; k0 < len(x); k0 += group {
		heads := x[k0:min(k0+group, len(x))]
		if err := s.scoreGroup(pt, heads, group, sp, out[k0:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scoreGroup runs one execution over up to group heads, padded to group
// heads of sp tokens (padding heads hold 0 tokens), writing out[k].
func (s *Scorer) scoreGroup(pt *tensors.Tensor, heads [][][FeatDims]float32, group, sp int, out [][]float32) error {
	flat := make([]float32, group*sp*FeatDims)
	lens := make([]int32, group)
	for k, xk := range heads {
		lens[k] = int32(len(xk))
		base := k * sp * FeatDims
		for i := range xk {
			copy(flat[base+i*FeatDims:], xk[i][:])
		}
	}
	xt := tensors.FromFlatDataAndDimensions(flat, group, sp, FeatDims)
	lt := tensors.FromFlatDataAndDimensions(lens, group)
	defer func() { _ = xt.FinalizeAll(); _ = lt.FinalizeAll() }()
	res, err := s.exec.Exec(pt, xt, lt)
	if err != nil {
		return fmt.Errorf("namm: BAM graph (%d heads x %d tokens): %w", group, sp, err)
	}
	defer func() { _ = res[0].FinalizeAll() }()
	scores, err := tensors.CopyFlatData[float32](res[0])
	if err != nil {
		return fmt.Errorf("namm: reading BAM scores: %w", err)
	}
	for k, xk := range heads {
		copy(out[k], scores[k*sp:k*sp+len(xk)])
	}
	return nil
}

// paramsTensor returns p as a [NumParams] tensor, reusing the last one when
// p has not changed (one parameter vector scores many steps).
func (s *Scorer) paramsTensor(p *Params) (*tensors.Tensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paramsT != nil && s.lastParams == *p {
		return s.paramsT, nil
	}
	t := tensors.FromFlatDataAndDimensions(p.Flat(), NumParams)
	if err := t.MaterializeOnDevice(s.backend, false, 0); err != nil {
		return nil, fmt.Errorf("namm: BAM parameters to the device: %w", err)
	}
	// The previous tensor may still be in use by a concurrent Score; the
	// garbage collector frees it.
	s.paramsT, s.lastParams = t, *p
	return t, nil
}

// bamGraph is Score for a group of heads. flat [NumParams] float32 in the
// reference order, x [K, S, FeatDims] float32 (rows past lens[k] are
// padding), lens [K] int32 -> scores [K, S] (padding rows hold garbage).
//
// Masks: query i attends keys j with i <= j < lens[k] (backward mask, and
// padding keys masked out); a padding query attends itself only, so that no
// softmax row is empty.
func bamGraph(flat, x, lens *Node) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	nk, s := dims[0], dims[1]
	iq := Iota(g, shapes.Make(dtypes.Int32, nk, s, s), 1)
	jk := Iota(g, shapes.Make(dtypes.Int32, nk, s, s), 2)
	lk := BroadcastToDims(Reshape(lens, nk, 1, 1), nk, s, s)
	mask := LogicalOr(LogicalAnd(GreaterOrEqual(jk, iq), LessThan(jk, lk)), Equal(jk, iq))
	return bamCore(flat, x, 1, func(int, int, int) *Node { return mask })
}

// bamCore scores x [K, S, FeatDims] with BAM. The queries are cut into
// blocks (a divisor of S) and block b attends only keys from its own first
// query on: the backward mask hides every older key, so the skipped part
// (nearly half of S^2 with 4 blocks and more) would be masked anyway.
// mask(q0, q1, k0) is the [K, q1-q0, S-k0] mask of queries q0..q1-1
// against keys k0.. (every row must allow at least one key).
func bamCore(flat, x *Node, blocks int, mask func(q0, q1, k0 int) *Node) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	nk, s := dims[0], dims[1]
	at := 0
	take := func(n int, shape ...int) *Node {
		v := Reshape(Slice(flat, AxisRange(at, at+n)), shape...)
		at += n
		return v
	}
	wqkv := take(FeatDims*bamQKV, FeatDims, bamQKV)
	bqkv := take(bamQKV, bamQKV)
	wo := take(bamWidth*bamOut, bamWidth, bamOut)
	bo := take(bamOut, bamOut)
	w := take(FeatDims, FeatDims)
	b := take(1)

	qkv := Add(Einsum("ksf,fc->ksc", x, wqkv), BroadcastPrefix(bqkv, nk, s))
	cols := func(from, to, c0, c1 int) *Node {
		return Slice(qkv, AxisRange(), AxisRange(from, to), AxisRange(c0, c1))
	}
	bs := s / blocks
	atts := make([]*Node, blocks)
	for blk := range blocks {
		q0, q1 := blk*bs, (blk+1)*bs
		q := cols(q0, q1, 0, bamWidth)
		kk := cols(q0, s, bamWidth, 2*bamWidth)
		v := cols(q0, s, 2*bamWidth, bamQKV)
		logits := MulScalar(Einsum("kic,kjc->kij", q, kk), 1/math.Sqrt(bamWidth)) // [K, B, S-q0]
		logits = Where(mask(q0, q1, q0), logits, Infinity(g, dtypes.Float32, -1))
		m := ReduceAndKeep(logits, ReduceMax, -1)
		e := Exp(Sub(logits, m)) // masked: exp(-inf) = 0
		atts[blk] = Div(Einsum("kij,kjc->kic", e, v), ReduceAndKeep(e, ReduceSum, -1))
	}
	att := atts[0]
	if blocks > 1 {
		att = Concatenate(atts, 1)
	}

	o := Add(Einsum("kic,cu->kiu", att, wo), BroadcastPrefix(bo, nk, s))
	r := Slice(o, AxisRange(), AxisRange(), AxisRange(0, FeatDims))
	mod := Slice(o, AxisRange(), AxisRange(), AxisRange(FeatDims, bamOut))
	h := Add(Mul(x, OnePlus(mod)), r)
	sc := ReduceSum(Mul(h, BroadcastPrefix(w, nk, s)), -1)
	return Add(sc, BroadcastPrefix(Reshape(b), nk, s))
}

// scoreBlocks is the number of query blocks of bamCore for c scored slots
// on a backend: 1 for short caches (the saving does not pay for the extra
// operations), then 4 (62.5% of the S^2 work) or 8 (56%). On the pure-Go
// backend always 1: its parallel executor deadlocks when several large
// matmuls are ready at once (GoMLX v0.26 simplego: each waits for workers
// that the others hold), and the NAMM's CPU path scores on the host anyway.
func scoreBlocks(b backends.Backend, c int) int {
	if b.Name() == simplego.BackendName && !blocksOnGo {
		return 1
	}
	switch {
	case c >= 4096 && c%8 == 0:
		return 8
	case c >= 1024 && c%4 == 0:
		return 4
	}
	return 1
}

// blocksOnGo lets tests run the query blocks on a sequential pure-Go backend.
var blocksOnGo = false

// stateScoreGraph scores a layer's cache from its device state: flat
// [NumParams], norm [2*Bins] (mean, then the floored standard deviation),
// state [K, C, StateWidth], pos [K, C] int32 (-1 for empty slots), first
// int32 scalar: the first of the g heads scored (g = the graph's group
// size) -> scores [g, C] (empty slots hold garbage).
func stateScoreGraph(flat, norm, state, pos, first *Node, group, c int) *Node {
	g := state.Graph()
	// Only the first c slots may hold tokens (the cache's used slots, rounded up).
	state = Slice(state, AxisRange(), AxisRange(0, c), AxisRange())
	pos = Slice(pos, AxisRange(), AxisRange(0, c))
	if kh := state.Shape().Dimensions[0]; group < kh {
		// The group's heads, by a Gather (the pure-Go backend has no DynamicSlice).
		heads := InsertAxes(Add(Iota(g, shapes.Make(dtypes.Int32, group), 0), BroadcastToDims(first, group)), -1)
		state = Gather(state, heads) // [g, C, W]
		pos = Gather(pos, heads)     // [g, C]
	}
	return headScores(flat, norm, state, pos)
}

// headScores is BAM over the heads of state [g, C, StateWidth] with their
// positions pos [g, C] -> scores [g, C].
//
// The used slots are chronological by position and come first, so the
// backward mask "j is i or newer" is pos_j >= pos_i, and j >= i; empty
// slots are masked as keys and attend themselves only as queries.
func headScores(flat, norm, state, pos *Node) *Node {
	g := state.Graph()
	group, c := pos.Shape().Dimensions[0], pos.Shape().Dimensions[1]
	omega := Slice(state, AxisRange(), AxisRange(), AxisRange(0, Bins))
	mean := BroadcastPrefix(Slice(norm, AxisRange(0, Bins)), group, c)
	sd := BroadcastPrefix(Slice(norm, AxisRange(Bins, 2*Bins)), group, c)
	z := Div(Sub(omega, mean), sd)

	// Recency in float64 then rounded, as RecencyEmbedding computes it.
	newest := ReduceAndKeep(pos, ReduceMax, -1)
	r := ConvertDType(Sub(BroadcastToDims(newest, group, c), pos), dtypes.Float64)
	freqs := make([]float64, RecDims/2)
	copy(freqs, recFreq[:])
	ang := Mul(BroadcastToDims(InsertAxes(r, -1), group, c, RecDims/2), BroadcastPrefix(Const(g, freqs), group, c))
	rec := ConvertDType(Concatenate([]*Node{Sin(ang), Cos(ang)}, -1), dtypes.Float32)
	x := Concatenate([]*Node{rec, z}, -1) // [g, C, 25]

	mask := func(q0, q1, k0 int) *Node {
		nq, nkey := q1-q0, c-k0
		pi := BroadcastToDims(InsertAxes(Slice(pos, AxisRange(), AxisRange(q0, q1)), -1), group, nq, nkey)
		pj := BroadcastToDims(InsertAxes(Slice(pos, AxisRange(), AxisRange(k0, c)), 1), group, nq, nkey)
		iq := AddScalar(Iota(g, shapes.Make(dtypes.Int32, group, nq, nkey), 1), q0)
		jk := AddScalar(Iota(g, shapes.Make(dtypes.Int32, group, nq, nkey), 2), k0)
		return LogicalOr(LogicalAnd(GreaterOrEqual(pj, ZerosLike(pj)), GreaterOrEqual(pj, pi)), Equal(jk, iq))
	}
	return bamCore(flat, x, scoreBlocks(g.Backend(), c), mask)
}

// ScoreState scores the first used slots of a layer's device state (see
// stateScoreGraph; the slots from used on are empty) and returns the scores
// [K*C], slot-major per head (0 past used). Only the scores leave the device.
// The attention of BAM is over the used slots rounded to a bucket, not over
// the whole capacity (which prefill reserves for the whole prompt).
func (s *Scorer) ScoreState(p *Params, norm *Norm, state, pos *tensors.Tensor, used int) ([]float32, error) {
	dims := state.Shape().Dimensions
	if len(dims) != 3 || dims[2] != StateWidth {
		return nil, fmt.Errorf("namm: ScoreState: state shape %s", state.Shape())
	}
	kh, capacity := dims[0], dims[1]
	c := min(capacity, bucket.Round(max(used, 1)))
	group := max(1, min(kh, scoreMaxElems/(c*c)))
	pt, err := s.paramsTensor(p)
	if err != nil {
		return nil, err
	}
	nt := normTensor(norm)
	ex, err := s.stateExec(group, c)
	if err != nil {
		return nil, err
	}
	out := make([]float32, kh*capacity)
	for k0 := 0; k0 < kh; k0 += group {
		first := min(k0, kh-group) // the last group may overlap the previous one
		res, err := ex.Exec(pt, nt, state, pos, int32(first))
		if err != nil {
			return nil, fmt.Errorf("namm: BAM state graph (%d heads x %d slots): %w", group, c, err)
		}
		sc, err := tensors.CopyFlatData[float32](res[0])
		_ = res[0].FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("namm: reading BAM scores: %w", err)
		}
		for k := k0; k < min(first+group, kh); k++ {
			copy(out[k*capacity:k*capacity+c], sc[(k-first)*c:(k-first+1)*c])
		}
	}
	return out, nil
}

// normTensor is the [2*Bins] normalisation input of the state graphs: the
// mean, then the floored standard deviation.
func normTensor(norm *Norm) *tensors.Tensor {
	nv := make([]float32, 2*Bins)
	for f := range Bins {
		nv[f] = norm.Mean[f]
		nv[Bins+f] = max(sqrt32(norm.Var[f]), normFloor)
	}
	return tensors.FromFlatDataAndDimensions(nv, 2*Bins)
}

// layerScoreElems bounds one ScoreLayers execution on accelerators: layers
// x heads x C^2 attention values (4 GiB of float32 logits). Each execution
// ends with a device-to-host copy that waits for it, so fewer, larger ones
// save a synchronisation per layer.
var layerScoreElems = 1 << 30

// maxLayersPerScore caps the layers of one ScoreLayers graph: compilation
// time grows with the graph, and every scored size compiles its own (with
// all 32 layers of Llama-3-8B in one graph, the first 8k prompt spent
// about a minute more compiling).
var maxLayersPerScore = 8

// layersPerScoreOnGo is the layers per execution on the pure-Go backend
// (1: its memory is the host's); tests raise it to exercise the grouping.
var layersPerScoreOnGo = 1

// ScoreLayers is ScoreState for several layers at once, all of one state
// shape ([K, C, StateWidth], as in the engine's one-capacity mode): as few
// executions as layerScoreElems and maxLayersPerScore allow (on the pure-Go
// backend one layer per execution, bounded by scoreMaxElems as ScoreState
// is), each scoring
// the first bucket.Round(max used) slots of every head of its layers. It
// returns each layer's [K*C] scores, slot-major per head.
func (s *Scorer) ScoreLayers(p *Params, norm *Norm, states, pos []*tensors.Tensor, used []int) ([][]float32, error) {
	if len(states) == 0 || len(pos) != len(states) || len(used) != len(states) {
		return nil, fmt.Errorf("namm: ScoreLayers: %d states, %d position tensors, %d used counts", len(states), len(pos), len(used))
	}
	shape := states[0].Shape()
	dims := shape.Dimensions
	if len(dims) != 3 || dims[2] != StateWidth {
		return nil, fmt.Errorf("namm: ScoreLayers: state shape %s", shape)
	}
	for _, st := range states[1:] {
		if !st.Shape().Equal(shape) {
			return nil, fmt.Errorf("namm: ScoreLayers: layers of different state shapes (%s, %s)", shape, st.Shape())
		}
	}
	kh, capacity := dims[0], dims[1]
	maxUsed := 1
	for _, u := range used {
		maxUsed = max(maxUsed, u)
	}
	c := min(capacity, bucket.Round(maxUsed))
	per := s.layersPerExec(len(states), kh, c)
	if per == 1 && kh*c*c > scoreMaxElems {
		// One layer does not fit one execution: its heads in groups.
		out := make([][]float32, len(states))
		for l := range states {
			var err error
			if out[l], err = s.ScoreState(p, norm, states[l], pos[l], used[l]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	pt, err := s.paramsTensor(p)
	if err != nil {
		return nil, err
	}
	nt := normTensor(norm)
	ex, err := s.layersExec(per, c)
	if err != nil {
		return nil, err
	}
	// Every execution is launched before any score is read: with
	// asynchronous dispatch the GPU then runs them back to back instead of
	// idling through each read and the next launch.
	type launched struct {
		l0, first int
		res       []*tensors.Tensor
	}
	var runs []launched
	defer func() {
		for _, r := range runs {
			_ = r.res[0].FinalizeAll()
		}
	}()
	for l0 := 0; l0 < len(states); l0 += per {
		first := min(l0, len(states)-per) // the last group may overlap the previous one
		args := []any{pt, nt}
		for l := first; l < first+per; l++ {
			args = append(args, states[l], pos[l])
		}
		res, err := ex.Exec(args...)
		if err != nil {
			return nil, fmt.Errorf("namm: BAM layers graph (%d layers x %d heads x %d slots): %w", per, kh, c, err)
		}
		runs = append(runs, launched{l0, first, res})
	}
	out := make([][]float32, len(states))
	for _, r := range runs {
		l0, first := r.l0, r.first
		sc, err := tensors.CopyFlatData[float32](r.res[0])
		if err != nil {
			return nil, fmt.Errorf("namm: reading BAM scores: %w", err)
		}
		for l := l0; l < first+per; l++ {
			o := make([]float32, kh*capacity)
			base := (l - first) * kh * c
			for k := range kh {
				copy(o[k*capacity:k*capacity+c], sc[base+k*c:base+(k+1)*c])
			}
			out[l] = o
		}
	}
	return out, nil
}

// layersPerExec is how many layers one ScoreLayers execution scores over c
// slots of kh heads, out of layers.
func (s *Scorer) layersPerExec(layers, kh, c int) int {
	if s.backend.Name() == simplego.BackendName {
		return min(layers, layersPerScoreOnGo)
	}
	return max(1, min(layers, maxLayersPerScore, layerScoreElems/(kh*c*c)))
}

// PrecompileLayers compiles, ahead of use, the ScoreLayers graph for
// layers states of shape state ([K, C, StateWidth]) and pos ([K, C])
// scored over c slots (see policy.Precompiler), unless ScoreLayers would
// score that size head group by head group (ScoreState) instead.
func (s *Scorer) PrecompileLayers(p *Params, norm *Norm, state, pos shapes.Shape, layers, c int) error {
	kh := state.Dimensions[0]
	per := s.layersPerExec(layers, kh, c)
	if per == 1 && kh*c*c > scoreMaxElems {
		return nil
	}
	pt, err := s.paramsTensor(p)
	if err != nil {
		return err
	}
	hs, err := s.placeholder(state)
	if err != nil {
		return err
	}
	hp, err := s.placeholder(pos)
	if err != nil {
		return err
	}
	ex, err := s.layersExec(per, c)
	if err != nil {
		return err
	}
	args := []any{pt, normTensor(norm)}
	for range per {
		args = append(args, hs, hp)
	}
	return ex.PreCompile(args...)
}

// compiled reports whether the scorer's backend compiles its graphs (XLA),
// where compiling ahead pays; the pure-Go backend builds one in
// milliseconds.
func (s *Scorer) compiled() bool { return s.backend.Name() != simplego.BackendName }

// placeholder returns a zero tensor of shape sh made on the device, kept
// for the next compilation ahead: compiling reads only its shape, and every
// layer's argument may be the same one.
func (s *Scorer) placeholder(sh shapes.Shape) (*tensors.Tensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.holders {
		if h.Shape().Equal(sh) {
			return h, nil
		}
	}
	h, err := ExecOnce(s.backend, func(g *Graph) *Node { return Zeros(g, sh) })
	if err != nil {
		return nil, fmt.Errorf("namm: placeholder %s: %w", sh, err)
	}
	s.holders = append(s.holders, h)
	return h, nil
}

// layersExec returns the graph scoring n layers' states over c slots:
// inputs flat, norm, then per layer state and pos -> scores [n, K, c].
func (s *Scorer) layersExec(n, c int) (*Exec, error) {
	return s.cachedExec(execKey{"namm_bam_layers", n, c}, func(in []*Node) *Node {
		outs := make([]*Node, n)
		for l := range n {
			state := Slice(in[2+2*l], AxisRange(), AxisRange(0, c), AxisRange())
			pos := Slice(in[3+2*l], AxisRange(), AxisRange(0, c))
			outs[l] = InsertAxes(headScores(in[0], in[1], state, pos), 0)
		}
		return Concatenate(outs, 0)
	})
}

// stateExec returns the state-scoring graph for a head-group size and a
// count of scored slots.
func (s *Scorer) stateExec(group, c int) (*Exec, error) {
	return s.cachedExec(execKey{"namm_bam_state", group, c}, func(in []*Node) *Node {
		return stateScoreGraph(in[0], in[1], in[2], in[3], in[4], group, c)
	})
}

// execKey names a state-scoring graph and its two static sizes.
type execKey struct {
	name string
	a, b int
}

// cachedExec returns the graph memoised under key, building it on first use.
func (s *Scorer) cachedExec(key execKey, build func(in []*Node) *Node) (*Exec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ex, ok := s.stateExecs[key]; ok {
		return ex, nil
	}
	ex, err := NewExecAny(s.backend, func(in []*Node) []*Node {
		s.builds.Add(1)
		return []*Node{build(in)}
	})
	if err != nil {
		return nil, fmt.Errorf("namm: building the %s graph: %w", key.name, err)
	}
	ex.SetMaxCache(64)
	if s.stateExecs == nil {
		s.stateExecs = map[execKey]*Exec{}
	}
	s.stateExecs[key] = ex.WithName(key.name)
	return s.stateExecs[key], nil
}
