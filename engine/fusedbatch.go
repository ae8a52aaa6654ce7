package engine

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/model"
)

// Fused passes over several sequences. A batch step on a compiled backend
// runs the passes of several sequences as one graph (fusedBatchExec): every
// layer, each sequence's cache appends and the logits, the projections and
// the MLP once over the stacked rows of all of them (model.LayerBatch),
// attention per sequence on its own cache, with its own statistics and
// policy state. On a GPU a small model's pass is bound by launches, not by
// arithmetic, so one execution for the batch instead of one per sequence is
// where batching pays.
//
// Every distinct combination of shapes is a compiled graph. A graph takes
// any capacities and widths, but a step (forwardFusedGroups) puts together
// only passes of one width (a prefill chunk, or one decoded token) and one
// cache capacity, each group cut into runs of power-of-two lengths with
// their sequences ordered by kind. Per width and capacity that is at most
// one graph per power of two and combination of kinds (one kind: log2 of
// the batch size plus one), instead of one per arrangement of the batch's
// shapes. The passes of a run attend to the most quarters of the capacity
// any of them needs (prefixQuarters): the spare slots are empty and masked.

// fusedSeq is what shapes one sequence's part of a batched fused pass
// beyond its inputs' shapes: its statistics, its policy's device state,
// and the quarters of its capacity it attends to.
type fusedSeq struct {
	seqKind
	quarters int
}

// fusedBatchKey keys a batched fused pass: each sequence's kind, in order.
type fusedBatchKey string

func (k fusedSeq) String() string {
	lk := k.key()
	return fmt.Sprintf("%d:%s:q%d", lk.stats, lk.state, k.quarters)
}

