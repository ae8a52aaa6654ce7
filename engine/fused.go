package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
)

// One graph per pass. On a compiled backend every execution costs ~0.1 ms
// of host work and launches, and the per-layer path runs two per layer
// (the layer, then the cache append) plus one for the logits: 65 for
// Llama-3-8B, which is most of a decoded token's time. The fused pass runs
// every layer, the appends (a DynamicUpdateSlice on donated buffers) and the
// logits as one execution.
//
// Its graph's shape is every layer's capacity, so it runs only when all
// layers have the same capacity (the full cache, and policies that evict
// every layer alike); otherwise the per-layer path runs.

type fusedKey struct {
	layer  layerKey
	logits bool
	// quarters: the pass attends to the first quarters/4 of the capacity
	// (prefixQuarters), 4 for all of it.
	quarters int
}

// prefixQuarters is how much of a capacity c a pass must attend to when at
// most used slots are occupied before it and width tokens are appended: the
// occupied slots are always a prefix (appends go to the first free slot and
// evictions compact), so slots from used+width on are empty. A prefill
// reserves the whole prompt's capacity at once, so its early chunks would
// otherwise attend over mostly empty, masked slots. Quarters keep the count
// of compiled graphs at four per pass shape; caches under 2,048 slots attend
// to all of it.
func prefixQuarters(c, used, width int) int {
	if c < 2048 || c%4 != 0 {
		return 4
	}
	return min(4, (4*(used+width)+c-1)/c)
}

// fuseMode reports whether passes run as one graph when they can: on
// compiled backends, unless Options.NoFuse. Then every layer's cache is
// kept at one capacity (the largest a layer needs; the spare slots are
// empty and masked), so that a policy evicting layers differently (the
// NAMM) still runs fused and compiles one graph per capacity, not one per
// combination of layer sizes.
func (s *Session) fuseMode() bool { return s.e.fuses() }

// fuses reports whether the engine runs passes as one graph (fuseMode).
func (e *Engine) fuses() bool { return !e.hostCache() && !e.opts.NoFuse }

// oneCapacity reports whether every layer's cache is kept at one capacity:
// in fuse mode, and in tests of that bookkeeping on the pure-Go backend.
func (s *Session) oneCapacity() bool { return s.fuseMode() || s.e.oneCapacity }

// fusable reports whether a pass can run as one graph.
func (s *Session) fusable() bool {
	if !s.fuseMode() {
		return false
	}
	for i := range s.cache.Layers {
		if s.cache.Layers[i].Capacity != s.cache.Layers[0].Capacity {
			return false
		}
	}
	return true
}

