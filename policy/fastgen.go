package policy

import (
	"fmt"
	"math"
)

// FastGen is adaptive KV cache compression (Ge, Zhang, Liu, Zhang, Han, Gao,
// "Model Tells You What to Discard: Adaptive KV Cache Compression for LLMs",
// ICLR 2024, arXiv:2310.01801). At the end of prefill each KV head is
// profiled: among the hybrid policies, in the paper's order,
//
//	C_special, C_special+punct, C_special+punct+frequent,
//	C_special+punct+frequent+local, C_full
//
// it takes the first (cheapest) whose kept tokens recover at least Threshold
// of the prompt's attention, applies it at once, and keeps applying it to
// the head during decoding: special tokens (ModelInfo.SpecialTokens) and
// punctuation (ModelInfo.Punctuation) are kept forever; "frequent" keeps the
// ceil(Frequent*n) tokens with the largest accumulated attention (n = tokens
// processed so far); "local" keeps the tokens within the last ceil(Local*n)
// positions. Heads end up with different cache sizes; there is no budget.
//
// Defaults (the paper's §5.1): threshold=0.95, local=0.3 (r_l),
// frequent=0.3 (r_f). Options: threshold=T in (0, 1], local=R and
// frequent=R in [0, 1].
//
// Differences from the paper, and why:
//   - Recovery is measured as the attention mass the profile queries put on
//     the kept tokens, averaged over those queries (the paper's |A -
//     softmax(QK_C^T)| <= 1-T, read as "kept mass >= T", which is how its
//     §4.1 describes it). The profile queries are the last prefill chunk's
//     (up to one chunk, 128 tokens by default), not the whole prompt: the
//     engine streams the prompt in chunks and never materialises the full
//     attention map. Accumulated attention (for "frequent") does cover the
//     whole prompt: ColSums are summed over every chunk.
//   - Rows are averaged over the query heads of a KV group (the paper uses
//     multi-head attention, one policy per query head).
//   - The engine requires the newest token to stay after each pass, so a
//     decoded token that its head's policy would not keep is dropped one
//     step later.
type FastGen struct {
	threshold, local, frequent float64
	info                       ModelInfo
	acc                        layerState
	kinds                      [][]fastgenKind // [L][K], kindUnprofiled before the prompt ends
}

// fastgenKind is a hybrid policy of FastGen, cheapest first.
type fastgenKind int

const (
	kindSpecial  fastgenKind = iota
	kindPunct                // special + punctuation
	kindFrequent             // special + punctuation + frequent
	kindLocal                // special + punctuation + frequent + local
	kindFull
	kindUnprofiled fastgenKind = -1
)

var fastgenKindNames = [...]string{"special", "special+punct", "special+punct+frequent", "special+punct+frequent+local", "full"}

func (k fastgenKind) String() string {
	if k < 0 || int(k) >= len(fastgenKindNames) {
		return "unprofiled"
	}
	return fastgenKindNames[k]
}

func init() {
	Register("fastgen", "FastGen: per-head policy (special/punct/frequent/local/full) picked by attention recovery at prefill end (Ge et al. 2024); options threshold=T,local=R,frequent=R", newFastGen)
}

func newFastGen(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("fastgen", "threshold", "local", "frequent"); err != nil {
		return nil, err
	}
	if err := rejectBudget("fastgen", "its cache size follows from threshold=T", b); err != nil {
		return nil, err
	}
	f := &FastGen{}
	var err error
	if f.threshold, err = opts.Float("fastgen", "threshold", 0.95); err != nil {
		return nil, err
	}
	if f.local, err = opts.Float("fastgen", "local", 0.3); err != nil {
		return nil, err
	}
	if f.frequent, err = opts.Float("fastgen", "frequent", 0.3); err != nil {
		return nil, err
	}
	if !(f.threshold > 0 && f.threshold <= 1) {
		return nil, fmt.Errorf("%w: policy fastgen option threshold=%g must be in (0, 1]", ErrBadOption, f.threshold)
	}
	for _, r := range []struct {
		key string
		v   float64
	}{{"local", f.local}, {"frequent", f.frequent}} {
		if !(r.v >= 0 && r.v <= 1) {
			return nil, fmt.Errorf("%w: policy fastgen option %s=%g must be in [0, 1]", ErrBadOption, r.key, r.v)
		}
	}
	return f, nil
}

// Name implements Policy.
func (f *FastGen) Name() string {
	return fmt.Sprintf("fastgen:threshold=%g,local=%g,frequent=%g", f.threshold, f.local, f.frequent)
}

