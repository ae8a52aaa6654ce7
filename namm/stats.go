package namm

import (
	"fmt"
	"sync"

	"github.com/namm-dev/namm/policy"
)

// StatsCollector accumulates, per frequency bin, the running mean and
// population variance of the unnormalised EMA features, pooled over heads,
// tokens, layers, steps and sequences, as the reference's online
// normalisation does: each (layer, head) batch at each step is reduced to
// (mean, population variance, count) and merged in the parallel form
//
//	mean_ab = (n_a mean_a + n_b mean_b)/n, var_ab = (n_a var_a + n_b var_b)/n + d^2 n_a n_b/n^2.
//
// Accumulators are float64 (the reference uses float32; the difference is
// rounding only, and float64 keeps millions of merges stable).
type StatsCollector struct {
	mu   sync.Mutex
	n    float64
	mean [Bins]float64
	v    [Bins]float64
}

// add merges the statistics of one batch of features ([n][Bins]).
func (c *StatsCollector) add(omega []float32) {
	nb := len(omega) / Bins
	if nb == 0 {
		return
	}
	var mean, v [Bins]float64
	for i := range nb {
		for f := range Bins {
			mean[f] += float64(omega[i*Bins+f])
		}
	}
	for f := range Bins {
		mean[f] /= float64(nb)
	}
	for i := range nb {
		for f := range Bins {
			d := float64(omega[i*Bins+f]) - mean[f]
			v[f] += d * d
		}
	}
	for f := range Bins {
		v[f] /= float64(nb)
	}
	c.merge(float64(nb), &mean, &v)
}

func (c *StatsCollector) merge(nb float64, mean, v *[Bins]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n + nb
	a, b := c.n/n, nb/n
	for f := range Bins {
		d := mean[f] - c.mean[f]
		c.mean[f] = a*c.mean[f] + b*mean[f]
		c.v[f] = a*c.v[f] + b*v[f] + d*d*a*b
	}
	c.n = n
}

// Count is the number of feature vectors merged so far.
func (c *StatsCollector) Count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(c.n)
}

// Result returns the per-bin mean and population variance.
func (c *StatsCollector) Result() (mean, variance [Bins]float32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for f := range Bins {
		mean[f], variance[f] = float32(c.mean[f]), float32(c.v[f])
	}
	return mean, variance
}

// ComputeNormalization computes the frozen normalisation the reference way:
// run must drive the engine over every prompt of the first training task with
// the given policy (which evicts nothing); the statistics of every step are
// pooled.
func ComputeNormalization(run func(policy.Policy) error) (Norm, error) {
	p, c := NewStats()
	if err := run(p); err != nil {
		return Norm{}, fmt.Errorf("namm: normalisation run: %w", err)
	}
	if c.Count() == 0 {
		return Norm{}, fmt.Errorf("namm: normalisation run made no NAMM step (prompts shorter than %d tokens?)", StepEvery)
	}
	var n Norm
	n.Mean, n.Var = c.Result()
	return n, nil
}
