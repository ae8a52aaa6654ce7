package namm

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/internal/bucket"
	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/policy"
)

// features is where a NAMM keeps its per-token features (the STFT/EMA
// state) and how a step turns them into scores. There are three:
//   - hostFeatures: computed on the host from attention rows that leave the
//     graph; scored by the Go loop, or by the BAM graph on a backend;
//   - cacheFeatures: computed inside the layer graph, kept in the engine's
//     cache (policy.DeviceState), read in place and scored by the Go loop
//     (the pure-Go backend, and the statistics mode);
//   - deviceFeatures: computed inside the layer graph and scored there by
//     the BAM graph, all layers of a step together (Prepare); only the
//     scores leave the device.
type features interface {
	// needs are the statistics the engine must return for a pass.
	needs() policy.Needs
	// stateWidth is the device state per KV head and token, 0 for none.
	stateWidth() int
	// observe checks layer v's view and folds the pass into the features.
	observe(v *policy.LayerView) error
	// omegas returns, per head of v, the unnormalised EMA of every token
	// ([S_k*Bins], chronological) at a step (the statistics mode).
	omegas(v *policy.LayerView) ([][]float32, error)
	// scores returns, per head of v, the BAM score of every token at a step.
	scores(v *policy.LayerView) ([][]float32, error)
	// stepped applies a step's keep (nil: nothing evicted) to the features.
	stepped(v *policy.LayerView, keep [][]int)
}

// stepPreparer is features that score every layer of a step at once, before
// the layers' Updates (policy.Preparer); it is called for every pass.
type stepPreparer interface {
	prepare(views []*policy.LayerView) error
}

// aheadCompiler is features with scoring graphs to compile ahead
// (policy.Precompiler).
type aheadCompiler interface {
	precompile(state, pos shapes.Shape, numLayers, promptLen int)
}

// newFeatures picks the features of the policy's configuration and scorer.
func (p *Policy) newFeatures() features {
	switch {
	case p.cfg.Features == FeaturesHost || (p.cfg.Features == FeaturesAuto && p.scorer == nil):
		h := &hostFeatures{params: &p.params, norm: &p.norm, scorer: p.scorer}
		h.heads = make([][]headFeatures, p.info.NumLayers)
		for l := range h.heads {
			h.heads[l] = make([]headFeatures, p.info.NumKVHeads)
		}
		return h
	case p.stats != nil || p.scorer == nil:
		return &cacheFeatures{params: &p.params, norm: &p.norm}
	default:
		return &deviceFeatures{params: &p.params, norm: &p.norm, scorer: p.scorer, policy: p}
	}
}

// hostFeatures computes the features on the host from every attention row
// of every pass (the first implementation, and the tested reference of the
// in-graph ones).
type hostFeatures struct {
	params *Params
	norm   *Norm
	scorer *Scorer          // nil: the Go loop
	heads  [][]headFeatures // [L][K]
}

func (*hostFeatures) needs() policy.Needs { return policy.Needs{Rows: true} }
func (*hostFeatures) stateWidth() int     { return 0 }

func (f *hostFeatures) observe(v *policy.LayerView) error {
	heads, pass := f.heads[v.Layer], v.Pass
	if len(v.Rows) != len(heads) {
		return fmt.Errorf("namm: layer %d: %d attention row sets for %d KV heads (NAMM needs Rows)", v.Layer, len(v.Rows), len(heads))
	}
	for k := range heads {
		h := &heads[k]
		s := len(v.Positions[k])
		if s-h.n != pass.NewTokens {
			return fmt.Errorf("namm: layer %d head %d holds %d tokens, NAMM tracked %d plus %d new", v.Layer, k, s, h.n, pass.NewTokens)
		}
		if len(v.Rows[k]) != pass.NewTokens {
			return fmt.Errorf("namm: layer %d head %d: %d attention rows for %d new tokens", v.Layer, k, len(v.Rows[k]), pass.NewTokens)
		}
		for t, row := range v.Rows[k] {
			if len(row) < s {
				return fmt.Errorf("namm: layer %d head %d row %d has %d values for %d cached tokens", v.Layer, k, t, len(row), s)
			}
		}
	}
	par.For(len(heads), 0, func(k int) {
		h := &heads[k]
		h.grow(pass.NewTokens)
		for t, row := range v.Rows[k] {
			slot := (pass.Start + t) % Hop
			h.addRow(slot, row)
			if slot == Hop-1 {
				h.foldBlock()
			}
		}
	})
	return nil
}

