// Package cmaes implements CMA-ES (covariance matrix adaptation evolution
// strategy) with the exact update rules of the official NAMM code
// (SakanaAI/evo-memory, memory_evolution/cma_es.py; namm-reference.md §5),
// plus a separable (diagonal) variant for large dimensions.
//
// The optimiser MAXIMISES fitness: NAMM's fitness is a task score.
//
// Reference behaviour reproduced in full mode:
//   - weights w'_i = ln((lambda+1)/2) - ln(i+1), positive part normalised
//     to sum 1, negative part to sum -alpha_min (active CMA);
//   - the mean moves with the first mu weights only (c_m = 1);
//   - on generation 0 only, 1e-6 is added to every entry of C before it is
//     decomposed for sampling (C itself is not changed);
//   - sampling uses the eigendecomposition of C (eigenvalues <= 0 clamped to
//     1e-20 before the square root); y = B diag(D) z, x = m + sigma y;
//   - the negative weights are rescaled by n / (||C^(-1/2) y_i||^2 + 1e-20),
//     C^(-1/2) taken from the decomposition used for sampling;
//   - h_sigma uses the generation counter after increment.
//
// Deliberate differences: arithmetic is float64 throughout (the reference
// keeps C, the weights and mu_eff in float32); C is kept exactly symmetric,
// so the reference's symmetrisation (C + C^T)/2 is the identity here; the
// reference's best-member tracking is not part of this package (NAMM
// deploys the mean).
//
// NaN fitness ranks below every other value (even -Inf): a failed
// evaluation counts as the worst member. Ties keep candidate order.
package cmaes

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// Mode selects the covariance model.
type Mode string

const (
	// ModeFull adapts a full n x n covariance matrix (the reference).
	ModeFull Mode = "full"
	// ModeSep adapts a diagonal covariance matrix (sep-CMA-ES, Ros & Hansen
	// 2008): O(n) memory and time per sample, c1 and c_mu scaled by (n+2)/3.
	ModeSep Mode = "sep"
)

// Defaults of the reference configuration (cfgs/evolution/cma_es.yaml and
// the NAMM runs: pop_size 32, elite_ratio 0.5, init_sigma 0.065).
const (
	DefaultLambda = 32
	DefaultSigma0 = 0.065
)

// Config configures a CMA-ES run. Zero values take the defaults noted.
type Config struct {
	N      int     // dimension, > 0
	Lambda int     // population size, default 32, >= 2
	Mu     int     // parents moving the mean, default Lambda/2, 1..Lambda/2
	Sigma0 float64 // initial step size, default 0.065
	Mode   Mode    // "full" (default) or "sep"
	Seed   int64   // seeds the sampler (PCG)
	// Mean0 is the initial mean (length N); nil means zeros.
	Mean0 []float64
	// EigenInterval > 1 reuses the eigendecomposition of C for up to that
	// many generations (lazy update; not the reference: the generation-0
	// factors, with the 1e-6 shift, then serve generations 0..EigenInterval-1).
	// 0 or 1 recomputes it every generation, as the reference does. Full mode
	// only. With n = 4172 one gonum decomposition takes minutes on 2 cores;
	// Hansen's usual lazy interval is 1/(10 n (c1 + c_mu)), about 26 here.
	// Lazy checkpoints also store the factors (another 139 MB at n = 4172).
	EigenInterval int
}

// withDefaults returns cfg with zero fields replaced by defaults, or an error
// naming the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.N <= 0 {
		return cfg, fmt.Errorf("cmaes: Config.N = %d, must be > 0", cfg.N)
	}
	if cfg.Lambda == 0 {
		cfg.Lambda = DefaultLambda
	}
	if cfg.Lambda < 2 {
		return cfg, fmt.Errorf("cmaes: Config.Lambda = %d, must be >= 2", cfg.Lambda)
	}
	if cfg.Mu == 0 {
		cfg.Mu = cfg.Lambda / 2
	}
	if cfg.Mu < 1 || cfg.Mu > cfg.Lambda/2 {
		return cfg, fmt.Errorf("cmaes: Config.Mu = %d, must be in [1, Lambda/2 = %d]", cfg.Mu, cfg.Lambda/2)
	}
	if cfg.Sigma0 == 0 {
		cfg.Sigma0 = DefaultSigma0
	}
	if !(cfg.Sigma0 > 0) || math.IsInf(cfg.Sigma0, 0) {
		return cfg, fmt.Errorf("cmaes: Config.Sigma0 = %v, must be finite and > 0", cfg.Sigma0)
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeFull
	}
	if cfg.Mode != ModeFull && cfg.Mode != ModeSep {
		return cfg, fmt.Errorf("cmaes: Config.Mode = %q, must be %q or %q", cfg.Mode, ModeFull, ModeSep)
	}
	if cfg.EigenInterval < 0 {
		return cfg, fmt.Errorf("cmaes: Config.EigenInterval = %d, must be >= 0", cfg.EigenInterval)
	}
	if cfg.EigenInterval == 0 {
		cfg.EigenInterval = 1
	}
	if cfg.Mean0 != nil {
		if len(cfg.Mean0) != cfg.N {
			return cfg, fmt.Errorf("cmaes: len(Config.Mean0) = %d, want N = %d", len(cfg.Mean0), cfg.N)
		}
		for i, v := range cfg.Mean0 {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return cfg, fmt.Errorf("cmaes: Config.Mean0[%d] = %v, must be finite", i, v)
			}
		}
	}
	return cfg, nil
}

