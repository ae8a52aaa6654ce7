package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Shared selection code for the baseline policies.
//
// Every policy here reduces to "score the cached tokens of a head, protect a
// few (attention sinks, a recent window, the newest token), keep the top
// scores". SelectTopK does that once for all of them.
//
// Tie-breaking is stable and documented: among equal scores the NEWER token
// wins, so the older token is evicted first. Unscored policies (StreamingLLM)
// and flat attention therefore degrade to a recency window, which is the
// safer default for language modelling.

// Protect lists the cached indices a selection keeps whatever their score.
// The newest token (index n-1) is always protected.
type Protect struct {
	Sinks  int // the first Sinks tokens of the head (StreamingLLM's attention sinks)
	Recent int // the last Recent tokens of the head, the newest included
}

// SelectTopK returns the ascending indices of the k tokens to keep among n =
// len(scores): the protected tokens, then the highest scores among the rest.
// It returns nil (keep everything) when n <= k. When the protected tokens
// alone exceed k, the recent window is shrunk first, then the sinks; the
// newest token is always kept, so at least one index is returned for k >= 1.
func SelectTopK(scores []float64, k int, p Protect) []int {
	n := len(scores)
	if n <= k {
		return nil
	}
	k = max(k, 1)
	recent := min(max(p.Recent, 1), n, k)
	sinks := min(max(p.Sinks, 0), n-recent, k-recent)
	keep := make([]bool, n)
	for i := range sinks {
		keep[i] = true
	}
	for i := n - recent; i < n; i++ {
		keep[i] = true
	}
	if evict := n - k; evict <= 8 {
		// Decoding evicts one token a step: a few linear scans beat a sort.
		return evictLowest(scores, keep, sinks, n-recent, evict)
	}
	var rest []int
	for i := sinks; i < n-recent; i++ {
		rest = append(rest, i)
	}
	sortByScoreDesc(rest, scores)
	for _, i := range rest[:k-recent-sinks] {
		keep[i] = true
	}
	return maskToIndices(keep)
}

// sortByScoreDesc orders indices by score, highest first, the newer (larger
// index) first among equals: a total order, so no stable sort is needed.
func sortByScoreDesc(idx []int, scores []float64) {
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(scores[b], scores[a]); c != 0 {
			return c
		}
		return b - a
	})
}

// evictLowest marks all tokens kept, then evicts, evict times, the lowest
// score in [from, to) (the oldest among equals), and returns the indices.
func evictLowest(scores []float64, keep []bool, from, to, evict int) []int {
	for i := from; i < to; i++ {
		keep[i] = true
	}
	for range evict {
		worst := -1
		for i := from; i < to; i++ {
			if keep[i] && (worst < 0 || scores[i] < scores[worst]) {
				worst = i
			}
		}
		keep[worst] = false
	}
	return maskToIndices(keep)
}

// maskToIndices returns the ascending indices where keep is true.
func maskToIndices(keep []bool) []int {
	out := make([]int, 0, len(keep))
	for i, ok := range keep {
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// Compact keeps s[keep[0]], s[keep[1]], ... in place and returns the shortened
// slice; keep must be ascending (as every policy returns it). A nil keep
// keeps everything.
func Compact[T any](s []T, keep []int) []T {
	if keep == nil {
		return s
	}
	for j, i := range keep {
		s[j] = s[i]
	}
	return s[:len(keep)]
}

// CompactHeads compacts per-head per-token state ([K][S]) with the per-head
// keep indices a policy returned; a nil keep, or a nil keep[k], keeps head k.
func CompactHeads[T any](state [][]T, keep [][]int) {
	if keep == nil {
		return
	}
	for k := range state {
		if k < len(keep) {
			state[k] = Compact(state[k], keep[k])
		}
	}
}

// requireBudget rejects a missing budget for a policy that needs one.
func requireBudget(name string, b Budget) error {
	if b.IsZero() {
		return fmt.Errorf("%w: policy %s needs a budget (tokens > 0, ratio in (0, 1] or per-layer tokens)", ErrBadOption, name)
	}
	return nil
}

// rejectBudget rejects a budget for a policy that sizes its cache itself.
func rejectBudget(name, why string, b Budget) error {
	if !b.IsZero() {
		return fmt.Errorf("%w: policy %s takes no budget (%s)", ErrBadOption, name, why)
	}
	return nil
}

// specName renders a policy's canonical name: "name:budget=N,key=value".
func specName(name string, b Budget, opts ...string) string {
	var parts []string
	switch {
	case len(b.PerLayer) > 0:
		s := make([]string, len(b.PerLayer))
		for i, n := range b.PerLayer {
			s[i] = strconv.Itoa(n)
		}
		parts = append(parts, "budget="+strings.Join(s, "/"))
	case b.Tokens > 0:
		parts = append(parts, "budget="+strconv.Itoa(b.Tokens))
	case b.Ratio > 0:
		parts = append(parts, "ratio="+strconv.FormatFloat(b.Ratio, 'g', -1, 64))
	}
	parts = append(parts, opts...)
	if len(parts) == 0 {
		return name
	}
	return name + ":" + strings.Join(parts, ",")
}

// layerState holds a policy's per-layer, per-head, per-token float state
// ([L][K][S]), index-aligned with the cache.
type layerState [][][]float64

func newLayerState(m ModelInfo) layerState {
	s := make(layerState, m.NumLayers)
	for l := range s {
		s[l] = make([][]float64, m.NumKVHeads)
	}
	return s
}

// heads returns layer v.Layer's state grown with zeros for the pass's new
// tokens, after checking it matches the view.
func (s layerState) heads(name string, v *LayerView) ([][]float64, error) {
	if v.Layer < 0 || v.Layer >= len(s) {
		return nil, fmt.Errorf("policy %s: layer %d out of range [0, %d) (Reset not called?)", name, v.Layer, len(s))
	}
	st := s[v.Layer]
	if len(v.Positions) != len(st) {
		return nil, fmt.Errorf("policy %s: layer %d has %d KV heads, Reset said %d", name, v.Layer, len(v.Positions), len(st))
	}
	for k, pos := range v.Positions {
		if len(st[k]) > len(pos) {
			return nil, fmt.Errorf("policy %s: layer %d head %d holds %d tokens but state has %d (keep indices not applied?)", name, v.Layer, k, len(pos), len(st[k]))
		}
		for len(st[k]) < len(pos) {
			st[k] = append(st[k], 0)
		}
	}
	return st, nil
}

func (s layerState) lens(layer int) []int {
	if layer < 0 || layer >= len(s) {
		return nil
	}
	out := make([]int, len(s[layer]))
	for k, h := range s[layer] {
		out[k] = len(h)
	}
	return out
}

// statError reports a statistic the engine did not provide.
func statError(name, stat string, v *LayerView) error {
	return fmt.Errorf("policy %s: layer %d: statistic %s missing or mis-shaped for %s pass at %d", name, v.Layer, stat, v.Pass.Phase, v.Pass.Start)
}

// completeKeep replaces nil per-head entries (heads under the limit) with the
// full index range, so callers never have to tell "keep all" from "keep none"
// inside a non-nil answer. A keep that evicts nothing at all becomes nil.
func completeKeep(keep [][]int, v *LayerView) [][]int {
	evicts := false
	for k, idx := range keep {
		if idx == nil {
			n := len(v.Positions[k])
			keep[k] = make([]int, n)
			for i := range n {
				keep[k][i] = i
			}
		} else if len(idx) < len(v.Positions[k]) {
			evicts = true
		}
	}
	if !evicts {
		return nil
	}
	return keep
}
