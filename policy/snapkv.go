package policy

import "fmt"

// SnapKV (Li, Huang, Yang, Venkitesh, Locatelli, Ye, Cai, Lewis, Chen,
// "SnapKV: LLM Knows What You are Looking for Before Generation", NeurIPS
// 2024, arXiv:2404.14469) compresses the prompt once, at the end of prefill:
// the observation window is the last Window queries of the prompt; each
// earlier (prefix) token of a head scores the sum over the window queries of
// their attention to it; the scores are smoothed by a 1-D max pooling of
// width Kernel (same padding, over the prefix in cache order); each head
// keeps its top budget-Window prefix tokens plus the window itself. Nothing
// is evicted before the last prefill chunk nor, as in the paper, during
// decoding, so the cache grows again past the budget while generating.
//
// The window may span two or more prefill chunks: the policy asks for Rows
// in every chunk that holds window queries and accumulates them by position.
// Rows are averaged over the query heads of a KV group (the paper scores per
// query head; under GQA the engine keeps one selection per KV head).
//
// Defaults: window=32, kernel=7. Options: window=W (>= 1), kernel=K (odd,
// >= 1; 1 disables pooling), decode=1: also evict during decoding whenever a
// head exceeds the budget, scoring tokens by their prefill window score plus
// all attention received while decoding, pooled the same way, with the last
// W tokens protected (our extension; the paper does not evict in decoding).
// A budget below the window keeps only the most recent budget tokens.
type SnapKV struct {
	budget Budget
	window int
	kernel int
	decode bool
	// win[layer][head][position]: window attention received, during prefill.
	win [][][]float64
	// score: index-aligned scores for decode=1, once prefill is done.
	score layerState
	done  []bool // [L] prefill done
}

func init() {
	Register("snapkv", "SnapKV: prompt compression by the last 32 queries' pooled attention, at prefill end (Li et al. 2024); options window=W,kernel=K,decode=1", newSnapKV)
}

func newSnapKV(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("snapkv", "window", "kernel", "decode"); err != nil {
		return nil, err
	}
	if err := requireBudget("snapkv", b); err != nil {
		return nil, err
	}
	s := &SnapKV{budget: b}
	var err error
	if s.window, err = opts.Int("snapkv", "window", 32); err != nil {
		return nil, err
	}
	if s.kernel, err = opts.Int("snapkv", "kernel", 7); err != nil {
		return nil, err
	}
	dec, err := opts.Int("snapkv", "decode", 0)
	if err != nil {
		return nil, err
	}
	switch {
	case s.window < 1:
		return nil, fmt.Errorf("%w: policy snapkv option window=%d must be >= 1", ErrBadOption, s.window)
	case s.kernel < 1 || s.kernel%2 == 0:
		return nil, fmt.Errorf("%w: policy snapkv option kernel=%d must be odd and >= 1", ErrBadOption, s.kernel)
	case dec != 0 && dec != 1:
		return nil, fmt.Errorf("%w: policy snapkv option decode=%d must be 0 or 1", ErrBadOption, dec)
	}
	s.decode = dec == 1
	return s, nil
}

// Name implements Policy.
func (s *SnapKV) Name() string {
	opts := []string{fmt.Sprintf("window=%d", s.window), fmt.Sprintf("kernel=%d", s.kernel)}
	if s.decode {
		opts = append(opts, "decode=1")
	}
	return specName("snapkv", s.budget, opts...)
}

// Reset implements Policy.
func (s *SnapKV) Reset(m ModelInfo) error {
	s.win = make([][][]float64, m.NumLayers)
	for l := range s.win {
		s.win[l] = make([][]float64, m.NumKVHeads)
	}
	s.score = newLayerState(m)
	s.done = make([]bool, m.NumLayers)
	return nil
}

// windowStart is the first position of the observation window.
func (s *SnapKV) windowStart(p Pass) int { return max(p.PromptLen-s.window, 0) }

// NeedsFor implements Policy: Rows for the chunks holding window queries;
// ColSums in decoding when decode=1.
func (s *SnapKV) NeedsFor(p Pass) Needs {
	if p.Phase == Prefill {
		return Needs{Rows: p.Processed() > s.windowStart(p)}
	}
	return Needs{ColSums: s.decode}
}

// BoundAfter implements Bounded: after the last prefill chunk, and in
// decoding only with decode=1.
func (s *SnapKV) BoundAfter(layer int, p Pass) (int, bool) {
	if (p.Phase == Prefill && p.LastPrefill) || (p.Phase == Decode && s.decode) {
		return s.budget.Limit(layer, p.Processed()), true
	}
	return 0, false
}

