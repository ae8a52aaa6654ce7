package namm

import (
	"fmt"
	"github.com/namm-dev/namm/internal/bucket"
	"math"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
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
	paramsT    *tensors.Tensor  // lastParams as a [NumParams] tensor
	stateExecs map[[2]int]*Exec // by head-group size and scored slots
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
	return bamCore(flat, x, mask)
}

// bamCore scores x [K, S, FeatDims] with BAM; mask [K, S, S] says which key
// j each query i attends (every row must allow at least one key).
func bamCore(flat, x, mask *Node) *Node {
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
	q := Slice(qkv, AxisRange(), AxisRange(), AxisRange(0, bamWidth))
	kk := Slice(qkv, AxisRange(), AxisRange(), AxisRange(bamWidth, 2*bamWidth))
	v := Slice(qkv, AxisRange(), AxisRange(), AxisRange(2*bamWidth, bamQKV))

	logits := MulScalar(Einsum("kic,kjc->kij", q, kk), 1/math.Sqrt(bamWidth)) // [K, S, S]
	logits = Where(mask, logits, Infinity(g, dtypes.Float32, -1))
	m := ReduceAndKeep(logits, ReduceMax, -1)
	e := Exp(Sub(logits, m)) // masked: exp(-inf) = 0
	att := Div(Einsum("kij,kjc->kic", e, v), ReduceAndKeep(e, ReduceSum, -1))

	o := Add(Einsum("kic,cu->kiu", att, wo), BroadcastPrefix(bo, nk, s))
	r := Slice(o, AxisRange(), AxisRange(), AxisRange(0, FeatDims))
	mod := Slice(o, AxisRange(), AxisRange(), AxisRange(FeatDims, bamOut))
	h := Add(Mul(x, OnePlus(mod)), r)
	sc := ReduceSum(Mul(h, BroadcastPrefix(w, nk, s)), -1)
	return Add(sc, BroadcastPrefix(Reshape(b), nk, s))
}

// stateScoreGraph scores a layer's cache from its device state: flat
// [NumParams], norm [2*Bins] (mean, then the floored standard deviation),
// state [K, C, StateWidth], pos [K, C] int32 (-1 for empty slots), first
// int32 scalar: the first of the g heads scored (g = the graph's group
// size) -> scores [g, C] (empty slots hold garbage).
//
// Slots are chronological by position, so the backward mask "j is i or
// newer" is pos_j >= pos_i; empty slots are masked as keys and attend
// themselves only as queries.
func stateScoreGraph(flat, norm, state, pos, first *Node, group, c int) *Node {
	g := state.Graph()
	// Only the first c slots may hold tokens (the cache's used slots, rounded up).
	state = Slice(state, AxisRange(), AxisRange(0, c), AxisRange())
	pos = Slice(pos, AxisRange(), AxisRange(0, c))
	// The group's heads, by a Gather (the pure-Go backend has no DynamicSlice).
	heads := InsertAxes(Add(Iota(g, shapes.Make(dtypes.Int32, group), 0), BroadcastToDims(first, group)), -1)
	state = Gather(state, heads) // [g, C, W]
	pos = Gather(pos, heads)     // [g, C]

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

	pi := BroadcastToDims(InsertAxes(pos, -1), group, c, c)
	pj := BroadcastToDims(InsertAxes(pos, 1), group, c, c)
	iq := Iota(g, shapes.Make(dtypes.Int32, group, c, c), 1)
	jk := Iota(g, shapes.Make(dtypes.Int32, group, c, c), 2)
	mask := LogicalOr(LogicalAnd(GreaterOrEqual(pj, ZerosLike(pj)), GreaterOrEqual(pj, pi)), Equal(jk, iq))
	return bamCore(flat, x, mask)
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
	kh, capa := dims[0], dims[1]
	c := min(capa, bucket.Round(max(used, 1)))
	group := max(1, min(kh, scoreMaxElems/(c*c)))
	pt, err := s.paramsTensor(p)
	if err != nil {
		return nil, err
	}
	nv := make([]float32, 2*Bins)
	for f := range Bins {
		nv[f] = norm.Mean[f]
		nv[Bins+f] = max(sqrt32(norm.Var[f]), normFloor)
	}
	nt := tensors.FromFlatDataAndDimensions(nv, 2*Bins)
	ex, err := s.stateExec(group, c)
	if err != nil {
		return nil, err
	}
	out := make([]float32, kh*capa)
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
			copy(out[k*capa:k*capa+c], sc[(k-first)*c:(k-first+1)*c])
		}
	}
	return out, nil
}

// stateExec returns the state-scoring graph for a head-group size and a
// count of scored slots.
func (s *Scorer) stateExec(group, c int) (*Exec, error) {
	key := [2]int{group, c}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ex, ok := s.stateExecs[key]; ok {
		return ex, nil
	}
	ex, err := NewExecAny(s.backend, func(in []*Node) []*Node {
		s.builds.Add(1)
		return []*Node{stateScoreGraph(in[0], in[1], in[2], in[3], in[4], group, c)}
	})
	if err != nil {
		return nil, fmt.Errorf("namm: building the BAM state graph: %w", err)
	}
	ex.SetMaxCache(64)
	if s.stateExecs == nil {
		s.stateExecs = map[[2]int]*Exec{}
	}
	s.stateExecs[key] = ex.WithName("namm_bam_state")
	return s.stateExecs[key], nil
}
