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
	if cap > 0 {
		return selectKeepCapped(scores, mode, cap)
	}
	// Without a cap only the negative-scored tokens can go: count them, and
	// sort only them (a layer that drops nothing, as an all-zero NAMM's,
	// sorts nothing; a full sort of every head's 8k scores per layer and
	// step was ~0.3 s of an 8k prompt on Llama-3-8B).
	negs := make([][]int, len(scores))
	minDrop := math.MaxInt
	for h, sc := range scores {
		for i, v := range sc[:max(len(sc)-1, 0)] { // the newest token is kept
			if v < 0 || v != v {
				negs[h] = append(negs[h], i)
			}
		}
		minDrop = min(minDrop, len(negs[h]))
	}
	if mode == Reference && minDrop == 0 {
		return nil
	}
	keep := make([][]int, len(scores))
	any := false
	for h, sc := range scores {
		drop := negs[h]
		if mode == Reference && len(drop) > minDrop {
			// The minDrop lowest, older first among equal scores.
			key := func(i int) float32 {
				if sc[i] != sc[i] {
					return float32(math.Inf(-1))
				}
				return sc[i]
			}
			slices.SortStableFunc(drop, func(a, b int) int { return cmp.Compare(key(a), key(b)) })
			drop = drop[:minDrop]
			slices.Sort(drop)
		}
		any = any || len(drop) > 0
		kept := make([]int, 0, len(sc)-len(drop))
		j := 0
		for i := range sc {
			if j < len(drop) && drop[j] == i {
				j++
				continue
			}
			kept = append(kept, i)
		}
		keep[h] = kept
	}
	if !any {
		return nil
	}
	return keep
}

// selectKeepCapped is selectKeep with a cap: each head's scores sorted
// (stable, newest +inf, NaN -inf), its cap best kept, then the negatives
// among those dropped as selectKeep does.
func selectKeepCapped(scores [][]float32, mode Mode, cap int) [][]int {
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
		if n > cap {
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