func (s *SnapKV) stateLens(layer int) []int {
	if !s.decode || layer < 0 || layer >= len(s.done) || !s.done[layer] {
		return nil
	}
	return s.score.lens(layer)
}

// Update implements Policy.
func (s *SnapKV) Update(v *LayerView) ([][]int, error) {
	if v.Layer < 0 || v.Layer >= len(s.win) || len(s.win[v.Layer]) != len(v.Positions) {
		return nil, fmt.Errorf("policy snapkv: layer %d with %d heads does not match Reset", v.Layer, len(v.Positions))
	}
	if v.Pass.Phase == Decode {
		return s.updateDecode(v)
	}
	if v.Pass.Processed() > s.windowStart(v.Pass) {
		if err := s.accumulate(v); err != nil {
			return nil, err
		}
	}
	if !v.Pass.LastPrefill {
		return nil, nil
	}
	win := s.win[v.Layer]
	s.done[v.Layer] = true
	limit := s.budget.Limit(v.Layer, v.Pass.Processed())
	w := min(s.window, limit)
	keep := make([][]int, len(v.Positions))
	for k, pos := range v.Positions {
		score := make([]float64, len(pos))
		for i, p := range pos {
			if int(p) < len(win[k]) {
				score[i] = win[k][p]
			}
		}
		if s.decode {
			s.score[v.Layer][k] = append([]float64(nil), score...)
		}
		if len(pos) <= limit {
			continue
		}
		prefix := len(pos) - w
		copy(score, maxPool(score[:prefix], s.kernel))
		keep[k] = SelectTopK(score, limit, Protect{Recent: w})
	}
	s.win[v.Layer] = make([][]float64, len(win)) // free the prompt-sized buffers
	keep = completeKeep(keep, v)
	if s.decode {
		CompactHeads(s.score[v.Layer], keep)
	}
	return keep, nil
}

// accumulate adds the window queries' rows of this chunk, by position.
func (s *SnapKV) accumulate(v *LayerView) error {
	if len(v.Rows) != len(v.Positions) {
		return statError("snapkv", "Rows", v)
	}
	start := s.windowStart(v.Pass)
	for k, pos := range v.Positions {
		if s.win[v.Layer][k] == nil {
			s.win[v.Layer][k] = make([]float64, v.Pass.PromptLen)
		}
		acc := s.win[v.Layer][k]
		for t, row := range v.Rows[k] {
			if v.Pass.Start+t < start {
				continue
			}
			if len(row) != len(pos) {
				return statError("snapkv", "Rows", v)
			}
			for i, a := range row {
				if p := int(pos[i]); p < len(acc) {
					acc[p] += float64(a)
				}
			}
		}
	}
	return nil
}

func (s *SnapKV) updateDecode(v *LayerView) ([][]int, error) {
	if !s.decode {
		return nil, nil
	}
	score, err := s.score.heads("snapkv", v)
	if err != nil {
		return nil, err
	}
	if len(v.ColSums) != len(score) {
		return nil, statError("snapkv", "ColSums", v)
	}
	for k := range score {
		if len(v.ColSums[k]) != len(score[k]) {
			return nil, statError("snapkv", "ColSums", v)
		}
		for i, c := range v.ColSums[k] {
			score[k][i] += float64(c)
		}
	}
	limit := s.budget.Limit(v.Layer, v.Pass.Processed())
	if v.Len() <= limit {
		return nil, nil
	}
	w := min(s.window, limit)
	keep := make([][]int, len(score))
	for k, sc := range score {
		if len(sc) <= limit {
			continue
		}
		pooled := append(maxPool(sc[:len(sc)-w], s.kernel), sc[len(sc)-w:]...)
		keep[k] = SelectTopK(pooled, limit, Protect{Recent: w})
	}
	keep = completeKeep(keep, v)
	CompactHeads(score, keep)
	return keep, nil
}

// maxPool is a 1-D max pooling of odd width kernel with "same" padding: out[i]
// is the max of x over [i-kernel/2, i+kernel/2] clipped to the slice.
func maxPool(x []float64, kernel int) []float64 {
	out := make([]float64, len(x))
	h := kernel / 2
	for i := range x {
		m := x[i]
		for j := max(i-h, 0); j <= min(i+h, len(x)-1); j++ {
			m = max(m, x[j])
		}
		out[i] = m
	}
	return out
}
