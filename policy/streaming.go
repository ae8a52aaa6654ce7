package policy

import "fmt"

// Streaming is StreamingLLM (Xiao, Tian, Chen, Han, Lewis, "Efficient
// Streaming Language Models with Attention Sinks", ICLR 2024,
// arXiv:2309.17453): keep the first Sinks tokens (attention sinks) and a
// window of the most recent budget-Sinks tokens; evict whenever a head holds
// more than the budget after a pass. Needs no statistics.
//
// Defaults: sinks=4 (the paper's choice). Options: sinks=N (>= 0). When the
// budget is at most sinks, the window keeps at least the newest token and the
// sinks are cut to fit.
type Streaming struct {
	budget Budget
	sinks  int
}

func init() {
	Register("streaming", "StreamingLLM: 4 attention sinks + recent window (Xiao et al. 2023); options sinks=N", newStreaming)
}

func newStreaming(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("streaming", "sinks"); err != nil {
		return nil, err
	}
	if err := requireBudget("streaming", b); err != nil {
		return nil, err
	}
	sinks, err := opts.Int("streaming", "sinks", 4)
	if err != nil {
		return nil, err
	}
	if sinks < 0 {
		return nil, fmt.Errorf("%w: policy streaming option sinks=%d must be >= 0", ErrBadOption, sinks)
	}
	return &Streaming{budget: b, sinks: sinks}, nil
}

// Name implements Policy.
func (s *Streaming) Name() string {
	return specName("streaming", s.budget, fmt.Sprintf("sinks=%d", s.sinks))
}

// Reset implements Policy.
func (s *Streaming) Reset(ModelInfo) error { return nil }

// NeedsFor implements Policy: nothing.
func (s *Streaming) NeedsFor(Pass) Needs { return Needs{} }

// BoundAfter implements Bounded.
func (s *Streaming) BoundAfter(layer int, p Pass) (int, bool) {
	return passLimit(s.budget, layer, p), true
}

// Update implements Policy.
func (s *Streaming) Update(v *LayerView) ([][]int, error) {
	limit := passLimit(s.budget, v.Layer, v.Pass)
	if v.Len() <= limit {
		return nil, nil
	}
	keep := make([][]int, len(v.Positions))
	for k, pos := range v.Positions {
		sinks := min(s.sinks, limit-1)
		keep[k] = SelectTopK(make([]float64, len(pos)), limit, Protect{Sinks: sinks, Recent: limit - sinks})
	}
	return completeKeep(keep, v), nil
}
