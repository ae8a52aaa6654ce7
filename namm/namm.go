// Package namm implements the Neural Attention Memory Model memory policy
// ("An Evolved Universal Transformer Memory", ICLR 2025) as the reference
// computes it (docs namm-reference.md §0-§4): per (layer, KV head) and cached
// token, an EMA of the STFT of its attention history, z-scored and joined to a
// recency embedding, scored by a tiny backward-attention network (BAM); every
// 512 processed tokens the tokens with negative scores are evicted.
//
// Schedule: the reference runs a step after a forward call when
// past_length + new_tokens is a multiple of 512, in prefill (128-token chunks
// cut at absolute multiples of 128) and in decoding alike. past_length +
// new_tokens is exactly policy.Pass.Processed(), so a step runs after every
// pass whose Processed() is a multiple of 512. In decoding, the pass that
// feeds the token at position p has Processed() = p+1: the reference's
// "(processed tokens + 1) is a multiple of 512" counts the tokens before that
// pass. A pass that would cross a multiple of 512 without ending on it is
// refused (the reference never makes one).
package namm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/internal/bucket"
	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/policy"
)

// Config holds the options of a NAMM policy.
type Config struct {
	Mode Mode
	// Cap > 0 keeps at most Cap tokens per head at each step (the
	// reference's cache_size); 0 is no cap.
	Cap int
	// Features says where the spectrogram is computed.
	Features Features
}

// Features selects where the NAMM's STFT/EMA features are computed.
type Features int

const (
	// FeaturesAuto: in the layer graph on compiled backends (a GPU), on the
	// host on the pure-Go backend, where the host loop is measured faster
	// (docs/performance.md).
	FeaturesAuto Features = iota
	// FeaturesGraph keeps the state in the engine's cache and updates it
	// inside the layer graph (policy.DeviceState); only scores leave it.
	FeaturesGraph
	// FeaturesHost computes the spectrogram on the host from attention rows
	// that leave the graph (the first implementation, the tested reference
	// of the in-graph one).
	FeaturesHost
)

func (f Features) String() string {
	return [...]string{"auto", "graph", "host"}[f]
}

// hostFeatures reports whether the features are computed on the host.
func (p *Policy) hostFeatures() bool {
	return p.cfg.Features == FeaturesHost || (p.cfg.Features == FeaturesAuto && p.scorer == nil)
}

// Policy is the NAMM memory policy. It implements policy.Policy.
type Policy struct {
	name   string
	params Params
	norm   Norm
	cfg    Config
	stats  *StatsCollector // non-nil in stats mode: evict nothing, accumulate
	scorer *Scorer         // non-nil: score on a backend instead of the Go loop

	info    policy.ModelInfo
	layers  [][]headFeatures // [L][K]
	history []KeptRecord
	// prepared[l] holds layer l's scores from Prepare ([K*C], slot-major
	// per head) until its Update consumes them.
	prepared [][]float32
	// ahead: the engine compiles ahead (Precompile was called), so each
	// step compiles the next step's scoring graph ahead too.
	ahead atomic.Bool
	// scoreTime is the time spent scoring since Reset: BAM with its inputs
	// (on a device it ends in a device-to-host copy, so it is the device's
	// time too).
	scoreTime time.Duration
}

// KeptRecord is the cache size of every layer after one NAMM step.
type KeptRecord struct {
	Processed int   // tokens processed when the step ran
	PerLayer  []int // [L] tokens kept by the layer's largest head
}

// New makes a NAMM policy from a loaded file.
func New(f *File, cfg Config) (*Policy, error) {
	p, err := ParamsFromFlat(f.Params)
	if err != nil {
		return nil, err
	}
	if cfg.Cap < 0 {
		return nil, fmt.Errorf("%w: namm cap must be >= 0, got %d", policy.ErrBadOption, cfg.Cap)
	}
	name := "namm"
	if f.Path != "" {
		name += ":" + f.Path
	}
	return &Policy{name: name, params: p, norm: f.Norm, cfg: cfg}, nil
}