// CMAES is the optimiser state. It is not safe for concurrent use.
type CMAES struct {
	cfg Config
	st  strategy

	gen    int       // completed Tell calls
	sigma  float64   // step size
	mean   []float64 // (n)
	pSigma []float64 // (n) step-size evolution path
	pC     []float64 // (n) rank-one evolution path
	// cov is C: full mode (n*n) row-major and exactly symmetric; sep mode (n)
	// its diagonal.
	cov []float64

	pcg  *rand.PCG  // sampler state, serialised
	rand *rand.Rand // NormFloat64 over pcg; holds no state of its own

	// Sampling factors C = B diag(D)^2 B^T of generation eigGen (-1: none).
	eigB   *mat.Dense // (n, n), columns are eigenvectors; nil in sep mode
	eigD   []float64  // (n)
	eigGen int

	// pendingY are the steps y_k of the last Ask, (lambda) rows of (n); nil
	// when no Ask awaits its Tell.
	pendingY [][]float64
}

// New returns a CMA-ES at generation 0 with mean Mean0, step size Sigma0 and
// C = I.
func New(cfg Config) (*CMAES, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := cfg.N
	c := &CMAES{
		cfg:    cfg,
		st:     newStrategy(n, cfg.Lambda, cfg.Mu, cfg.Mode),
		sigma:  cfg.Sigma0,
		mean:   make([]float64, n),
		pSigma: make([]float64, n),
		pC:     make([]float64, n),
		eigGen: -1,
	}
	if cfg.Mean0 != nil {
		copy(c.mean, cfg.Mean0)
	}
	if cfg.Mode == ModeFull {
		c.cov = make([]float64, n*n)
		for i := 0; i < n; i++ {
			c.cov[i*n+i] = 1
		}
	} else {
		c.cov = make([]float64, n)
		for i := range c.cov {
			c.cov[i] = 1
		}
	}
	c.pcg = newPCG(cfg.Seed)
	c.rand = rand.New(c.pcg)
	c.cfg.Mean0 = nil // initial only; not part of the state
	return c, nil
}

// newPCG derives the two PCG words from the seed.
func newPCG(seed int64) *rand.PCG {
	return rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)
}

// Mean returns a copy of the distribution mean: the point NAMM evaluates,
// checkpoints and deploys.
func (c *CMAES) Mean() []float64 { return append([]float64(nil), c.mean...) }

// Sigma returns the step size.
func (c *CMAES) Sigma() float64 { return c.sigma }

// Generation returns the number of completed Tell calls.
func (c *CMAES) Generation() int { return c.gen }

// Config returns the configuration (defaults filled in, Mean0 nil).
func (c *CMAES) Config() Config { return c.cfg }

// Ask samples Lambda candidates x_k = m + sigma B diag(D) z_k, z_k ~ N(0, I),
// each of length N. The result depends only on the state (the sampler
// included); calling Ask again before Tell draws a new population that
// replaces the pending one. The caller owns the returned slices.
func (c *CMAES) Ask() [][]float64 {
	n, lambda := c.cfg.N, c.cfg.Lambda
	c.ensureFactors()
	z := make([]float64, lambda*n)
	for i := range z {
		z[i] = c.rand.NormFloat64()
	}
	ys := c.scaleByFactors(z)
	c.pendingY = ys
	xs := make([][]float64, lambda)
	for k, y := range ys {
		xs[k] = c.candidate(y)
	}
	return xs
}

