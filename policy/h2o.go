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
// hitters), evicting whenever it holds more than the budget after a pass.
//
// Defaults: recent = heavy = budget/2 (recent_ratio=0.5, the paper's and the
// NAMM reference's split). Options: recent=N (tokens) or recent_ratio=R (a
// fraction of the budget in [0, 1]), not both.
type H2O struct {
	budget      Budget
	recent      int     // fixed window, or -1 to use recentRatio
	recentRatio float64 // fraction of the limit
	acc         layerState
}

func init() {
	Register("h2o", "H2O: accumulated-attention heavy hitters + recent window (Zhang et al. 2023); options recent=N | recent_ratio=R", newH2O)
}

func newH2O(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("h2o", "recent", "recent_ratio"); err != nil {
		return nil, err
	}
	if err := requireBudget("h2o", b); err != nil {
		return nil, err
	}
	recent, ratio, err := recentOptions("h2o", opts, 0.5)
	if err != nil {
		return nil, err
	}
	return &H2O{budget: b, recent: recent, recentRatio: ratio}, nil
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

// recentFor is the recent window for a limit.
func recentFor(limit, recent int, ratio float64) int {
	if recent >= 0 {
		return min(recent, limit)
	}
	return int(ratio * float64(limit))
}

// Name implements Policy.
func (h *H2O) Name() string {
	if h.recent >= 0 {
		return specName("h2o", h.budget, fmt.Sprintf("recent=%d", h.recent))
	}
	return specName("h2o", h.budget, fmt.Sprintf("recent_ratio=%g", h.recentRatio))
}

// Reset implements Policy.
func (h *H2O) Reset(m ModelInfo) error {
	h.acc = newLayerState(m)
	return nil
}

// NeedsFor implements Policy: column sums of every pass.
func (h *H2O) NeedsFor(Pass) Needs { return Needs{ColSums: true} }

// BoundAfter implements Bounded.
func (h *H2O) BoundAfter(layer int, p Pass) (int, bool) {
	return passLimit(h.budget, layer, p), true
}

func (h *H2O) stateLens(layer int) []int { return h.acc.lens(layer) }

// Update implements Policy.
func (h *H2O) Update(v *LayerView) ([][]int, error) {
	acc, err := h.acc.heads("h2o", v)
	if err != nil {
		return nil, err
	}
	if len(v.ColSums) != len(v.Positions) {
		return nil, statError("h2o", "ColSums", v)
	}
	for k := range acc {
		if len(v.ColSums[k]) != len(acc[k]) {
			return nil, statError("h2o", "ColSums", v)
		}
		for i, c := range v.ColSums[k] {
			acc[k][i] += float64(c)
		}
	}
	limit := passLimit(h.budget, v.Layer, v.Pass)
	if v.Len() <= limit {
		return nil, nil
	}
	recent := recentFor(limit, h.recent, h.recentRatio)
	keep := make([][]int, len(acc))
	for k := range acc {
		keep[k] = SelectTopK(acc[k], limit, Protect{Recent: recent})
	}
	keep = completeKeep(keep, v)
	CompactHeads(acc, keep)
	return keep, nil
}
