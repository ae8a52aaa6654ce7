package policy

import (
	"fmt"
	"math/rand/v2"
)

// Random keeps a uniform random subset of budget tokens per head (the newest
// always kept), evicting whenever a head holds more than the budget after a
// pass: the floor any scoring policy must beat. Heads draw independently.
//
// Options: seed=S (default 0). The draw depends only on the seed and the
// sequence of Update calls, so a run is reproducible; Reset restarts the
// generator.
type Random struct {
	budget Budget
	seed   uint64
	rng    *rand.Rand
}

func init() {
	Register("random", "keep a uniform random subset of budget tokens per head (newest kept); options seed=S", newRandom)
}

func newRandom(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("random", "seed"); err != nil {
		return nil, err
	}
	if err := requireBudget("random", b); err != nil {
		return nil, err
	}
	seed, err := opts.Int("random", "seed", 0)
	if err != nil {
		return nil, err
	}
	if seed < 0 {
		return nil, fmt.Errorf("%w: policy random option seed=%d must be >= 0", ErrBadOption, seed)
	}
	r := &Random{budget: b, seed: uint64(seed)}
	r.rng = rand.New(rand.NewPCG(r.seed, 0x6e616d6d))
	return r, nil
}

// Name implements Policy.
func (r *Random) Name() string { return specName("random", r.budget, fmt.Sprintf("seed=%d", r.seed)) }

// Reset implements Policy: restarts the generator from the seed.
func (r *Random) Reset(ModelInfo) error {
	r.rng = rand.New(rand.NewPCG(r.seed, 0x6e616d6d))
	return nil
}

// NeedsFor implements Policy: nothing.
func (r *Random) NeedsFor(Pass) Needs { return Needs{} }

// BoundAfter implements Bounded.
func (r *Random) BoundAfter(layer int, p Pass) (int, bool) {
	return passLimit(r.budget, layer, p), true
}

// Update implements Policy: i.i.d. uniform scores give a uniform subset.
func (r *Random) Update(v *LayerView) ([][]int, error) {
	limit := passLimit(r.budget, v.Layer, v.Pass)
	if v.Len() <= limit {
		return nil, nil
	}
	keep := make([][]int, len(v.Positions))
	for k, pos := range v.Positions {
		score := make([]float64, len(pos))
		for i := range score {
			score[i] = r.rng.Float64()
		}
		keep[k] = SelectTopK(score, limit, Protect{})
	}
	return completeKeep(keep, v), nil
}