// fusedBatchExec returns the fused pass over sequences of the given kinds
// (all of one width T). Inputs: the sequences' pass inputs stacked, one
// tensor each (a few host-to-device copies a step, not a few per
// sequence): x [B, T, D], cos and sin [B, T, H/2], qpos [B, T], qw
// [B, 2, T], writeAt [B, L] int32, sel [B, T] (one-hot on each sequence's
// last real token); then each state-carrying sequence's ctl, in order; then
// per sequence and layer K, V, pos, [feat]; then per layer the weights;
// then the final norm and the LM head. Outputs: logits [B, V] (each
// sequence's last real token), each sequence's x, then per sequence and
// layer K, V, pos, [feat] (in place: each is its parameter's buffer), then,
// when any sequence asks for statistics, one float32 vector of every
// sequence's statistics in order, each stacked over the layers: one
// device-to-host copy for the step.
func (e *Engine) fusedBatchExec(kinds []fusedSeq) (*graph.Exec, error) {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	cfg := e.Config
	nl := cfg.NumLayers
	return e.exec(fusedBatchKey(strings.Join(names, ";")), 256, func(in []*graph.Node) []*graph.Node {
		n := len(kinds)
		passes := make([]model.PassInputs, n)
		writeAt := make([]*graph.Node, n)
		sels := make([]*graph.Node, n)
		one := func(x *graph.Node, i int) *graph.Node { // sequence i's part of a stacked input
			return graph.Reshape(graph.Slice(x, graph.AxisElem(i)), x.Shape().Dimensions[1:]...)
		}
		for i := range kinds {
			passes[i] = model.PassInputs{X: one(in[0], i), Cos: one(in[1], i), Sin: one(in[2], i), QueryPos: one(in[3], i), QueryWeights: one(in[4], i)}
			writeAt[i], sels[i] = one(in[5], i), one(in[6], i)
		}
		p := in[7:]
		for i, k := range kinds {
			if k.state != nil {
				passes[i].StateCtl, passes[i].UpdateState = p[0], k.state.UpdateState
				p = p[1:]
			}
		}
		states := make([][]model.LayerState, n) // [sequence][layer]
		params := make([][]int, n)              // [sequence][layer] index in `in` of its K
		for i, k := range kinds {
			states[i] = make([]model.LayerState, nl)
			params[i] = make([]int, nl)
			for l := range nl {
				params[i][l] = len(in) - len(p)
				states[i][l] = model.LayerState{K: p[0], V: p[1], Pos: p[2]}
				p = p[3:]
				if k.state != nil {
					states[i][l].Feat = p[0]
					p = p[1:]
				}
			}
		}
		weights := make([]model.LayerWeights, nl)
		for l := range nl {
			weights[l], p = layerWeights(p, cfg.AttentionBias)
		}
		norm, head := p[0], p[1]

		xs := make([]*graph.Node, n)
		for i := range xs {
			xs[i] = passes[i].X
		}
		next := make([][]model.LayerState, n) // the caches after the pass
		stats := make([][][]*graph.Node, n)   // [sequence][layer][statistic]
		for i := range n {
			next[i] = make([]model.LayerState, nl)
		}
		masks := make([]model.StatMask, n)
		for i, k := range kinds {
			masks[i] = k.stats
		}
		for l := range nl {
			sts := make([]model.LayerState, n)
			lps := make([]model.PassInputs, n)
			at := make([]*graph.Node, n)
			for i, k := range kinds {
				at[i] = graph.Reshape(graph.Slice(writeAt[i], graph.AxisElem(l)))
				sts[i] = attendedPrefix(states[i][l], k.quarters)
				lps[i] = passes[i]
				lps[i].X, lps[i].WriteAt = xs[i], at[i]
			}
			for i, out := range model.LayerBatch(cfg, weights[l], sts, lps, masks) {
				st := states[i][l]
				xs[i] = out.X
				next[i][l] = model.AppendKV(st, out.NewK, out.NewV, passes[i].QueryPos, at[i])
				if out.Feat != nil && out.Feat.Shape().Dimensions[1] != st.Feat.Shape().Dimensions[1] {
					// The prefix's updated state back into the whole buffer (in place).
					out.Feat = model.WriteSlots(st.Feat, out.Feat, graph.ScalarZero(out.Feat.Graph(), dtypes.Int32), 1)
				}
				next[i][l].Feat = out.Feat
				stats[i] = append(stats[i], out.Stats)
			}
		}

		rows := make([]*graph.Node, n)
		for i, x := range xs {
			rows[i] = graph.Reshape(graph.Einsum("td,t->d", x, graph.ConvertDType(sels[i], x.DType())), 1, cfg.HiddenSize)
		}
		outs := []*graph.Node{model.Logits(cfg, graph.Concatenate(rows, 0), norm, head, nil)}
		outs = append(outs, xs...)
		var aliases [][2]int // parameter, output
		for i := range n {
			for l := range nl {
				st, at := next[i][l], params[i][l]
				for j, t := range []*graph.Node{st.K, st.V, st.Pos, st.Feat} {
					if t != nil {
						aliases = append(aliases, [2]int{at + j, len(outs)})
						outs = append(outs, t)
					}
				}
			}
		}
		for _, a := range aliases {
			if !aliasOutput(in[a[0]], a[1]) {
				break // not XLA: nothing to mark
			}
		}
		var flat []*graph.Node
		for i := range n {
			for j := range stats[i][0] {
				each := make([]*graph.Node, nl)
				for l := range nl {
					each[l] = stats[i][l][j]
				}
				s := graph.Stack(each, 0)
				flat = append(flat, graph.Reshape(s, s.Shape().Size()))
			}
		}
		if len(flat) > 0 {
			outs = append(outs, graph.Concatenate(flat, 0))
		}
		return outs
	})
}