// Reset implements Policy.
func (f *FastGen) Reset(m ModelInfo) error {
	f.info = m
	f.acc = newLayerState(m)
	f.kinds = make([][]fastgenKind, m.NumLayers)
	for l := range f.kinds {
		f.kinds[l] = make([]fastgenKind, m.NumKVHeads)
		for k := range f.kinds[l] {
			f.kinds[l][k] = kindUnprofiled
		}
	}
	return nil
}

// NeedsFor implements Policy: ColSums always (accumulated attention for
// "frequent"), Rows in the last prefill chunk (the profile).
func (f *FastGen) NeedsFor(p Pass) Needs {
	return Needs{ColSums: true, Rows: p.Phase == Prefill && p.LastPrefill}
}

// Profile returns the policy each KV head of layer was given, by name
// ("special", ..., "full"; "unprofiled" before the prompt ends).
func (f *FastGen) Profile(layer int) []string {
	if layer < 0 || layer >= len(f.kinds) {
		return nil
	}
	out := make([]string, len(f.kinds[layer]))
	for k, kind := range f.kinds[layer] {
		out[k] = kind.String()
	}
	return out
}

func (f *FastGen) stateLens(layer int) []int { return f.acc.lens(layer) }

// Update implements Policy.
func (f *FastGen) Update(v *LayerView) ([][]int, error) {
	acc, err := f.acc.heads("fastgen", v)
	if err != nil {
		return nil, err
	}
	if len(v.ColSums) != len(acc) {
		return nil, statError("fastgen", "ColSums", v)
	}
	for k := range acc {
		if len(v.ColSums[k]) != len(acc[k]) {
			return nil, statError("fastgen", "ColSums", v)
		}
		for i, c := range v.ColSums[k] {
			acc[k][i] += float64(c)
		}
	}
	kinds := f.kinds[v.Layer]
	if v.Pass.Phase == Prefill {
		if !v.Pass.LastPrefill {
			return nil, nil
		}
		if len(v.Rows) != len(acc) {
			return nil, statError("fastgen", "Rows", v)
		}
		for k := range kinds {
			kind, err := f.profile(v, k, acc[k])
			if err != nil {
				return nil, err
			}
			kinds[k] = kind
		}
	}
	keep := make([][]int, len(acc))
	for k, kind := range kinds {
		if kind == kindUnprofiled || kind == kindFull {
			continue // decoding without a prompt pass keeps everything
		}
		mask := f.mask(v, k, acc[k], kind)
		mask[len(mask)-1] = true
		keep[k] = maskToIndices(mask)
	}
	keep = completeKeep(keep, v)
	CompactHeads(acc, keep)
	return keep, nil
}

// profile picks the cheapest hybrid policy of head k recovering the threshold.
func (f *FastGen) profile(v *LayerView, k int, acc []float64) (fastgenKind, error) {
	rows := v.Rows[k]
	for _, row := range rows {
		if len(row) != len(acc) {
			return 0, statError("fastgen", "Rows", v)
		}
	}
	if len(rows) == 0 {
		return kindFull, nil
	}
	for kind := kindSpecial; kind < kindFull; kind++ {
		mask := f.mask(v, k, acc, kind)
		var mass float64
		for _, row := range rows {
			var kept, total float64
			for i, a := range row {
				total += float64(a)
				if mask[i] {
					kept += float64(a)
				}
			}
			if total > 0 {
				mass += kept / total
			} else {
				mass++
			}
		}
		if mass/float64(len(rows)) >= f.threshold-1e-9 {
			return kind, nil
		}
	}
	return kindFull, nil
}

// mask marks the tokens of head k that hybrid policy kind keeps.
func (f *FastGen) mask(v *LayerView, k int, acc []float64, kind fastgenKind) []bool {
	pos := v.Positions[k]
	mask := make([]bool, len(pos))
	for i, p := range pos {
		id := -1
		if int(p) < len(v.Tokens) {
			id = v.Tokens[p]
		}
		mask[i] = f.info.SpecialTokens[id] ||
			(kind >= kindPunct && f.info.Punctuation != nil && id >= 0 && f.info.Punctuation(id))
	}
	n := v.Pass.Processed()
	if kind >= kindFrequent {
		for _, i := range topIndices(acc, int(math.Ceil(f.frequent*float64(n)))) {
			mask[i] = true
		}
	}
	if kind >= kindLocal {
		from := n - int(math.Ceil(f.local*float64(n)))
		for i, p := range pos {
			mask[i] = mask[i] || int(p) >= from
		}
	}
	return mask
}

// topIndices returns the indices of the k largest scores (ties: newer first).
func topIndices(scores []float64, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	if k >= len(idx) {
		return idx
	}
	sortByScoreDesc(idx, scores)
	return idx[:max(k, 0)]
}