// candidate is m + sigma*y. The explicit conversion forbids fused
// multiply-add, so Tell recomputes Ask's candidates bit for bit.
func (c *CMAES) candidate(y []float64) []float64 {
	x := make([]float64, len(y))
	for j, v := range y {
		x[j] = c.mean[j] + float64(c.sigma*v)
	}
	return x
}

// ErrNoPendingAsk is returned by Tell when no Ask awaits its fitness.
var ErrNoPendingAsk = errors.New("cmaes: Tell without a pending Ask")

// Tell updates the distribution from the fitness (higher is better) of the
// candidates returned by the last Ask, given in the same order and
// unmodified. NaN fitness ranks as the worst.
func (c *CMAES) Tell(candidates [][]float64, fitness []float64) error {
	n, lambda := c.cfg.N, c.cfg.Lambda
	if c.pendingY == nil {
		return ErrNoPendingAsk
	}
	if len(candidates) != lambda {
		return fmt.Errorf("cmaes: Tell got %d candidates, want Lambda = %d", len(candidates), lambda)
	}
	if len(fitness) != lambda {
		return fmt.Errorf("cmaes: Tell got %d fitness values, want Lambda = %d", len(fitness), lambda)
	}
	for k, x := range candidates {
		if len(x) != n {
			return fmt.Errorf("cmaes: Tell candidate %d has length %d, want N = %d", k, len(x), n)
		}
		want := c.candidate(c.pendingY[k])
		for j := range x {
			if math.Float64bits(x[j]) != math.Float64bits(want[j]) {
				return fmt.Errorf("cmaes: Tell candidate %d differs from the asked one at coordinate %d (%v, asked %v): candidates must be the last Ask's, in order and unmodified", k, j, x[j], want[j])
			}
		}
	}
	c.ensureFactors() // after UnmarshalBinary of a pending state
	c.update(rankByFitness(fitness))
	c.pendingY = nil
	return nil
}

// rankByFitness returns candidate indices best first (descending fitness,
// NaN last, ties in candidate order).
func rankByFitness(fitness []float64) []int {
	order := make([]int, len(fitness))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		fa, fb := fitness[order[a]], fitness[order[b]]
		if math.IsNaN(fb) {
			return !math.IsNaN(fa)
		}
		return fa > fb
	})
	return order
}

// update is the reference's tell, given the ranking of the pending steps.
func (c *CMAES) update(order []int) {
	s := &c.st
	n := c.cfg.N
	c.gen++
	ys := make([][]float64, len(order)) // steps, best first
	for i, k := range order {
		ys[i] = c.pendingY[k]
	}

	yw := make([]float64, n)
	for i := 0; i < s.mu; i++ {
		w := s.meanWeights[i]
		for j, v := range ys[i] {
			yw[j] += w * v
		}
	}
	for j := range c.mean {
		c.mean[j] += s.cm * c.sigma * yw[j]
	}

	whitened := c.invSqrtC(yw)
	coef := math.Sqrt(s.csigma * (2 - s.csigma) * s.muEff)
	for j := range c.pSigma {
		c.pSigma[j] = (1-s.csigma)*c.pSigma[j] + coef*whitened[j]
	}
	normPs := norm(c.pSigma)
	hsig := 0.0
	left := normPs / math.Sqrt(1-math.Pow(1-s.csigma, 2*float64(c.gen)))
	if left < (1.4+2/float64(n+1))*s.chiN {
		hsig = 1
	}
	coef = hsig * math.Sqrt(s.cc*(2-s.cc)*s.muEff)
	for j := range c.pC {
		c.pC[j] = (1-s.cc)*c.pC[j] + coef*yw[j]
	}

	wAdj := make([]float64, len(ys))
	sqNorms := c.whitenedSqNorms(ys)
	for i, w := range s.weights {
		if w > 0 {
			wAdj[i] = w
		} else {
			wAdj[i] = w * float64(n) / (sqNorms[i] + 1e-20)
		}
	}
	decay := 1 + s.c1*(1-hsig)*s.cc*(2-s.cc) - s.c1 - s.cmu*s.sumWeights
	c.updateCov(decay, wAdj, ys)

	c.sigma *= math.Exp((s.csigma / s.dsigma) * (normPs/s.chiN - 1))
}

func norm(v []float64) float64 {
	var sq float64
	for _, x := range v {
		sq += x * x
	}
	return math.Sqrt(sq)
}