// forwardFusedBatch runs one pass of each sequence (all fusable) as one
// batched fused pass graph, their caches donated and updated in place, and
// returns per sequence its statistics per layer and, when asked, its logits.
func (e *Engine) forwardFusedBatch(seqs []*Session, ins []*passInput) ([]passOutput, error) {
	cfg := e.Config
	nl := cfg.NumLayers
	b, t, half := len(seqs), ins[0].width, len(e.invFreq)
	kinds := make([]fusedSeq, b)
	names := make([]string, b)
	anyLogits, anyStats := false, false
	var embed, cos, sin, qw, sel []float32
	var qpos, writeAt []int32
	var ctls []any
	for i, s := range seqs {
		in := ins[i]
		if in.width != t {
			return nil, fmt.Errorf("engine: a batched fused pass of width %d got a pass of width %d", t, in.width)
		}
		kinds[i] = fusedSeq{seqKind: seqKind{stats: in.mask, state: s.dev}, quarters: in.quarters}
		embed, cos, sin = append(embed, in.embed...), append(cos, in.cos...), append(sin, in.sin...)
		qpos, qw = append(qpos, in.qpos...), append(qw, in.qw...)
		for l := range s.cache.Layers {
			writeAt = append(writeAt, int32(s.cache.Layers[l].Used))
		}
		one := make([]float32, t)
		one[in.nReal-1] = 1
		sel = append(sel, one...)
		ctlLen := 0
		if s.dev != nil {
			ctls = append(ctls, tensors.FromFlatDataAndDimensions(in.ctl, len(in.ctl)))
			ctlLen = len(in.ctl)
		}
		names[i] = strings.TrimPrefix(s.fusedPassKey(in.mask, in.width, s.cache.Layers[0].Capacity, in.quarters, false, ctlLen), "pass/")
		anyLogits = anyLogits || in.wantLogits
		anyStats = anyStats || in.mask != 0
	}
	args := []any{e.toDType(embed, b, t, e.Config.HiddenSize), e.toDType(cos, b, t, half), e.toDType(sin, b, t, half),
		tensors.FromFlatDataAndDimensions(qpos, b, t), tensors.FromFlatDataAndDimensions(qw, b, 2, t),
		tensors.FromFlatDataAndDimensions(writeAt, b, nl), tensors.FromFlatDataAndDimensions(sel, b, t)}
	args = append(args, ctls...)
	exec, err := e.fusedBatchExec(kinds)
	if err != nil {
		return nil, err
	}
	for _, s := range seqs {
		for l := range s.cache.Layers {
			if args, err = s.donateLayer(l, args); err != nil {
				return nil, err
			}
		}
	}
	for l := range nl {
		for _, w := range e.Weights.Layers[l].List() {
			args = append(args, w)
		}
	}
	args = append(args, e.Weights.Norm, e.Weights.Head)
	out, err := e.timed("passes/"+strings.Join(names, ";"), exec, args...)
	if err != nil {
		return nil, fmt.Errorf("engine: batched fused pass: %w", err)
	}
	logitsT, out := out[0], out[1:]
	outs := make([]passOutput, len(seqs))
	if anyLogits {
		all, err := tensors.CopyFlatData[float32](logitsT)
		if err != nil {
			return nil, fmt.Errorf("engine: reading the logits: %w", err)
		}
		v := cfg.VocabSize
		for i, in := range ins {
			if in.wantLogits {
				outs[i].logits = all[i*v : (i+1)*v : (i+1)*v]
			}
		}
	}
	release(logitsT)
	for i, s := range seqs {
		s.hidden = out[i]
	}
	out = out[len(seqs):]
	for i, s := range seqs {
		out = s.takeCache(out, ins[i].qpos[:ins[i].nReal])
	}
	if !anyStats {
		for i := range outs {
			outs[i].stats = make([][]*tensors.Tensor, nl)
		}
		return outs, nil
	}
	flat, err := tensors.CopyFlatData[float32](out[0])
	release(out[0])
	if err != nil {
		return nil, fmt.Errorf("engine: reading the pass's statistics: %w", err)
	}
	for i, in := range ins {
		if outs[i].stats, flat, err = e.splitStats(flat, in); err != nil {
			return nil, err
		}
	}
	if len(flat) != 0 {
		return nil, fmt.Errorf("engine: %d statistics values left over", len(flat))
	}
	return outs, nil
}

