package policy

import "fmt"

// Scorer is a memory policy that only ranks tokens, as kvpress's
// ScorerPress: StreamingLLM, H2O, L2/KNorm, TOVA and random are each a
// Scorer, and ScorerPolicy turns one into a Policy with the shared part:
// the budget's limit, the top-k selection (SelectTopK, protected tokens
// first), the completed answer and the compaction of per-token memory.
type Scorer interface {
	// NeedsFor tells which statistics Score (and Accumulate) read in pass p.
	NeedsFor(p Pass) Needs
	// Protect is what a head keeps whatever the scores, under a head limit
	// of limit tokens (a recent window, attention sinks).
	Protect(limit int) Protect
	// Score returns, per KV head of v, one score per cached token (higher
	// = keep). It is called only when a head of the layer holds more than
	// the limit. mem is the layer's per-token memory for an Accumulator,
	// nil otherwise. Heads given the same slice share one selection.
	Score(v *LayerView, mem [][]float64) ([][]float64, error)
}

// Accumulator is a Scorer with per-token memory (H2O's accumulated
// attention, L2's key norms), index-aligned with the cache: ScorerPolicy
// grows it with zeros for each pass's new tokens, calls Accumulate after
// every pass, and compacts it with the indices it keeps.
type Accumulator interface {
	Scorer
	// Accumulate folds the pass's statistics into mem [K][S]; first[k] is
	// the index of head k's first token new in this pass.
	Accumulate(v *LayerView, mem [][]float64, first []int) error
}

// Restarter is a Scorer with state of its own to restart at Reset (random's
// generator).
type Restarter interface {
	Restart(m ModelInfo) error
}

// ScorerPolicy is the Policy of a Scorer under a budget: after each pass, a
// head over its limit keeps the protected tokens and the highest scores
// (ties evict the older token).
type ScorerPolicy struct {
	name   string
	opts   []string
	budget Budget
	scorer Scorer
	mem    layerState // [L][K][S], Accumulators only
}

// NewScorerPolicy makes the policy registered as name (its options rendered
// as "key=value" in opts, for Name) from scorer and a budget, which it
// requires.
func NewScorerPolicy(name string, b Budget, scorer Scorer, opts ...string) (*ScorerPolicy, error) {
	if err := requireBudget(name, b); err != nil {
		return nil, err
	}
	return &ScorerPolicy{name: name, opts: opts, budget: b, scorer: scorer}, nil
}

// Scorer returns the policy's scorer.
func (p *ScorerPolicy) Scorer() Scorer { return p.scorer }

// Name implements Policy.
func (p *ScorerPolicy) Name() string { return specName(p.name, p.budget, p.opts...) }

// Reset implements Policy.
func (p *ScorerPolicy) Reset(m ModelInfo) error {
	if _, ok := p.scorer.(Accumulator); ok {
		p.mem = newLayerState(m)
	}
	if r, ok := p.scorer.(Restarter); ok {
		return r.Restart(m)
	}
	return nil
}

// NeedsFor implements Policy.
func (p *ScorerPolicy) NeedsFor(ps Pass) Needs { return p.scorer.NeedsFor(ps) }

// BoundAfter implements Bounded.
func (p *ScorerPolicy) BoundAfter(layer int, ps Pass) (int, bool) {
	return p.budget.Limit(layer, ps.Processed()), true
}

func (p *ScorerPolicy) stateLens(layer int) []int { return p.mem.lens(layer) }

// Update implements Policy.
func (p *ScorerPolicy) Update(v *LayerView) ([][]int, error) {
	var mem [][]float64
	if acc, ok := p.scorer.(Accumulator); ok {
		first := p.mem.lens(v.Layer)
		var err error
		if mem, err = p.mem.heads(p.name, v); err != nil {
			return nil, err
		}
		if err := acc.Accumulate(v, mem, first); err != nil {
			return nil, err
		}
	}
	limit := p.budget.Limit(v.Layer, v.Pass.Processed())
	if v.Len() <= limit {
		return nil, nil
	}
	scores, err := p.scorer.Score(v, mem)
	if err != nil {
		return nil, err
	}
	if len(scores) != len(v.Positions) {
		return nil, fmt.Errorf("policy %s: layer %d: %d heads scored, %d cached", p.name, v.Layer, len(scores), len(v.Positions))
	}
	protect := p.scorer.Protect(limit)
	keep := make([][]int, len(scores))
	for k, s := range scores {
		if len(s) != len(v.Positions[k]) {
			return nil, fmt.Errorf("policy %s: layer %d head %d: %d scores for %d tokens", p.name, v.Layer, k, len(s), len(v.Positions[k]))
		}
		if k > 0 && sameSlice(s, scores[k-1]) {
			keep[k] = keep[k-1]
			continue
		}
		keep[k] = SelectTopK(s, limit, protect)
	}
	keep = completeKeep(keep, v)
	CompactHeads(mem, keep)
	return keep, nil
}

// sameSlice reports whether a and b are one slice.
func sameSlice(a, b []float64) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// registerScorer registers a Scorer's policy under name: its factory checks
// the options against allowed, requires a budget, then calls newScorer,
// which validates the option values and renders them ("key=value") for the
// policy's Name.
func registerScorer(name, help string, allowed []string, newScorer func(name string, opts Options) (Scorer, []string, error)) {
	Register(name, help, func(opts Options, b Budget) (Policy, error) {
		if err := opts.Check(name, allowed...); err != nil {
			return nil, err
		}
		if err := requireBudget(name, b); err != nil {
			return nil, err
		}
		s, rendered, err := newScorer(name, opts)
		if err != nil {
			return nil, err
		}
		return NewScorerPolicy(name, b, s, rendered...)
	})
}
