package namm

import (
	"cmp"
	"math"
	"slices"
)

// Mode selects how many tokens each KV head of a layer drops.
type Mode int

const (
	// Reference: every head drops k tokens, k = the minimum over the layer's
	// heads of the count of negative scores (namm-reference.md §3).
	Reference Mode = iota
	// PerHead: each head drops all its negative-scored tokens; heads of a
	// layer then hold different counts.
	PerHead
)

func (m Mode) String() string {
	if m == PerHead {
		return "perhead"
	}
	return "reference"
}

// selectKeep applies the eviction rule to the scores of one layer's heads
// ([K][S_k], chronological) and returns per head the ascending indices to
// keep, or nil when no head drops anything.
//
// The newest token of each head scores +inf (always kept); a NaN score is
// treated as -inf. cap > 0 first restricts each head to its cap best tokens,
// as the reference's cache_size does. Ties between equal scores drop the
// older token first (a stable sort; the reference's torch.sort leaves the
// order of ties unspecified).
func selectKeep(scores [][]float32, mode Mode, cap int) [][]int {
	orders := make([][]int, len(scores))
	drops := make([]int, len(scores))
	minDrop := math.MaxInt
	for h, sc := range scores {
		n := len(sc)
		key := func(i int) float32 {
			switch {
			case i == n-1:
				return float32(math.Inf(1))
			case sc[i] != sc[i]:
				return float32(math.Inf(-1))
			}
			return sc[i]
		}
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key(a), key(b)) })
		if cap > 0 && n > cap {
			order = order[n-cap:]
		}
		neg := 0
		for neg < len(order) && key(order[neg]) < 0 {
			neg++
		}
		orders[h] = order
		drops[h] = neg
		minDrop = min(minDrop, neg)
	}
	keep := make([][]int, len(scores))
	any := false
	for h, order := range orders {
		k := drops[h]
		if mode == Reference {
			k = minDrop
		}
		kept := slices.Clone(order[k:])
		slices.Sort(kept)
		if len(kept) != len(scores[h]) {
			any = true
		}
		keep[h] = kept
	}
	if !any {
		return nil
	}
	return keep
}
