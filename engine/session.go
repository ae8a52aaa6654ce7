package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/engine/kvcache"
	"github.com/namm-dev/namm/internal/bucket"
	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
)

// Session is one sequence being processed with a memory policy.
type Session struct {
	e      *Engine
	policy policy.Policy
	// dev is the policy's device state (nil: none); its width is
	// cache.Spec.StateWidth.
	dev    policy.DeviceState
	cache  kvcache.Cache
	tokens []int           // every token processed, by absolute position
	hidden *tensors.Tensor // [width, D] the last pass's hidden states (the last layer's output)
	stats  SessionStats
	// observe, if set, sees each pass's policy step (observe.go); evicted
	// collects the pass's evictions for it.
	observe func(PolicyStep)
	evicted [][][]int32
	// batched is set once the session joins a Batch: on fused pass graphs
	// its cache then keeps a capacity through evictions until its tokens
	// fit in half of it (holdsCapacity).
	batched bool
	// broken is set when a pass failed inside the backend (a device out of
	// memory, say): its cache buffers may be half-updated or donated, so
	// every later pass returns this error.
	broken error
}

// SessionStats summarise a session's cache use.
type SessionStats struct {
	Passes       int
	PeakKVTokens int       // max over time of the total tokens held (all layers, max over heads)
	SumKVTokens  float64   // sum over passes of the mean tokens per layer, for the mean
	Evictions    int       // policy steps that removed tokens
	PeakBytes    int64     // peak bytes of K, V and positions actually allocated
	LayerSum     []float64 // per layer, sum over passes of the tokens held (max over heads)
	// With Options.Profile: wall time in the model's passes (including the
	// policy's in-graph work, e.g. NAMM features) and in the policy's host
	// step (its own device calls included), by phase.
	PassTime, PolicyTime [2]time.Duration // [prefill, decode]
}

// MeanPerLayer is the mean over passes of the tokens each layer held.
func (st SessionStats) MeanPerLayer() []float64 {
	out := make([]float64, len(st.LayerSum))
	for i, v := range st.LayerSum {
		out[i] = v / float64(max(st.Passes, 1))
	}
	return out
}