// fusedExec returns the one-graph pass. Inputs: x, cos, sin, qpos, qw,
// writeAt [L] int32, [ctl,] [sel, norm, head,] then per layer K, V, pos,
// [feat,] weights...; outputs: x, [logits,] then per layer K, V, pos,
// [feat,] then each statistic asked for stacked over the layers ([L, ...]:
// every layer has the same capacity here). One stacked output is one
// device-to-host copy for a policy's step, not one per layer: on a GPU each
// copy waits ~0.2 ms, which was most of a per-token policy's step.
func (e *Engine) fusedExec(stats model.StatMask, dev policy.DeviceState, logits bool, quarters int) (*graph.Exec, error) {
	key := fusedKey{layer: layerKey{stats: stats}, logits: logits, quarters: quarters}
	if dev != nil {
		key.layer.state = dev.StateKind()
	}
	cfg := e.Config
	bias := cfg.AttentionBias
	return e.exec(key, 256, func(in []*graph.Node) []*graph.Node {
		pass := model.PassInputs{X: in[0], Cos: in[1], Sin: in[2], QueryPos: in[3], QueryWeights: in[4]}
		writeAt := in[5]
		p := in[6:]
		if dev != nil {
			pass.StateCtl, pass.UpdateState = p[0], dev.UpdateState
			p = p[1:]
		}
		var sel, norm, head *graph.Node
		if logits {
			sel, norm, head = p[0], p[1], p[2]
			p = p[3:]
		}
		var outs []*graph.Node
		nHead := 1 // outputs before the layers': x, [logits]
		if logits {
			nHead++
		}
		// The cache buffers are updated in place (see alias.go): each layer's
		// K, V, pos [and feat] parameter is its own output.
		var aliases [][2]int // parameter's position in p0, output index
		var layerStats [][]*graph.Node
		p0 := p
		x := pass.X
		for l := range cfg.NumLayers {
			at := graph.Reshape(graph.Slice(writeAt, graph.AxisElem(l)))
			base := len(p0) - len(p)
			st := model.LayerState{K: p[0], V: p[1], Pos: p[2]}
			p = p[3:]
			if dev != nil {
				st.Feat = p[0]
				p = p[1:]
			}
			var w model.LayerWeights
			w, p = layerWeights(p, bias)
			lp := pass
			lp.X, lp.WriteAt = x, at
			out := model.Layer(cfg, w, attendedPrefix(st, quarters), lp, stats)
			x = out.X
			next := model.AppendKV(st, out.NewK, out.NewV, pass.QueryPos, at)
			if out.Feat != nil && out.Feat.Shape().Dimensions[1] != st.Feat.Shape().Dimensions[1] {
				// The prefix's updated state back into the whole buffer (in place).
				out.Feat = model.WriteSlots(st.Feat, out.Feat, graph.ScalarZero(x.Graph(), dtypes.Int32), 1)
			}
			o := nHead + len(outs)
			aliases = append(aliases, [2]int{base, o}, [2]int{base + 1, o + 1}, [2]int{base + 2, o + 2})
			outs = append(outs, next.K, next.V, next.Pos)
			layerStats = append(layerStats, out.Stats)
			if out.Feat != nil {
				aliases = append(aliases, [2]int{base + 3, nHead + len(outs)})
				outs = append(outs, out.Feat)
			}
		}
		for _, a := range aliases {
			if !aliasOutput(p0[a[0]], a[1]) {
				break // not XLA: nothing to mark
			}
		}
		for i := range layerStats[0] {
			each := make([]*graph.Node, len(layerStats))
			for l, st := range layerStats {
				each[l] = st[i]
			}
			outs = append(outs, graph.Stack(each, 0))
		}
		head0 := []*graph.Node{x}
		if logits {
			head0 = append(head0, model.Logits(cfg, x, norm, head, graph.ConvertDType(sel, x.DType())))
		}
		return append(head0, outs...)
	})
}

// passQuarters is the quarters of the (common) capacity that a fused pass
// of width tokens attends to now: prefixQuarters with Options.PrefixGraphs,
// else all four.
func (s *Session) passQuarters(width int) int {
	if !s.e.opts.PrefixGraphs {
		return 4
	}
	maxUsed := 0
	for _, lc := range s.cache.Layers {
		maxUsed = max(maxUsed, lc.Used)
	}
	return prefixQuarters(s.cache.Layers[0].Capacity, maxUsed, width)
}

// attendedPrefix is the layer's cache as the pass attends to it: the first
// quarters/4 of its slots (prefixQuarters).
func attendedPrefix(st model.LayerState, quarters int) model.LayerState {
	c := st.K.Shape().Dimensions[1]
	if quarters >= 4 {
		return st
	}
	p := c * quarters / 4
	all := graph.AxisRange()
	out := model.LayerState{
		K:   graph.Slice(st.K, all, graph.AxisRange(0, p), all),
		V:   graph.Slice(st.V, all, all, graph.AxisRange(0, p)),
		Pos: graph.Slice(st.Pos, all, graph.AxisRange(0, p)),
	}
	if st.Feat != nil {
		out.Feat = graph.Slice(st.Feat, all, graph.AxisRange(0, p), all)
	}
	return out
}

// fusedPassArgs lays out a fused pass's arguments up to the first layer's
// (pass holds x, cos, sin, qpos and qw; ctlT is the policy's control vector
// or nil) and names its graph for Engine.compiled. The caller appends, per
// layer, its K, V, positions [and state], then its weights.
func (s *Session) fusedPassArgs(mask model.StatMask, width, nReal, capacity, quarters int, wantLogits bool, pass []any, ctlT *tensors.Tensor, writeAt []int32) ([]any, string) {
	e := s.e
	args := append(pass, tensors.FromFlatDataAndDimensions(writeAt, len(writeAt)))
	ctlLen := 0
	if s.dev != nil {
		args = append(args, ctlT)
		ctlLen = ctlT.Shape().Size()
	}
	if wantLogits {
		sel := make([]float32, width)
		sel[nReal-1] = 1
		args = append(args, tensors.FromFlatDataAndDimensions(sel, width), e.Weights.Norm, e.Weights.Head)
	}
	return args, s.fusedPassKey(mask, width, capacity, quarters, wantLogits, ctlLen)
}

