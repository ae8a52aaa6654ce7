package policy

import (
	"fmt"
	"math"
)

// H2O is the Heavy-Hitter Oracle (Zhang, Sheng, Zhou, Chen, Zheng, Cai, Song,
// Tian, Ré, Barrett, Wang, Chen, "H2O: Heavy-Hitter Oracle for Efficient
// Generative Inference of Large Language Models", NeurIPS 2023,
// arXiv:2306.14048): each cached token's score is its accumulated attention,
// the sum of ColSums over every pass since it arrived; a head keeps a window
// of the most recent tokens plus the highest-scoring older tokens (heavy
// hitters).
//
// Defaults: recent = heavy = budget/2 (recent_ratio=0.5, the paper's and the
// NAMM reference's split). Options: recent=N (tokens) or recent_ratio=R (a
// fraction of the budget in [0, 1]), not both.
type H2O struct {
	Recent      int     // fixed window, or -1 to use RecentRatio
	RecentRatio float64 // fraction of the limit
}

func init() {
	registerScorer("h2o", "H2O: accumulated-attention heavy hitters + recent window (Zhang et al. 2023); options recent=N | recent_ratio=R",
		[]string{"recent", "recent_ratio"}, func(name string, opts Options) (Scorer, []string, error) {
			recent, ratio, err := recentOptions(name, opts, 0.5)
			if err != nil {
				return nil, nil, err
			}
			if recent >= 0 {
				return H2O{Recent: recent}, []string{fmt.Sprintf("recent=%d", recent)}, nil
			}
			return H2O{Recent: -1, RecentRatio: ratio}, []string{fmt.Sprintf("recent_ratio=%g", ratio)}, nil
		})
}

// recentOptions reads recent=N or recent_ratio=R (default def); recent is -1
// when the ratio applies.
func recentOptions(name string, opts Options, def float64) (int, float64, error) {
	_, hasN := opts["recent"]
	_, hasR := opts["recent_ratio"]
	if hasN && hasR {
		return 0, 0, fmt.Errorf("%w: policy %s takes recent or recent_ratio, not both", ErrBadOption, name)
	}
	if hasN {
		n, err := opts.Int(name, "recent", 0)
		if err != nil {
			return 0, 0, err
		}
		if n < 0 {
			return 0, 0, fmt.Errorf("%w: policy %s option recent=%d must be >= 0", ErrBadOption, name, n)
		}
		return n, 0, nil
	}
	r, err := opts.Float(name, "recent_ratio", def)
	if err != nil {
		return 0, 0, err
	}
	if r < 0 || r > 1 || math.IsNaN(r) {
		return 0, 0, fmt.Errorf("%w: policy %s option recent_ratio=%g must be in [0, 1]", ErrBadOption, name, r)
	}
	return -1, r, nil
}

// NeedsFor implements Scorer: column sums of every pass.
func (H2O) NeedsFor(Pass) Needs { return Needs{ColSums: true} }

// Protect implements Scorer: the recent window.
func (h H2O) Protect(limit int) Protect {
	if h.Recent >= 0 {
		return Protect{Recent: min(h.Recent, limit)}
	}
	return Protect{Recent: int(h.RecentRatio * float64(limit))}
}

// Accumulate implements Accumulator: adds the pass's column sums.
func (H2O) Accumulate(v *LayerView, acc [][]float64, _ []int) error {
	if len(v.ColSums) != len(v.Positions) {
		return statError("h2o", "ColSums", v)
	}
	for k := range acc {
		if len(v.ColSums[k]) != len(acc[k]) {
			return statError("h2o", "ColSums", v)
		}
		for i, c := range v.ColSums[k] {
			acc[k][i] += float64(c)
		}
	}
	return nil
}

// Score implements Scorer: the accumulated attention.
func (H2O) Score(_ *LayerView, acc [][]float64) ([][]float64, error) { return acc, nil }