// NewSession starts a sequence with a memory policy (nil = full cache).
func (e *Engine) NewSession(p policy.Policy) (*Session, error) {
	if p == nil {
		var err error
		if p, err = policy.New("full", policy.Budget{}); err != nil {
			p = nil
		}
	}
	s := &Session{e: e, policy: p}
	cfg := e.Config
	if p != nil {
		info := policy.ModelInfo{NumLayers: cfg.NumLayers, NumKVHeads: cfg.NumKVHeads, NumHeads: cfg.NumHeads, HeadDim: cfg.HeadDim}
		if err := p.Reset(info); err != nil {
			return nil, err
		}
		// Policies that can score on the backend (the NAMM's BAM scorer) do so
		// on compiled backends; on the pure-Go one their Go loop is faster.
		if u, ok := p.(policy.BackendUser); ok && !e.hostCache() {
			if err := u.UseBackend(e.Backend); err != nil {
				return nil, err
			}
		}
		if d, ok := p.(policy.DeviceState); ok && d.StateWidth() > 0 {
			s.dev = d
		}
	}
	width := 0
	if s.dev != nil {
		width = s.dev.StateWidth()
	}
	s.cache = kvcache.Cache{Spec: e.cacheSpec(width), Layers: make([]kvcache.Layer, cfg.NumLayers)}
	for i := range s.cache.Layers {
		var err error
		if s.cache.Layers[i], err = kvcache.NewLayer(e.Backend, e.hostCache(), s.cache.Spec, bucket.Round(e.opts.ChunkSize)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetModelInfo lets callers add tokenizer facts (special ids, punctuation)
// for policies that use them; call before the first pass.
func (s *Session) SetModelInfo(special map[int]bool, punct func(int) bool) error {
	if s.policy == nil {
		return nil
	}
	cfg := s.e.Config
	return s.policy.Reset(policy.ModelInfo{NumLayers: cfg.NumLayers, NumKVHeads: cfg.NumKVHeads, NumHeads: cfg.NumHeads,
		HeadDim: cfg.HeadDim, SpecialTokens: special, Punctuation: punct})
}

// Tokens returns every token processed so far.
func (s *Session) Tokens() []int { return s.tokens }

// Stats returns the cache statistics so far.
func (s *Session) Stats() SessionStats { return s.stats }

// CacheTokens returns, per layer, the number of tokens held (max over heads).
func (s *Session) CacheTokens() []int { return s.cache.TokensPerLayer() }

// CacheBytes returns the bytes of K, V and positions allocated now.
func (s *Session) CacheBytes() int64 { return s.cache.Bytes() }

// ErrPastPositions is wrapped by the error of a pass that would place a
// token beyond the model's positions (max_position_embeddings): RoPE would
// extrapolate there and the model answers nonsense.
var ErrPastPositions = errors.New("engine: beyond the model's positions")

// checkPositions refuses a sequence of n tokens longer than the model's
// positions.
func (s *Session) checkPositions(n int) error {
	if limit := s.e.Config.MaxPositionEmbeddings; limit > 0 && n > limit {
		return fmt.Errorf("%w: %d tokens, the model has %d (max_position_embeddings)", ErrPastPositions, n, limit)
	}
	return nil
}

// Prefill runs the prompt in chunks whose boundaries fall on multiples of
// the chunk size (in absolute positions) and returns the logits of its last
// token.
func (s *Session) Prefill(ids []int) (_ []float32, err error) {
	if s.broken != nil {
		return nil, s.broken
	}
	defer s.recoverPass(&err)
	if len(ids) == 0 {
		return nil, fmt.Errorf("engine: empty prompt")
	}
	cs := s.e.opts.ChunkSize
	start := len(s.tokens)
	promptLen := start + len(ids)
	if err := s.checkPositions(promptLen); err != nil {
		return nil, err
	}
	if err := s.reservePrompt(len(ids)); err != nil {
		return nil, err
	}
	var logits []float32
	for i := 0; i < len(ids); {
		pos := start + i
		n := min(cs-pos%cs, len(ids)-i)
		pass := policy.Pass{Phase: policy.Prefill, Start: pos, NewTokens: n, LastPrefill: i+n == len(ids), PromptLen: promptLen}
		var err error
		logits, err = s.forward(ids[i:i+n], pass, s.e.prefillWidth(n), pass.LastPrefill)
		if err != nil {
			return nil, err
		}
		i += n
	}
	if err := s.endPrompt(); err != nil {
		return nil, err
	}
	return logits, nil
}

// reservePrompt readies the cache for a prompt of n tokens. On compiled
// backends every capacity is a new graph: the cache is sized for the whole
// prompt at once, so that its prefill compiles one shape, and its pass
// graphs start compiling ahead (Options.Precompile).
func (s *Session) reservePrompt(n int) error {
	if s.e.hostCache() {
		return nil
	}
	caps := make([]int, len(s.cache.Layers))
	for l, lc := range s.cache.Layers {
		caps[l] = max(lc.Capacity, bucket.Round(lc.Used+n+s.e.opts.ChunkSize))
	}
	if err := s.setCapacities(caps, nil); err != nil {
		return err
	}
	s.precompile(n)
	return nil
}

// endPrompt follows a prompt's last chunk: a prefill that kept its
// capacity through evictions (keepCapacity) gives it back.
func (s *Session) endPrompt() error {
	if !s.compactsInPrefill() {
		return nil
	}
	return s.shrinkAfterPrefill()
}

// Decode feeds one token and returns the logits of the next.
func (s *Session) Decode(id int) (_ []float32, err error) {
	if s.broken != nil {
		return nil, s.broken
	}
	defer s.recoverPass(&err)
	if err := s.checkPositions(len(s.tokens) + 1); err != nil {
		return nil, err
	}
	pass := policy.Pass{Phase: policy.Decode, Start: len(s.tokens), NewTokens: 1, PromptLen: -1}
	return s.forward([]int{id}, pass, 1, true)
}

// passQueries lays out a pass of nReal tokens from position start padded to
// width: the queries' positions (-1 for padding) and weights [2, width]
// (row 0: 1 for real queries; row 1: one-hot on the last real one).
func passQueries(start, nReal, width int) ([]int32, []float32) {
	qpos := make([]int32, width)
	qw := make([]float32, 2*width)
	for t := range qpos {
		qpos[t] = -1
		if t < nReal {
			qpos[t] = int32(start + t)
			qw[t] = 1
		}
	}
	qw[width+nReal-1] = 1
	return qpos, qw
}

// view builds the policy's LayerView of layer l. The statistics' key axis is the cache as it was during the pass (slotsAt
// columns, of which the first usedAt were in use) followed by the pass's
// width new tokens.
func (s *Session) view(l int, pass policy.Pass, mask model.StatMask, stats []*tensors.Tensor, nNew, usedAt, slotsAt, width int) *policy.LayerView {
	lc := &s.cache.Layers[l]
	kh := len(lc.Heads)
	v := &policy.LayerView{Layer: l, Pass: pass, Tokens: s.tokens, Positions: make([][]int32, kh)}
	slotOf := make([][]int, kh)
	for k, h := range lc.Heads {
		v.Positions[k] = h.Pos
		slotOf[k] = h.Slot
	}
	if lc.Feat != nil {
		v.State = &policy.DeviceView{State: lc.Feat, Pos: lc.Pos, Slots: slotOf}
	}
	if mask == 0 {
		return v
	}
	cols := make([][]int, kh)
	for k, h := range lc.Heads {
		cols[k] = make([]int, len(h.Slot))
		for i, slot := range h.Slot {
			col := slot
			if slot >= usedAt {
				col = slotsAt + slot - usedAt
			}
			cols[k][i] = col
		}
	}
	n := slotsAt + width // key axis of the statistics
	pick := func(flat []float32, base int, k int) []float32 {
		return gatherCols(make([]float32, len(cols[k])), flat[base:], cols[k])
	}
	// Statistics come in StatMask bit order; per-token ones are [K, n] or,
	// for Rows, [K, width, n], picked down to each head's tokens.
	i := 0
	next := func() []float32 {
		// Read in place (pick and KeyNorms copy what they keep): the rows
		// are kh*width*n values per layer, megabytes in a long prefill.
		var flat []float32
		tensors.MustConstFlatData(stats[i], func(d []float32) { flat = d })
		i++
		return flat
	}
	perHead := func(flat []float32) [][]float32 {
		out := make([][]float32, kh)
		for k := range kh {
			out[k] = pick(flat, k*n, k)
		}
		return out
	}
	if mask&model.StatColSums != 0 {
		v.ColSums = perHead(next())
	}
	if mask&model.StatLastRow != 0 {
		v.LastRow = perHead(next())
	}
	if mask&model.StatRows != 0 {
		flat := next()
		// Megabytes per layer in a long prefill: one buffer per head, the
		// rows gathered in parallel.
		v.Rows = make([][][]float32, kh)
		for k := range kh {
			buf, m := make([]float32, nNew*len(cols[k])), len(cols[k])
			v.Rows[k] = make([][]float32, nNew)
			for t := range nNew {
				v.Rows[k][t] = buf[t*m : (t+1)*m : (t+1)*m]
			}
		}
		workers := 0
		if nNew == 1 {
			workers = 1 // a decoded token's rows: not worth waking a core
		}
		par.For(kh*nNew, workers, func(kt int) {
			k, t := kt/nNew, kt%nNew
			gatherCols(v.Rows[k][t], flat[(k*width+t)*n:], cols[k])
		})
	}
	if mask&model.StatKeyNorms != 0 {
		flat := next()
		v.KeyNorms = make([][]float32, kh)
		for k := range kh {
			v.KeyNorms[k] = append([]float32(nil), flat[k*width:k*width+nNew]...)
		}
	}
	return v
}

// gatherCols sets dst[i] = src[cols[i]] and returns dst.
func gatherCols(dst, src []float32, cols []int) []float32 {
	for i, c := range cols {
		dst[i] = src[c]
	}
	return dst
}

// forwardLayers runs one pass of each sequence, one graph per layer for
// all of them (model.LayerBatch: their rows stacked for the projections,
// attention per sequence over its own cache), appending each sequence's
// new keys and values to its cache, and returns per sequence the
// statistics per layer and, when asked, the logits of its last real token.
func (e *Engine) forwardLayers(seqs []*Session, ins []*passInput) ([]passOutput, error) {
	kinds := make([]seqKind, len(seqs))
	for i, s := range seqs {
		kinds[i].stats = ins[i].mask
		if s.dev != nil {
			kinds[i].state = s.dev
		}
	}
	exec, err := e.layerExec(kinds)
	if err != nil {
		return nil, err
	}
	g := make([]graphInputs, len(seqs))
	xs := make([]*tensors.Tensor, len(seqs))
	outs := make([]passOutput, len(seqs))
	for i, in := range ins {
		g[i] = in.graphInputs(e)
		xs[i] = g[i].embed
		outs[i].stats = make([][]*tensors.Tensor, e.Config.NumLayers)
	}
	for l := range e.Config.NumLayers {
		var args []any
		key := "layer"
		for i, s := range seqs {
			in, lc := ins[i], &s.cache.Layers[l]
			key += fmt.Sprintf("/%d/t%d/c%d", in.mask, in.width, lc.Capacity)
			args = append(args, xs[i], g[i].cos, g[i].sin, g[i].qpos, g[i].qw, lc.K, lc.V, lc.Pos)
			if s.dev != nil {
				var feat any = lc.Feat
				if !e.hostCache() {
					if feat, err = graph.DonateTensorBuffer(lc.Feat, e.Backend, 0); err != nil {
						return nil, fmt.Errorf("engine: donating the policy state: %w", err)
					}
				}
				args = append(args, feat, g[i].ctl, int32(lc.Used))
				key += fmt.Sprintf("/%s/w%d", s.dev.StateKind(), len(in.ctl))
			}
		}
		for _, w := range e.Weights.Layers[l].List() {
			args = append(args, w)
		}
		out, err := e.timed(key, exec, args...)
		if err != nil {
			return nil, fmt.Errorf("engine: layer %d: %w", l, err)
		}
		for i, s := range seqs {
			in, lc := ins[i], &s.cache.Layers[l]
			n := 3 + kinds[i].stats.Count()
			if s.dev != nil {
				n++
			}
			mine := out[:n]
			out = out[n:]
			xs[i] = mine[0]
			outs[i].stats[l] = mine[3 : 3+kinds[i].stats.Count()]
			if s.dev != nil {
				lc.Feat = mine[n-1]
			}
			// Statistics cover the cache slots as they were, then the new tokens.
			if err := s.appendKV(lc, mine[1], mine[2], in.qpos, g[i].qpos); err != nil {
				return nil, fmt.Errorf("engine: layer %d: appending to the cache: %w", l, err)
			}
			lc.AppendIndex(in.qpos[:in.nReal])
		}
	}
	for i, s := range seqs {
		in := ins[i]
		s.hidden = xs[i]
		if !in.wantLogits {
			continue
		}
		lex, err := e.logitsExec(false)
		if err != nil {
			return nil, err
		}
		sel := make([]float32, in.width)
		sel[in.nReal-1] = 1
		out, err := e.timed(fmt.Sprintf("logits/t%d", in.width), lex, xs[i], e.Weights.Norm, e.Weights.Head, e.toDType(sel, in.width))
		if err != nil {
			return nil, err
		}
		if outs[i].logits, err = tensors.CopyFlatData[float32](out[0]); err != nil {
			return nil, fmt.Errorf("engine: reading the logits: %w", err)
		}
	}
	return outs, nil
}

// applyPolicy asks the policy, layer by layer, which tokens to keep, then
// evicts. Each evicting layer is gathered into a capacity rounded up from
// its largest head plus a chunk; in fuse mode every layer then takes the
// largest capacity of all (see fuseMode).
func (s *Session) applyPolicy(pass policy.Pass, mask model.StatMask, statsOut [][]*tensors.Tensor, nNew int, prevUsed, statSlots []int, width int) error {
	plans := make([][][]int, len(s.cache.Layers))
	caps := make([]int, len(s.cache.Layers))
	views := make([]*policy.LayerView, len(s.cache.Layers))
	for l := range s.cache.Layers {
		views[l] = s.view(l, pass, mask, statsOut[l], nNew, prevUsed[l], statSlots[l], width)
	}
	if p, ok := s.policy.(policy.Preparer); ok {
		if err := p.Prepare(views); err != nil {
			return fmt.Errorf("engine: policy %s: %w", s.policy.Name(), err)
		}
	}
	for l := range s.cache.Layers {
		caps[l] = s.cache.Layers[l].Capacity
		keep, err := s.policy.Update(views[l])
		if err != nil {
			return fmt.Errorf("engine: policy %s, layer %d: %w", s.policy.Name(), l, err)
		}
		if keep == nil {
			continue
		}
		slots, removed, err := s.keptSlots(l, keep)
		if err != nil {
			return err
		}
		if removed {
			s.recordEvicted(l, keep)
			if s.keepCapacity(pass) {
				plans[l] = slots
				continue // compacted in place; Prefill shrinks the cache at its end
			}
			maxKeep := 0
			for _, sl := range slots {
				maxKeep = max(maxKeep, len(sl))
			}
			want := bucket.Round(maxKeep + s.e.opts.ChunkSize)
			if s.holdsCapacity(want, caps[l]) && !s.e.noHoles {
				// The capacity stays: leave holes instead of moving the
				// kept tokens (punchHoles); forward compacts when a pass
				// finds no room.
				if err := s.punchHoles(l, keep); err != nil {
					return err
				}
				continue
			}
			plans[l] = slots
			caps[l] = want
		}
	}
	return s.setCapacities(caps, plans)
}

// punchHoles evicts from layer l every token not in keep (per head, the
// indices of the tokens kept, ascending, as a policy's Update returns them)
// by marking its slot empty, without moving the others. A policy that evicts at every decoding step (H2O, TOVA,
// StreamingLLM at their budget) then costs no gather of the whole cache per
// step, only a compaction when a pass finds no room (forward): on the
// 2-core machine the per-step gathers were 90% of H2O's policy time in
// decoding, on a GPU one gather graph per layer and token.
func (s *Session) punchHoles(l int, keep [][]int) error {
	lc := &s.cache.Layers[l]
	lc.PunchHoles(keep)
	s.stats.Evictions++
	if s.e.hostCache() {
		return tensors.MutableFlatData(lc.Pos, func(p []int32) { kvcache.FillPositions(p, lc.Heads, lc.Capacity) })
	}
	p := make([]int32, len(lc.Heads)*lc.Capacity)
	kvcache.FillPositions(p, lc.Heads, lc.Capacity)
	release(lc.Pos)
	lc.Pos = tensors.FromFlatDataAndDimensions(p, len(lc.Heads), lc.Capacity)
	return nil
}

// keepCapacity reports whether an eviction during this pass compacts the
// cache within its capacity instead of shrinking it: inside a prefill on a
// compiled backend with prefix graphs. The prefill reserved its capacity
// (the peak memory is already spent), the passes attend only to the
// occupied quarters, and every later chunk then runs a graph of that one
// capacity, compiled ahead (precompile.go), instead of one per capacity the
// evictions leave: the shipped NAMM on model A met 47-54 graphs over an 8k
// prompt.
func (s *Session) keepCapacity(pass policy.Pass) bool {
	return s.compactsInPrefill() && pass.Phase == policy.Prefill && !pass.LastPrefill
}

// compactsInPrefill reports whether evictions inside a prefill keep its
// capacity (keepCapacity): fused passes with prefix graphs.
func (s *Session) compactsInPrefill() bool { return s.fuseMode() && s.e.opts.PrefixGraphs }

// holdsCapacity reports whether a layer of capacity capacity whose tokens
// need want slots keeps its capacity (evictions leave holes) rather than
// shrinking to want. Alone, only when want is the same; in a batch on fused
// pass graphs, until the tokens fit in half of it: a batch step runs the
// sequences of one capacity as one graph, and members of a population that
// evict differently would otherwise spread over as many capacities (each
// a graph of its own every step), while attending over empty slots costs
// a launch-bound GPU little.
func (s *Session) holdsCapacity(want, capacity int) bool {
	if s.batched && s.fuseMode() {
		return 2*want > capacity
	}
	return want == capacity
}

// shrinkAfterPrefill gives every layer the capacity its tokens need (plus a
// chunk), as an eviction outside keepCapacity would have.
func (s *Session) shrinkAfterPrefill() error {
	caps := make([]int, len(s.cache.Layers))
	shrink := false
	for l, lc := range s.cache.Layers {
		caps[l] = lc.Capacity
		if want := bucket.Round(lc.Used + s.e.opts.ChunkSize); !s.holdsCapacity(want, lc.Capacity) {
			caps[l] = min(lc.Capacity, want)
		}
		shrink = shrink || caps[l] < lc.Capacity
	}
	if !shrink {
		return nil
	}
	return s.setCapacities(caps, nil)
}

// setCapacities gives layer l capacity caps[l], keeping the slots plans[l]
// when it is not nil (an eviction) and every occupied slot otherwise. In
// one-capacity mode every layer gets the largest of caps.
func (s *Session) setCapacities(caps []int, plans [][][]int) error {
	if s.oneCapacity() {
		t := slices.Max(caps)
		for l := range caps {
			caps[l] = t
		}
	}
	for l := range s.cache.Layers {
		var keep [][]int
		if plans != nil {
			keep = plans[l]
		}
		if keep == nil && caps[l] == s.cache.Layers[l].Capacity {
			continue
		}
		if keep != nil {
			s.stats.Evictions++
		}
		if err := s.regather(l, keep, caps[l]); err != nil {
			return err
		}
	}
	return nil
}

// keptSlots checks a policy's answer for layer l and turns it into the
// cache slots each head keeps; removed says whether any token goes.
func (s *Session) keptSlots(l int, keep [][]int) ([][]int, bool, error) {
	slots, removed, err := s.cache.Layers[l].KeptSlots(keep)
	if err != nil {
		return nil, false, fmt.Errorf("engine: policy %s, layer %d: %w", s.policy.Name(), l, err)
	}
	return slots, removed, nil
}

// regather copies layer l's cache into new buffers of the given capacity,
// keeping per head the listed slots (nil: every occupied slot, in order).
func (s *Session) regather(l int, slots [][]int, capacity int) error {
	lc := &s.cache.Layers[l]
	plan := lc.Compact(slots)
	if capacity < plan.Used {
		capacity = bucket.Round(plan.Used)
	}
	if err := s.gatherKV(lc, plan.Slots, capacity); err != nil {
		return fmt.Errorf("engine: gathering layer %d: %w", l, err)
	}
	lc.Reindex(plan)
	return nil
}

func (s *Session) account() {
	s.stats.Passes++
	total := 0
	if s.stats.LayerSum == nil {
		s.stats.LayerSum = make([]float64, len(s.cache.Layers))
	}
	for l, n := range s.CacheTokens() {
		total += n
		s.stats.LayerSum[l] += float64(n)
	}
	s.stats.PeakKVTokens = max(s.stats.PeakKVTokens, total)
	s.stats.SumKVTokens += float64(total) / float64(len(s.cache.Layers))
	s.stats.PeakBytes = max(s.stats.PeakBytes, s.CacheBytes())
}

// MeanKVTokens is the mean over passes of the mean tokens per layer.
func (st SessionStats) MeanKVTokens() float64 {
	if st.Passes == 0 {
		return 0
	}
	return st.SumKVTokens / float64(st.Passes)
}
