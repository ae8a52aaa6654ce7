package policy

import "fmt"

// KNorm is the L2-norm policy (Devoto, Zhao, Scardapane, Minervini, "A Simple
// and Effective L2 Norm-Based Strategy for KV Cache Compression", EMNLP 2024,
// arXiv:2406.11430): a head keeps the tokens whose keys have the LOWEST L2
// norm (low-norm keys draw high attention), evicting whenever it holds more
// than the budget after a pass. It needs the key norms of each pass's new
// tokens and remembers them per cached token.
//
// Registered as "l2" and "knorm". Defaults: no window (like kvpress's
// KnormPress and the paper), only the newest token is protected, as the
// engine requires. Options: recent=N protects the N most recent tokens.
// The paper's observation that a few early layers do not follow the
// low-norm/high-attention pattern is not acted on: every layer is compressed,
// as in the NAMM paper's L2 baseline.
type KNorm struct {
	name   string
	budget Budget
	recent int
	norms  layerState
}

func init() {
	help := "L2/KNorm: keep the keys of lowest L2 norm (Devoto et al. 2024); options recent=N"
	Register("l2", help, func(o Options, b Budget) (Policy, error) { return newKNorm("l2", o, b) })
	Register("knorm", help+" (alias of l2)", func(o Options, b Budget) (Policy, error) { return newKNorm("knorm", o, b) })
}

func newKNorm(name string, opts Options, b Budget) (Policy, error) {
	if err := opts.Check(name, "recent"); err != nil {
		return nil, err
	}
	if err := requireBudget(name, b); err != nil {
		return nil, err
	}
	recent, err := opts.Int(name, "recent", 1)
	if err != nil {
		return nil, err
	}
	if recent < 0 {
		return nil, fmt.Errorf("%w: policy %s option recent=%d must be >= 0", ErrBadOption, name, recent)
	}
	return &KNorm{name: name, budget: b, recent: recent}, nil
}

// Name implements Policy.
func (p *KNorm) Name() string {
	if p.recent > 1 {
		return specName(p.name, p.budget, fmt.Sprintf("recent=%d", p.recent))
	}
	return specName(p.name, p.budget)
}

// Reset implements Policy.
func (p *KNorm) Reset(m ModelInfo) error {
	p.norms = newLayerState(m)
	return nil
}

// NeedsFor implements Policy: the key norms of the new tokens.
func (p *KNorm) NeedsFor(Pass) Needs { return Needs{KeyNorms: true} }

// BoundAfter implements Bounded.
func (p *KNorm) BoundAfter(layer int, ps Pass) (int, bool) {
	return passLimit(p.budget, layer, ps), true
}

func (p *KNorm) stateLens(layer int) []int { return p.norms.lens(layer) }

// Update implements Policy.
func (p *KNorm) Update(v *LayerView) ([][]int, error) {
	prev := p.norms.lens(v.Layer)
	norms, err := p.norms.heads(p.name, v)
	if err != nil {
		return nil, err
	}
	if len(v.KeyNorms) != len(norms) {
		return nil, statError(p.name, "KeyNorms", v)
	}
	for k := range norms {
		if len(v.KeyNorms[k]) != len(norms[k])-prev[k] {
			return nil, statError(p.name, "KeyNorms", v)
		}
		for i, x := range v.KeyNorms[k] {
			norms[k][prev[k]+i] = float64(x)
		}
	}
	limit := passLimit(p.budget, v.Layer, v.Pass)
	if v.Len() <= limit {
		return nil, nil
	}
	keep := make([][]int, len(norms))
	score := make([]float64, 0, v.Len())
	for k, h := range norms {
		score = score[:0]
		for _, x := range h {
			score = append(score, -x)
		}
		keep[k] = SelectTopK(score, limit, Protect{Recent: p.recent})
	}
	keep = completeKeep(keep, v)
	CompactHeads(norms, keep)
	return keep, nil
}
