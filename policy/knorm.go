package policy

import "fmt"

// KNorm is the L2-norm policy (Devoto, Zhao, Scardapane, Minervini, "A Simple
// and Effective L2 Norm-Based Strategy for KV Cache Compression", EMNLP 2024,
// arXiv:2406.11430): a head keeps the tokens whose keys have the LOWEST L2
// norm (low-norm keys draw high attention). It needs the key norms of each
// pass's new tokens and remembers them per cached token.
//
// Registered as "l2" and "knorm". Defaults: no window (like kvpress's
// KnormPress and the paper), only the newest token is protected, as the
// engine requires. Options: recent=N protects the N most recent tokens.
// The paper's observation that a few early layers do not follow the
// low-norm/high-attention pattern is not acted on: every layer is compressed,
// as in the NAMM paper's L2 baseline.
type KNorm struct {
	name   string
	Recent int
}

func init() {
	help := "L2/KNorm: keep the keys of lowest L2 norm (Devoto et al. 2024); options recent=N"
	registerScorer("l2", help, []string{"recent"}, newKNorm)
	registerScorer("knorm", help+" (alias of l2)", []string{"recent"}, newKNorm)
}

func newKNorm(name string, opts Options) (Scorer, []string, error) {
	recent, err := opts.Int(name, "recent", 1)
	if err != nil {
		return nil, nil, err
	}
	if recent < 0 {
		return nil, nil, fmt.Errorf("%w: policy %s option recent=%d must be >= 0", ErrBadOption, name, recent)
	}
	var rendered []string
	if recent > 1 {
		rendered = []string{fmt.Sprintf("recent=%d", recent)}
	}
	return KNorm{name: name, Recent: recent}, rendered, nil
}

// NeedsFor implements Scorer: the key norms of the new tokens.
func (KNorm) NeedsFor(Pass) Needs { return Needs{KeyNorms: true} }

// Protect implements Scorer: the recent window.
func (p KNorm) Protect(int) Protect { return Protect{Recent: p.Recent} }

// Accumulate implements Accumulator: remembers the new tokens' key norms.
func (p KNorm) Accumulate(v *LayerView, norms [][]float64, first []int) error {
	if len(v.KeyNorms) != len(norms) {
		return statError(p.name, "KeyNorms", v)
	}
	for k := range norms {
		if len(v.KeyNorms[k]) != len(norms[k])-first[k] {
			return statError(p.name, "KeyNorms", v)
		}
		for i, norm := range v.KeyNorms[k] {
			norms[k][first[k]+i] = float64(norm)
		}
	}
	return nil
}

// Score implements Scorer: minus the key norm.
func (KNorm) Score(_ *LayerView, norms [][]float64) ([][]float64, error) {
	scores := make([][]float64, len(norms))
	for k, h := range norms {
		scores[k] = make([]float64, len(h))
		for i, norm := range h {
			scores[k][i] = -norm
		}
	}
	return scores, nil
}