func (f *hostFeatures) omegas(v *policy.LayerView) ([][]float32, error) {
	heads := f.heads[v.Layer]
	out := make([][]float32, len(heads))
	for k := range heads {
		out[k] = heads[k].omega
	}
	return out, nil
}

func (f *hostFeatures) scores(v *policy.LayerView) ([][]float32, error) {
	heads := f.heads[v.Layer]
	scores := make([][]float32, len(heads))
	xs := make([][][FeatDims]float32, len(heads))
	par.For(len(heads), 0, func(k int) {
		h := &heads[k]
		xs[k] = make([][FeatDims]float32, h.n)
		buildInputs(h.omega, v.Positions[k], f.norm, xs[k])
		if f.scorer == nil {
			scores[k] = Score(f.params, xs[k])
		}
	})
	if f.scorer != nil {
		var err error
		if scores, err = f.scorer.Score(f.params, xs); err != nil {
			return nil, fmt.Errorf("namm: layer %d step at %d: %w", v.Layer, v.Pass.Processed(), err)
		}
	}
	return scores, nil
}

func (f *hostFeatures) stepped(v *policy.LayerView, keep [][]int) {
	if keep == nil {
		return
	}
	heads := f.heads[v.Layer]
	for k := range heads {
		heads[k].gather(keep[k])
	}
}

// cacheFeatures reads the in-graph features from the engine's cache (in
// place on the pure-Go backend) and scores them with the Go loop.
type cacheFeatures struct {
	params *Params
	norm   *Norm
}

func (*cacheFeatures) needs() policy.Needs { return policy.Needs{} }
func (*cacheFeatures) stateWidth() int     { return StateWidth }
func (*cacheFeatures) observe(v *policy.LayerView) error {
	return checkState(v)
}

func (*cacheFeatures) omegas(v *policy.LayerView) ([][]float32, error) {
	st := v.State
	if len(st.Slots) != len(v.Positions) {
		return nil, fmt.Errorf("namm: layer %d: device state lists %d heads, the view %d", v.Layer, len(st.Slots), len(v.Positions))
	}
	omegas, err := stateOmegas(st.State, st.Slots)
	if err != nil {
		return nil, fmt.Errorf("namm: layer %d: %w", v.Layer, err)
	}
	return omegas, nil
}

func (f *cacheFeatures) scores(v *policy.LayerView) ([][]float32, error) {
	omegas, err := f.omegas(v)
	if err != nil {
		return nil, err
	}
	scores := make([][]float32, len(omegas))
	par.For(len(omegas), 0, func(k int) {
		xs := make([][FeatDims]float32, len(v.Positions[k]))
		buildInputs(omegas[k], v.Positions[k], f.norm, xs)
		scores[k] = Score(f.params, xs)
	})
	return scores, nil
}

func (*cacheFeatures) stepped(*policy.LayerView, [][]int) {}

// checkState reports a view without the device state in-graph features need.
func checkState(v *policy.LayerView) error {
	if v.State == nil {
		return fmt.Errorf("namm: layer %d: the engine gave no device state (in-graph features); use namm:...,features=host", v.Layer)
	}
	return nil
}

// deviceFeatures scores the in-graph features with the BAM graph on the
// backend: Prepare scores every layer of a step in as few executions as the
// scorer allows (Scorer.ScoreLayers), and the graphs of the steps to come
// compile ahead once the engine compiles ahead (Precompile).
type deviceFeatures struct {
	params *Params
	norm   *Norm
	scorer *Scorer
	policy *Policy // the kept sizes, for the next step's graph
	// prepared[l] holds layer l's scores from prepare ([K*C], slot-major per
	// head) until its step consumes them.
	prepared [][]float32
	// ahead: the engine compiles ahead (Precompile was called), so each
	// step compiles the next step's scoring graph ahead too.
	ahead atomic.Bool
}

func (*deviceFeatures) needs() policy.Needs { return policy.Needs{} }
func (*deviceFeatures) stateWidth() int     { return StateWidth }
func (*deviceFeatures) observe(v *policy.LayerView) error {
	return checkState(v)
}

