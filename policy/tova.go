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
type TOVA struct{}

func init() {
	registerScorer("tova", "TOVA: evict the tokens least attended by the last query, averaged over heads (Oren et al. 2024)",
		nil, func(string, Options) (Scorer, []string, error) { return TOVA{}, nil, nil })
}

// NeedsFor implements Scorer: the last query's row.
func (TOVA) NeedsFor(Pass) Needs { return Needs{LastRow: true} }

// Protect implements Scorer: only the newest token.
func (TOVA) Protect(int) Protect { return Protect{} }

// Score implements Scorer: the last row averaged over the layer's heads, one
// slice shared by every head. Heads holding different tokens (never the case
// under TOVA alone) are scored by original position, over the heads that
// hold it.
func (TOVA) Score(v *LayerView, _ [][]float64) ([][]float64, error) {
	if len(v.LastRow) != len(v.Positions) {
		return nil, statError("tova", "LastRow", v)
	}
	for k := range v.Positions {
		if len(v.LastRow[k]) != len(v.Positions[k]) {
			return nil, statError("tova", "LastRow", v)
		}
	}
	scores := make([][]float64, len(v.Positions))
	if headsAligned(v.Positions) {
		sum := make([]float64, len(v.Positions[0]))
		for k := range v.Positions {
			for i, a := range v.LastRow[k] {
				sum[i] += float64(a)
			}
		}
		for k := range scores {
			scores[k] = sum
		}
		return scores, nil
	}
	sum := map[int32]float64{}
	count := map[int32]int{}
	for k, pos := range v.Positions {
		for i, p := range pos {
			sum[p] += float64(v.LastRow[k][i])
			count[p]++
		}
	}
	for k, pos := range v.Positions {
		scores[k] = make([]float64, len(pos))
		for i, p := range pos {
			scores[k][i] = sum[p] / float64(count[p])
		}
	}
	return scores, nil
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