// splitStats takes one sequence's statistics (each stacked over the
// layers, in StatMask bit order) from the front of flat and returns them
// per layer, with the rest of flat.
func (e *Engine) splitStats(flat []float32, in *passInput) ([][]*tensors.Tensor, []float32, error) {
	cfg := e.Config
	kh, t := cfg.NumKVHeads, in.width
	keys := in.statSlots[0] + t // the attended slots, then the pass's tokens
	stats := make([][]*tensors.Tensor, cfg.NumLayers)
	for _, m := range []model.StatMask{model.StatColSums, model.StatLastRow, model.StatRows, model.StatKeyNorms} {
		if in.mask&m == 0 {
			continue
		}
		dims := []int{kh, keys}
		switch m {
		case model.StatRows:
			dims = []int{kh, t, keys}
		case model.StatKeyNorms:
			dims = []int{kh, t}
		}
		per := 1
		for _, d := range dims {
			per *= d
		}
		if len(flat) < per*cfg.NumLayers {
			return nil, nil, fmt.Errorf("engine: %d statistics values, want at least %d", len(flat), per*cfg.NumLayers)
		}
		for l := range stats {
			stats[l] = append(stats[l], tensors.FromFlatDataAndDimensions(flat[l*per:(l+1)*per:(l+1)*per], dims...))
		}
		flat = flat[per*cfg.NumLayers:]
	}
	return stats, flat, nil
}

// fusedShape is what the passes of a group share: their width and their
// caches' capacity.
type fusedShape struct{ width, capacity int }

// forwardFusedGroups runs one pass of each sequence as fused pass graphs,
// several sequences to a graph (see above): the sequences are grouped by
// width and capacity, each group ordered by kind and cut into runs of
// power-of-two lengths, a run of one being the single-sequence fused pass.
// A sequence whose layers differ in capacity runs the layer graphs alone.
// It returns each sequence's output or error (a run's error is its
// sequences').
func (e *Engine) forwardFusedGroups(seqs []*Session, ins []*passInput) ([]passOutput, []error) {
	outs := make([]passOutput, len(seqs))
	errs := make([]error, len(seqs))
	var order []fusedShape
	groups := map[fusedShape][]int{}
	for i, s := range seqs {
		if !s.fusable() {
			o, err := e.forwardLayers(seqs[i:i+1], ins[i:i+1])
			if err == nil {
				outs[i] = o[0]
			}
			errs[i] = err
			continue
		}
		k := fusedShape{ins[i].width, s.cache.Layers[0].Capacity}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	// A run's sequences in the order of their kinds (and state controls'
	// lengths, an input shape): a graph for each combination, not for
	// each arrangement.
	kind := make([]string, len(seqs)) // each sequence's once, not per comparison
	for i := range seqs {
		k := fusedSeq{seqKind: seqKind{stats: ins[i].mask, state: seqs[i].dev}}.String()
		kind[i] = fmt.Sprintf("%s/w%d", k, len(ins[i].ctl))
	}
	for _, k := range order {
		idx := groups[k]
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(kind[a], kind[b]) })
		for len(idx) > 0 {
			run := idx[:1<<(bits.Len(uint(len(idx)))-1)]
			idx = idx[len(run):]
			q := 0
			for _, i := range run {
				q = max(q, ins[i].quarters)
			}
			for _, i := range run {
				ins[i].attend(q, k.capacity)
			}
			if len(run) == 1 {
				i := run[0]
				outs[i], errs[i] = seqs[i].forwardFused(ins[i])
				continue
			}
			rs, rin := make([]*Session, len(run)), make([]*passInput, len(run))
			for j, i := range run {
				rs[j], rin[j] = seqs[i], ins[i]
			}
			o, err := e.forwardFusedBatch(rs, rin)
			for j, i := range run {
				if err != nil {
					errs[i] = err
					continue
				}
				outs[i] = o[j]
			}
		}
	}
	return outs, errs
}