func (*deviceFeatures) omegas(v *policy.LayerView) ([][]float32, error) {
	return nil, fmt.Errorf("namm: layer %d: the statistics mode reads its features on the host", v.Layer)
}

// prepare scores every layer's device state at once, at a step.
func (f *deviceFeatures) prepare(views []*policy.LayerView) error {
	f.prepared = nil
	if len(views) == 0 {
		return nil
	}
	if end := views[0].Pass.Processed(); end%StepEvery != 0 || views[0].Pass.NewTokens == 0 {
		return nil
	}
	states := make([]*tensors.Tensor, len(views))
	pos := make([]*tensors.Tensor, len(views))
	used := make([]int, len(views))
	for l, v := range views {
		if v.State == nil || !v.State.State.Shape().Equal(views[0].State.State.Shape()) {
			return nil // Update reports a missing state; layers of different capacities score one by one
		}
		states[l], pos[l], used[l] = v.State.State, v.State.Pos, usedSlots(v.State)
	}
	scores, err := f.scorer.ScoreLayers(f.params, f.norm, states, pos, used)
	if err != nil {
		return fmt.Errorf("namm: step at %d: %w", views[0].Pass.Processed(), err)
	}
	f.prepared = scores
	return nil
}

func (f *deviceFeatures) scores(v *policy.LayerView) ([][]float32, error) {
	st := v.State
	if len(st.Slots) != len(v.Positions) {
		return nil, fmt.Errorf("namm: layer %d: device state lists %d heads, the view %d", v.Layer, len(st.Slots), len(v.Positions))
	}
	var flat []float32
	if v.Layer < len(f.prepared) && f.prepared[v.Layer] != nil {
		flat, f.prepared[v.Layer] = f.prepared[v.Layer], nil
	} else {
		var err error
		if flat, err = f.scorer.ScoreState(f.params, f.norm, st.State, st.Pos, usedSlots(st)); err != nil {
			return nil, fmt.Errorf("namm: layer %d step at %d: %w", v.Layer, v.Pass.Processed(), err)
		}
	}
	c := st.State.Shape().Dimensions[1]
	scores := make([][]float32, len(st.Slots))
	for k, sl := range st.Slots {
		scores[k] = make([]float32, len(sl))
		for i, slot := range sl {
			scores[k][i] = flat[k*c+slot]
		}
	}
	return scores, nil
}

// stepped starts compiling, in the background, the scoring graph of the
// next step once a step has scored its last layer: the next step scores the
// most tokens a layer kept plus the StepEvery tokens to come (one bucket,
// known only now for a NAMM that evicts).
func (f *deviceFeatures) stepped(v *policy.LayerView, _ [][]int) {
	p := f.policy
	if v.Layer != p.info.NumLayers-1 || !f.ahead.Load() || !f.scorer.compiled() || len(p.history) == 0 {
		return
	}
	kept := slices.Max(p.history[len(p.history)-1].PerLayer)
	state, pos, layers := v.State.State.Shape(), v.State.Pos.Shape(), p.info.NumLayers
	c := min(state.Dimensions[1], bucket.Round(kept+StepEvery))
	go func() { _ = f.scorer.PrecompileLayers(f.params, f.norm, state, pos, layers, c) }()
}

// precompile compiles the scoring graph of a prefill's first step (each
// later step's is compiled ahead when the step before it ends). Compiling
// every size a step may score ahead made the shipped NAMM's first 8k prompt
// on model A slower, not faster: most sizes went unused and the
// compilations slowed each other down.
func (f *deviceFeatures) precompile(state, pos shapes.Shape, numLayers, promptLen int) {
	if !f.scorer.compiled() || state.Rank() != 3 {
		return
	}
	f.ahead.Store(true)
	if promptLen < StepEvery {
		return
	}
	_ = f.scorer.PrecompileLayers(f.params, f.norm, state, pos, numLayers, min(state.Dimensions[1], bucket.Round(StepEvery)))
}

// usedSlots is the count of a layer's slots that may hold tokens: those
// from the newest token's on are empty (it is the last one appended, and no
// policy evicts it).
func usedSlots(st *policy.DeviceView) int {
	used := 0
	for _, sl := range st.Slots {
		if len(sl) > 0 {
			used = max(used, sl[len(sl)-1]+1)
		}
	}
	return used
}