// fusedPassKey names a fused pass's graph for Engine.compiled (ctlLen: the
// policy's control vector's length, with a device state).
func (s *Session) fusedPassKey(mask model.StatMask, width, capacity, quarters int, wantLogits bool, ctlLen int) string {
	key := fmt.Sprintf("pass/%d/t%d/c%d/q%d", mask, width, capacity, quarters)
	if s.dev != nil {
		key += fmt.Sprintf("/%s/w%d", s.dev.StateKind(), ctlLen)
	}
	if wantLogits {
		key += "/logits"
	}
	return key
}

// forwardFused is forwardLayers as one execution (see fusable).
func (s *Session) forwardFused(in *passInput) (passOutput, error) {
	e := s.e
	g := in.graphInputs(e)
	mask, nReal, width, wantLogits := in.mask, in.nReal, in.width, in.wantLogits
	cfg := e.Config
	writeAt := make([]int32, cfg.NumLayers)
	for l := range s.cache.Layers {
		writeAt[l] = int32(s.cache.Layers[l].Used)
	}
	capacity := s.cache.Layers[0].Capacity
	quarters := in.quarters
	exec, err := e.fusedExec(mask, s.dev, wantLogits, quarters)
	if err != nil {
		return passOutput{}, err
	}
	args, key := s.fusedPassArgs(mask, width, nReal, capacity, quarters, wantLogits, []any{g.embed, g.cos, g.sin, g.qpos, g.qw}, g.ctl, writeAt)
	for l := range s.cache.Layers {
		if args, err = s.donateLayer(l, args); err != nil {
			return passOutput{}, err
		}
		for _, w := range e.Weights.Layers[l].List() {
			args = append(args, w)
		}
	}
	out, err := e.timed(key, exec, args...)
	if err != nil {
		return passOutput{}, fmt.Errorf("engine: fused pass: %w", err)
	}
	s.hidden = out[0]
	out = out[1:]
	var logits []float32
	if wantLogits {
		if logits, err = tensors.CopyFlatData[float32](out[0]); err != nil {
			return passOutput{}, fmt.Errorf("engine: reading the logits: %w", err)
		}
		out = out[1:]
	}
	out = s.takeCache(out, in.qpos[:nReal])
	stats, err := unstackStats(out, cfg.NumLayers)
	if err != nil {
		return passOutput{}, err
	}
	return passOutput{stats: stats, logits: logits}, nil
}

// donateLayer appends layer l's cache buffers (K, V, positions and, with a
// device policy state, its features), donated to the pass that updates
// them in place, to args.
func (s *Session) donateLayer(l int, args []any) ([]any, error) {
	lc := &s.cache.Layers[l]
	bufs := []*tensors.Tensor{lc.K, lc.V, lc.Pos}
	if s.dev != nil {
		bufs = append(bufs, lc.Feat)
	}
	for _, t := range bufs {
		d, err := graph.DonateTensorBuffer(t, s.e.Backend, 0)
		if err != nil {
			return nil, fmt.Errorf("engine: donating layer %d's cache: %w", l, err)
		}
		args = append(args, d)
	}
	return args, nil
}

// takeCache installs a fused pass's updated cache buffers (per layer, in
// donateLayer's order) from the front of out, indexes the pass's positions,
// and returns the rest of out.
func (s *Session) takeCache(out []*tensors.Tensor, qpos []int32) []*tensors.Tensor {
	for l := range s.cache.Layers {
		lc := &s.cache.Layers[l]
		lc.K, lc.V, lc.Pos = out[0], out[1], out[2]
		out = out[3:]
		if s.dev != nil {
			lc.Feat = out[0]
			out = out[1:]
		}
		lc.AppendIndex(qpos)
	}
	return out
}

// unstackStats reads each statistic stacked over the layers ([L, ...]) with
// one copy and returns per layer its statistics as host tensors.
func unstackStats(stacked []*tensors.Tensor, layers int) ([][]*tensors.Tensor, error) {
	stats := make([][]*tensors.Tensor, layers)
	for _, t := range stacked {
		dims := t.Shape().Dimensions[1:]
		flat, err := tensors.CopyFlatData[float32](t)
		_ = t.FinalizeAll()
		if err != nil {
			return nil, fmt.Errorf("engine: reading the pass's statistics: %w", err)
		}
		per := len(flat) / layers
		for l := range layers {
			stats[l] = append(stats[l], tensors.FromFlatDataAndDimensions(flat[l*per:(l+1)*per:(l+1)*per], dims...))
		}
	}
	return stats, nil
}
