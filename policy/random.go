package policy

import (
	"fmt"
	"math/rand/v2"
)

// Random keeps a uniform random subset of budget tokens per head (the newest
// always kept): the floor any scoring policy must beat. Heads draw
// independently: i.i.d. uniform scores give a uniform subset.
//
// Options: seed=S (default 0). The draw depends only on the seed and the
// sequence of Update calls, so a run is reproducible; Reset restarts the
// generator.
type Random struct {
	seed uint64
	rng  *rand.Rand
}

func init() {
	registerScorer("random", "keep a uniform random subset of budget tokens per head (newest kept); options seed=S",
		[]string{"seed"}, func(name string, opts Options) (Scorer, []string, error) {
			seed, err := opts.Int(name, "seed", 0)
			if err != nil {
				return nil, nil, err
			}
			if seed < 0 {
				return nil, nil, fmt.Errorf("%w: policy random option seed=%d must be >= 0", ErrBadOption, seed)
			}
			r := &Random{seed: uint64(seed)}
			_ = r.Restart(ModelInfo{})
			return r, []string{fmt.Sprintf("seed=%d", seed)}, nil
		})
}

// Restart implements Restarter: restarts the generator from the seed.
func (r *Random) Restart(ModelInfo) error {
	r.rng = rand.New(rand.NewPCG(r.seed, 0x6e616d6d))
	return nil
}

// NeedsFor implements Scorer: nothing.
func (*Random) NeedsFor(Pass) Needs { return Needs{} }

// Protect implements Scorer: only the newest token.
func (*Random) Protect(int) Protect { return Protect{} }

// Score implements Scorer: a uniform draw per token, head after head.
func (r *Random) Score(v *LayerView, _ [][]float64) ([][]float64, error) {
	scores := make([][]float64, len(v.Positions))
	for k, pos := range v.Positions {
		scores[k] = make([]float64, len(pos))
		for i := range scores[k] {
			scores[k][i] = r.rng.Float64()
		}
	}
	return scores, nil
}
