package policy

// TOVA is Token Omission Via Attention (Oren, Hassid, Yarden, Adi, Schwartz,
// "Transformers are Multi-State RNNs", EMNLP 2024, arXiv:2401.06104): when a
// layer holds more than the budget after a pass, it evicts the tokens that
// the pass's last query attends to least. As in the paper (and kvpress's
// TOVAPress, reviewed by an author), the attention row is averaged over the
// heads of the layer and the same tokens are evicted from every head, so a
// layer's heads stay aligned.
//
// The paper drops one token per decoding step; a prefill chunk may push the
// layer over the budget by up to a chunk, and we then drop all excess tokens
// at once using the chunk's last query row (the paper's prompt handling
// likewise scores with the last prompt token). Only the newest token is
// protected. No options.
type TOVA struct {
	budget Budget
}

func init() {
	Register("tova", "TOVA: evict the tokens least attended by the last query, averaged over heads (Oren et al. 2024)", newTOVA)
}

func newTOVA(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("tova"); err != nil {
		return nil, err
	}
	if err := requireBudget("tova", b); err != nil {
		return nil, err
	}
	return &TOVA{budget: b}, nil
}

// Name implements Policy.
func (t *TOVA) Name() string { return specName("tova", t.budget) }

// Reset implements Policy.
func (t *TOVA) Reset(ModelInfo) error { return nil }

// NeedsFor implements Policy: the last query's row.
func (t *TOVA) NeedsFor(Pass) Needs { return Needs{LastRow: true} }

// BoundAfter implements Bounded.
func (t *TOVA) BoundAfter(layer int, p Pass) (int, bool) {
	return passLimit(t.budget, layer, p), true
}

// Update implements Policy.
func (t *TOVA) Update(v *LayerView) ([][]int, error) {
	limit := passLimit(t.budget, v.Layer, v.Pass)
	if v.Len() <= limit {
		return nil, nil
	}
	if len(v.LastRow) != len(v.Positions) {
		return nil, statError("tova", "LastRow", v)
	}
	for k := range v.Positions {
		if len(v.LastRow[k]) != len(v.Positions[k]) {
			return nil, statError("tova", "LastRow", v)
		}
	}
	// Mean over heads, by original position, so that heads holding different
	// tokens (never the case under TOVA alone) are still scored sensibly.
	sum := map[int32]float64{}
	count := map[int32]int{}
	aligned := headsAligned(v.Positions)
	var mean []float64
	if aligned {
		mean = make([]float64, len(v.Positions[0]))
		for k := range v.Positions {
			for i, a := range v.LastRow[k] {
				mean[i] += float64(a)
			}
		}
	} else {
		for k, pos := range v.Positions {
			for i, p := range pos {
				sum[p] += float64(v.LastRow[k][i])
				count[p]++
			}
		}
	}
	keep := make([][]int, len(v.Positions))
	for k, pos := range v.Positions {
		if aligned && k > 0 {
			keep[k] = keep[0]
			continue
		}
		score := mean
		if !aligned {
			score = make([]float64, len(pos))
			for i, p := range pos {
				score[i] = sum[p] / float64(count[p])
			}
		}
		keep[k] = SelectTopK(score, limit, Protect{})
	}
	return completeKeep(keep, v), nil
}

// headsAligned reports whether every head holds the same positions.
func headsAligned(pos [][]int32) bool {
	for _, p := range pos[1:] {
		if len(p) != len(pos[0]) {
			return false
		}
		for i := range p {
			if p[i] != pos[0][i] {
				return false
			}
		}
	}
	return true
}