// NewStats makes a policy that evicts nothing and accumulates the
// normalisation statistics of the unnormalised EMA features, the reference's
// first evaluation with all-zero parameters (namm-reference.md §1).
func NewStats() (*Policy, *StatsCollector) {
	c := &StatsCollector{}
	return &Policy{name: "namm:stats=1", stats: c}, c
}

// Stats returns the collector of a stats-mode policy, nil otherwise.
func (p *Policy) Stats() *StatsCollector { return p.stats }

// UseBackend makes the policy score with a BAM graph on the backend (see
// Scorer) instead of the host loop; nil goes back to the host loop, the
// default and the reference.
func (p *Policy) UseBackend(b backends.Backend) error {
	if b == nil {
		p.scorer = nil
		return nil
	}
	s, err := NewScorer(b)
	if err != nil {
		return err
	}
	p.scorer = s
	return nil
}

// Name implements policy.Policy.
func (p *Policy) Name() string { return p.name }

// Fingerprint identifies the NAMM by content: "sha256:" and the first 16
// hex digits of SHA-256 over its parameters and normalisation (float32
// bits, little endian). Results record it, since a file at one path can be
// replaced. A stats-mode policy has none ("").
func (p *Policy) Fingerprint() string {
	if p.stats != nil {
		return ""
	}
	h := sha256.New()
	var b [4]byte
	for _, vs := range [][]float32{p.params.Flat(), p.norm.Mean[:], p.norm.Var[:]} {
		for _, v := range vs {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Reset implements policy.Policy.
func (p *Policy) Reset(m policy.ModelInfo) error {
	if m.NumLayers <= 0 || m.NumKVHeads <= 0 {
		return fmt.Errorf("namm: model has %d layers and %d KV heads", m.NumLayers, m.NumKVHeads)
	}
	p.info = m
	p.layers = make([][]headFeatures, m.NumLayers)
	for l := range p.layers {
		p.layers[l] = make([]headFeatures, m.NumKVHeads)
	}
	p.history = nil
	p.prepared = nil
	p.scoreTime = 0
	p.ahead.Store(false)
	return nil
}

// ScoreTime is the time spent scoring (BAM and building its inputs) since
// the last Reset (namm bench --profile reports it).
func (p *Policy) ScoreTime() time.Duration { return p.scoreTime }

// NeedsFor implements policy.Policy: with host features NAMM reads every
// attention row; in-graph features need nothing to leave the graph.
func (p *Policy) NeedsFor(policy.Pass) policy.Needs {
	return policy.Needs{Rows: p.hostFeatures()}
}

// KeptHistory returns the per-layer cache sizes after each step of the
// current sequence.
func (p *Policy) KeptHistory() []KeptRecord { return p.history }

// Update implements policy.Policy.
func (p *Policy) Update(v *policy.LayerView) ([][]int, error) {
	if v.Layer < 0 || v.Layer >= len(p.layers) {
		return nil, fmt.Errorf("namm: layer %d out of range (model has %d; Reset not called?)", v.Layer, len(p.layers))
	}
	heads := p.layers[v.Layer]
	pass := v.Pass
	if len(v.Positions) != len(heads) {
		return nil, fmt.Errorf("namm: layer %d has %d KV heads, model info says %d", v.Layer, len(v.Positions), len(heads))
	}
	end := pass.Processed()
	if next := (pass.Start/StepEvery + 1) * StepEvery; next < end {
		return nil, fmt.Errorf("namm: pass [%d, %d) crosses the NAMM step at %d; split passes at multiples of %d", pass.Start, end, next, StepEvery)
	}
	if !p.hostFeatures() {
		if v.State == nil {
			return nil, fmt.Errorf("namm: layer %d: the engine gave no device state (in-graph features); use namm:...,features=host", v.Layer)
		}
		if end%StepEvery != 0 || pass.NewTokens == 0 {
			return nil, nil
		}
		return p.deviceStep(v, end)
	}
	if len(v.Rows) != len(heads) {
		return nil, fmt.Errorf("namm: layer %d: %d attention row sets for %d KV heads (NAMM needs Rows)", v.Layer, len(v.Rows), len(heads))
	}
	for k := range heads {
		h := &heads[k]
		s := len(v.Positions[k])
		if s-h.n != pass.NewTokens {
			return nil, fmt.Errorf("namm: layer %d head %d holds %d tokens, NAMM tracked %d plus %d new", v.Layer, k, s, h.n, pass.NewTokens)
		}
		if len(v.Rows[k]) != pass.NewTokens {
			return nil, fmt.Errorf("namm: layer %d head %d: %d attention rows for %d new tokens", v.Layer, k, len(v.Rows[k]), pass.NewTokens)
		}
		for t, row := range v.Rows[k] {
			if len(row) < s {
				return nil, fmt.Errorf("namm: layer %d head %d row %d has %d values for %d cached tokens", v.Layer, k, t, len(row), s)
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
	if end%StepEvery != 0 || pass.NewTokens == 0 {
		return nil, nil
	}
	return p.step(v, heads, end)
}

// step scores every token of the layer and evicts.
func (p *Policy) step(v *policy.LayerView, heads []headFeatures, processed int) ([][]int, error) {
	if p.stats != nil {
		for k := range heads {
			p.stats.add(heads[k].omega)
		}
		p.record(v.Layer, heads, processed)
		return nil, nil
	}
	t0 := time.Now()
	scores := make([][]float32, len(heads))
	xs := make([][][FeatDims]float32, len(heads))
	par.For(len(heads), 0, func(k int) {
		h := &heads[k]
		xs[k] = make([][FeatDims]float32, h.n)
		buildInputs(h.omega, v.Positions[k], &p.norm, xs[k])
		if p.scorer == nil {
			scores[k] = Score(&p.params, xs[k])
		}
	})
	if p.scorer != nil {
		var err error
		if scores, err = p.scorer.Score(&p.params, xs); err != nil {
			return nil, fmt.Errorf("namm: layer %d step at %d: %w", v.Layer, processed, err)
		}
	}
	p.scoreTime += time.Since(t0)
	keep := selectKeep(scores, p.cfg.Mode, p.cfg.Cap)
	if keep != nil {
		for k := range heads {
			heads[k].gather(keep[k])
		}
	}
	p.record(v.Layer, heads, processed)
	return keep, nil
}

func (p *Policy) record(layer int, heads []headFeatures, processed int) {
	size := 0
	for k := range heads {
		size = max(size, heads[k].n)
	}
	p.recordSize(layer, size, processed)
}

func (p *Policy) recordSize(layer, size, processed int) {
	if n := len(p.history); n == 0 || p.history[n-1].Processed != processed {
		p.history = append(p.history, KeptRecord{Processed: processed, PerLayer: make([]int, len(p.layers))})
	}
	p.history[len(p.history)-1].PerLayer[layer] = size
}

// Prepare implements policy.Preparer: at a NAMM step with in-graph
// features, it scores every layer's device state in as few executions as
// the scorer allows (Scorer.ScoreLayers), instead of one or more per layer.
func (p *Policy) Prepare(views []*policy.LayerView) error {
	p.prepared = nil
	if len(views) == 0 || p.hostFeatures() || p.scorer == nil || p.stats != nil {
		return nil
	}
	pass := views[0].Pass
	if end := pass.Processed(); end%StepEvery != 0 || pass.NewTokens == 0 {
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
	t0 := time.Now()
	scores, err := p.scorer.ScoreLayers(&p.params, &p.norm, states, pos, used)
	p.scoreTime += time.Since(t0)
	if err != nil {
		return fmt.Errorf("namm: step at %d: %w", pass.Processed(), err)
	}
	p.prepared = scores
	return nil
}

// Precompile implements policy.Precompiler: the scoring graph of a
// prefill's first step (each later step's is compiled ahead when the step
// before it ends, precompileNext). Compiling every size a step may score
// ahead made the shipped NAMM's first 8k prompt on model A slower, not
// faster: most sizes went unused and the compilations slowed each other
// down.
func (p *Policy) Precompile(state, pos shapes.Shape, numLayers, promptLen int) {
	if p.hostFeatures() || p.scorer == nil || !p.scorer.compiled() || p.stats != nil || state.Rank() != 3 {
		return
	}
	p.ahead.Store(true)
	if promptLen < StepEvery {
		return
	}
	_ = p.scorer.PrecompileLayers(&p.params, &p.norm, state, pos, numLayers, min(state.Dimensions[1], bucket.Round(StepEvery)))
}

// precompileNext starts compiling, in the background, the scoring graph of
// the next step once a step has scored its last layer: the next step scores
// the most tokens a layer kept plus the StepEvery tokens to come (one
// bucket, known only now for a NAMM that evicts).
func (p *Policy) precompileNext(st *policy.DeviceView) {
	if !p.ahead.Load() || p.scorer == nil || !p.scorer.compiled() || len(p.history) == 0 {
		return
	}
	kept := slices.Max(p.history[len(p.history)-1].PerLayer)
	state, pos, layers := st.State.Shape(), st.Pos.Shape(), p.info.NumLayers
	c := min(state.Dimensions[1], bucket.Round(kept+StepEvery))
	go func() { _ = p.scorer.PrecompileLayers(&p.params, &p.norm, state, pos, layers, c) }()
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

// deviceStep is step for in-graph features: the state lives in the
// engine's cache, which gathers it along with K and V.
func (p *Policy) deviceStep(v *policy.LayerView, processed int) ([][]int, error) {
	st := v.State
	if len(st.Slots) != len(v.Positions) {
		return nil, fmt.Errorf("namm: layer %d: device state lists %d heads, the view %d", v.Layer, len(st.Slots), len(v.Positions))
	}
	var scores [][]float32
	t0 := time.Now()
	switch {
	case p.stats != nil || p.scorer == nil:
		omegas, err := stateOmegas(st.State, st.Slots)
		if err != nil {
			return nil, fmt.Errorf("namm: layer %d: %w", v.Layer, err)
		}
		if p.stats != nil {
			for _, om := range omegas {
				p.stats.add(om)
			}
			p.recordSize(v.Layer, maxLen(v.Positions), processed)
			return nil, nil
		}
		scores = make([][]float32, len(omegas))
		par.For(len(omegas), 0, func(k int) {
			xs := make([][FeatDims]float32, len(v.Positions[k]))
			buildInputs(omegas[k], v.Positions[k], &p.norm, xs)
			scores[k] = Score(&p.params, xs)
		})
	default:
		var flat []float32
		if v.Layer < len(p.prepared) && p.prepared[v.Layer] != nil {
			flat, p.prepared[v.Layer] = p.prepared[v.Layer], nil
		} else {
			var err error
			if flat, err = p.scorer.ScoreState(&p.params, &p.norm, st.State, st.Pos, usedSlots(st)); err != nil {
				return nil, fmt.Errorf("namm: layer %d step at %d: %w", v.Layer, processed, err)
			}
		}
		c := st.State.Shape().Dimensions[1]
		scores = make([][]float32, len(st.Slots))
		for k, sl := range st.Slots {
			scores[k] = make([]float32, len(sl))
			for i, slot := range sl {
				scores[k][i] = flat[k*c+slot]
			}
		}
	}
	p.scoreTime += time.Since(t0)
	keep := selectKeep(scores, p.cfg.Mode, p.cfg.Cap)
	size := maxLen(v.Positions)
	if keep != nil {
		size = maxLen(keep)
	}
	p.recordSize(v.Layer, size, processed)
	if v.Layer == p.info.NumLayers-1 {
		p.precompileNext(st)
	}
	return keep, nil
}

// maxLen is the length of the longest list (a layer's largest head).
func maxLen[T any](lists [][]T) int {
	n := 0
	for _, l := range lists {
		n = max(n, len(l))
	}
	return n
}
