package policy

import "fmt"

// Streaming is StreamingLLM (Xiao, Tian, Chen, Han, Lewis, "Efficient
// Streaming Language Models with Attention Sinks", ICLR 2024,
// arXiv:2309.17453): keep the first Sinks tokens (attention sinks) and a
// window of the most recent budget-Sinks tokens. Needs no statistics: every
// token scores the same, the protection does the work.
//
// Defaults: sinks=4 (the paper's choice). Options: sinks=N (>= 0). When the
// budget is at most sinks, the window keeps at least the newest token and the
// sinks are cut to fit.
type Streaming struct {
	Sinks int
}

func init() {
	registerScorer("streaming", "StreamingLLM: 4 attention sinks + recent window (Xiao et al. 2023); options sinks=N",
		[]string{"sinks"}, func(name string, opts Options) (Scorer, []string, error) {
			sinks, err := opts.Int(name, "sinks", 4)
			if err != nil {
				return nil, nil, err
			}
			if sinks < 0 {
				return nil, nil, fmt.Errorf("%w: policy streaming option sinks=%d must be >= 0", ErrBadOption, sinks)
			}
			return Streaming{Sinks: sinks}, []string{fmt.Sprintf("sinks=%d", sinks)}, nil
		})
}

// NeedsFor implements Scorer: nothing.
func (Streaming) NeedsFor(Pass) Needs { return Needs{} }

// Protect implements Scorer: the sinks and the rest of the limit as window.
func (s Streaming) Protect(limit int) Protect {
	sinks := min(s.Sinks, limit-1)
	return Protect{Sinks: sinks, Recent: limit - sinks}
}

// Score implements Scorer: zero for every token.
func (Streaming) Score(v *LayerView, _ [][]float64) ([][]float64, error) {
	scores := make([][]float64, len(v.Positions))
	for k, pos := range v.Positions {
		scores[k] = make([]float64, len(pos))
	}
	return scores, nil
}
