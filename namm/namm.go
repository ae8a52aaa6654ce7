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
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"

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

// Policy is the NAMM memory policy. It implements policy.Policy.
type Policy struct {
	name   string
	params Params
	norm   Norm
	cfg    Config
	stats  *StatsCollector // non-nil in stats mode: evict nothing, accumulate
	scorer *Scorer         // non-nil: score on a backend instead of the Go loop

	info    policy.ModelInfo
	feat    features // set by Reset and UseBackend
	history []KeptRecord
	// scoreTime is the time spent scoring since Reset: BAM with its inputs
	// (on a device it ends in a device-to-host copy, so it is the device's
	// time too).
	scoreTime time.Duration
}

// The optional capabilities the NAMM has.
var (
	_ policy.DeviceState = (*Policy)(nil)
	_ policy.Preparer    = (*Policy)(nil)
	_ policy.Precompiler = (*Policy)(nil)
	_ policy.BackendUser = (*Policy)(nil)
	_ policy.ScoreTimer  = (*Policy)(nil)
)

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
// default and the reference. It implements policy.BackendUser; call it
// before a sequence's first pass (the engine calls it right after Reset):
// with features=auto it picks the features, which start empty.
func (p *Policy) UseBackend(b backends.Backend) error {
	if b == nil {
		p.scorer = nil
		if p.feat != nil {
			p.feat = p.newFeatures()
		}
		return nil
	}
	s, err := NewScorer(b)
	if err != nil {
		return err
	}
	p.scorer = s
	if p.feat != nil {
		p.feat = p.newFeatures()
	}
	return nil
}

// Name implements policy.Policy.
func (p *Policy) Name() string { return p.name }

// Fingerprint identifies the NAMM by content, as its file's Fingerprint
// does. Results record it, since a file at one path can be replaced. A
// stats-mode policy has none ("").
func (p *Policy) Fingerprint() string {
	if p.stats != nil {
		return ""
	}
	return fingerprint(p.params.Flat(), p.norm)
}

// Reset implements policy.Policy.
func (p *Policy) Reset(m policy.ModelInfo) error {
	if m.NumLayers <= 0 || m.NumKVHeads <= 0 {
		return fmt.Errorf("namm: model has %d layers and %d KV heads", m.NumLayers, m.NumKVHeads)
	}
	p.info = m
	p.feat = p.newFeatures()
	p.history = nil
	p.scoreTime = 0
	return nil
}

// features returns the policy's features, or before Reset the ones it
// will have.
func (p *Policy) features() features {
	if p.feat != nil {
		return p.feat
	}
	return p.newFeatures()
}

// ScoreTime is the time spent scoring (BAM and building its inputs) since
// the last Reset (namm bench --profile reports it).
func (p *Policy) ScoreTime() time.Duration { return p.scoreTime }

// NeedsFor implements policy.Policy: with host features NAMM reads every
// attention row; in-graph features need nothing to leave the graph.
func (p *Policy) NeedsFor(policy.Pass) policy.Needs {
	return p.features().needs()
}

// KeptHistory returns the per-layer cache sizes after each step of the
// current sequence.
func (p *Policy) KeptHistory() []KeptRecord { return p.history }

// Update implements policy.Policy.
func (p *Policy) Update(v *policy.LayerView) ([][]int, error) {
	if p.feat == nil || v.Layer < 0 || v.Layer >= p.info.NumLayers {
		return nil, fmt.Errorf("namm: layer %d out of range (model has %d; Reset not called?)", v.Layer, p.info.NumLayers)
	}
	pass := v.Pass
	if len(v.Positions) != p.info.NumKVHeads {
		return nil, fmt.Errorf("namm: layer %d has %d KV heads, model info says %d", v.Layer, len(v.Positions), p.info.NumKVHeads)
	}
	end := pass.Processed()
	if next := (pass.Start/StepEvery + 1) * StepEvery; next < end {
		return nil, fmt.Errorf("namm: pass [%d, %d) crosses the NAMM step at %d; split passes at multiples of %d", pass.Start, end, next, StepEvery)
	}
	if err := p.feat.observe(v); err != nil {
		return nil, err
	}
	if end%StepEvery != 0 || pass.NewTokens == 0 {
		return nil, nil
	}
	return p.step(v)
}

// step scores every token of layer v and evicts (in the statistics mode,
// adds the features to the statistics and evicts nothing).
func (p *Policy) step(v *policy.LayerView) ([][]int, error) {
	processed := v.Pass.Processed()
	if p.stats != nil {
		omegas, err := p.feat.omegas(v)
		if err != nil {
			return nil, err
		}
		for _, om := range omegas {
			p.stats.add(om)
		}
		p.recordSize(v.Layer, maxLen(v.Positions), processed)
		return nil, nil
	}
	t0 := time.Now()
	scores, err := p.feat.scores(v)
	if err != nil {
		return nil, err
	}
	p.scoreTime += time.Since(t0)
	keep := selectKeep(scores, p.cfg.Mode, p.cfg.Cap)
	size := maxLen(v.Positions)
	if keep != nil {
		size = maxLen(keep)
	}
	p.recordSize(v.Layer, size, processed)
	p.feat.stepped(v, keep)
	return keep, nil
}

func (p *Policy) recordSize(layer, size, processed int) {
	if n := len(p.history); n == 0 || p.history[n-1].Processed != processed {
		p.history = append(p.history, KeptRecord{Processed: processed, PerLayer: make([]int, p.info.NumLayers)})
	}
	p.history[len(p.history)-1].PerLayer[layer] = size
}

// Prepare implements policy.Preparer: at a NAMM step with features scored
// on the device, it scores every layer's device state in as few executions
// as the scorer allows (Scorer.ScoreLayers), instead of one or more per
// layer.
func (p *Policy) Prepare(views []*policy.LayerView) error {
	sp, ok := p.feat.(stepPreparer)
	if !ok || p.stats != nil {
		return nil
	}
	t0 := time.Now()
	err := sp.prepare(views)
	p.scoreTime += time.Since(t0)
	return err
}

// Precompile implements policy.Precompiler: the scoring graph of a
// prefill's first step, for features scored on a compiled backend.
func (p *Policy) Precompile(state, pos shapes.Shape, numLayers, promptLen int) {
	if ac, ok := p.features().(aheadCompiler); ok && p.stats == nil {
		ac.precompile(state, pos, numLayers, promptLen)
	}
}

// maxLen is the length of the longest list (a layer's largest head).
func maxLen[T any](lists [][]T) int {
	n := 0
	for _, l := range lists {
		n = max(n, len(l))
	}
	return n
}
