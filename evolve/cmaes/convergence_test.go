package cmaes

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/optimize"
)

// Standard setting of the CMA-ES literature for n = 10: lambda = 4 +
// floor(3 ln 10) = 10, mu = 5, x0 = (1, ..., 1) (Rosenbrock: 0), sigma0 = 0.5.
func benchConfig(mode Mode, seed int64, x0 float64) Config {
	return Config{N: 10, Lambda: 10, Sigma0: 0.5, Mode: mode, Seed: seed, Mean0: filled(10, x0)}
}

const target = 1e-10

// Evaluations to reach f < 1e-10, measured with this code over seeds 1..5:
// sphere full 1566-1683 (157-169 generations; Hansen's tutorial reports about
// 1,600 for this setting), sphere sep 1258-1432, ellipsoid full 4124-4469,
// ellipsoid sep 2158-2331, rotated ellipsoid full 4032-4380, Rosenbrock full
// 4702-6641. The bounds leave room for other seeds.
func TestConvergence(t *testing.T) {
	rot := rotated(ellipsoid, randomRotation(10, 3))
	for _, tc := range []struct {
		name     string
		f        func([]float64) float64
		x0       float64
		mode     Mode
		maxEvals int
	}{
		{"sphere/full", sphere, 1, ModeFull, 2000},
		{"sphere/sep", sphere, 1, ModeSep, 1800},
		{"ellipsoid/full", ellipsoid, 1, ModeFull, 5500},
		{"ellipsoid/sep", ellipsoid, 1, ModeSep, 3000},
		{"rotated-ellipsoid/full", rot, 1, ModeFull, 5500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := int64(1); seed <= 3; seed++ {
				r := minimise(t, mustNew(t, benchConfig(tc.mode, seed, tc.x0)), tc.f, target, tc.maxEvals/10)
				if r.evalsToTarget < 0 {
					t.Errorf("seed %d: best f %.3g after %d evaluations, want < %g", seed, r.bestF, tc.maxEvals, target)
				}
				// The mean (what NAMM deploys) is as good as the samples.
				if r.meanF > 1e-9 {
					t.Errorf("seed %d: f(mean) = %.3g", seed, r.meanF)
				}
			}
		})
	}
}

// TestRosenbrockFull: full mode finds the global minimum at (1, ..., 1) in
// most seeds (CMA-ES with lambda = 10 lands in the local minimum near
// x_1 = -1 in a minority of runs).
func TestRosenbrockFull(t *testing.T) {
	const seeds = 10
	found := 0
	for seed := int64(1); seed <= seeds; seed++ {
		r := minimise(t, mustNew(t, benchConfig(ModeFull, seed, 0)), rosenbrock, target, 1200)
		ok := r.evalsToTarget >= 0
		for _, v := range r.mean {
			ok = ok && math.Abs(v-1) < 1e-4
		}
		if ok {
			found++
		}
	}
	if found < 8 {
		t.Errorf("global minimum found in %d of %d seeds, want >= 8", found, seeds)
	}
}

// TestCovarianceMatters: on a rotated ellipsoid (condition 1e6) the diagonal
// model cannot align with the axes, so sep mode stalls where full mode
// converges, with the same budget.
func TestCovarianceMatters(t *testing.T) {
	rot := rotated(ellipsoid, randomRotation(10, 3))
	for seed := int64(1); seed <= 2; seed++ {
		full := minimise(t, mustNew(t, benchConfig(ModeFull, seed, 1)), rot, target, 600)
		sep := minimise(t, mustNew(t, benchConfig(ModeSep, seed, 1)), rot, target, 600)
		if full.evalsToTarget < 0 {
			t.Errorf("seed %d: full mode did not converge (best %.3g)", seed, full.bestF)
		}
		// After the same 600 generations sep mode is still far away; in
		// 3000 generations it reached only 4 to 65 on seeds 1..5.
		if sep.bestF < 1e-2 {
			t.Errorf("seed %d: sep mode reached %.3g on the rotated ellipsoid; the covariance should matter", seed, sep.bestF)
		}
	}
}

// gonumEvals runs gonum's CmaEsChol (same lambda, x0, InitStepSize 0.5) and
// returns the evaluations until the first sample with f < threshold, or -1.
func gonumEvals(f func([]float64) float64, x0, threshold float64, seed uint64, maxEvals int) int {
	evals, hit := 0, -1
	problem := optimize.Problem{Func: func(x []float64) float64 {
		v := f(x)
		evals++
		if v < threshold && hit < 0 {
			hit = evals
		}
		return v
	}}
	method := &optimize.CmaEsChol{InitStepSize: 0.5, Population: 10, StopLogDet: math.NaN(),
		Src: rand.NewPCG(seed, 1)}
	_, _ = optimize.Minimize(problem, filled(10, x0), // a limit status is expected
		&optimize.Settings{FuncEvaluations: maxEvals, Converger: optimize.NeverTerminate{}}, method)
	return hit
}

// TestAgainstGonum cross-checks with gonum v0.17.0's CmaEsChol on the
// 10-D sphere (f(x0) = 10). gonum's variant samples from its Cholesky factor
// without the step size and scales its rank-mu update by 1/sigma instead of
// 1/sigma^2, so it does not converge linearly: measured over seeds 1..3 it
// needs 889-3568 evaluations for f < 1 and 20974-26833 for f < 0.1, and
// never reaches 1e-2 in 30000 (it also never gets below 1 on the 10-D
// ellipsoid or Rosenbrock). A "within a factor" comparison at 1e-10 is
// therefore impossible; the test checks that both make progress on the
// sphere and that ours is at least 10 times faster to f < 0.1 (ours:
// 239-345 evaluations).
func TestAgainstGonum(t *testing.T) {
	for seed := 1; seed <= 3; seed++ {
		theirs := gonumEvals(sphere, 1, 0.1, uint64(seed), 40000)
		ours := minimise(t, mustNew(t, benchConfig(ModeFull, int64(seed), 1)), sphere, 0.1, 100).evalsToTarget
		t.Logf("seed %d: evaluations to f < 0.1: ours %d, gonum %d", seed, ours, theirs)
		if theirs < 0 || ours < 0 {
			t.Errorf("seed %d: f < 0.1 not reached (ours %d, gonum %d)", seed, ours, theirs)
			continue
		}
		if 10*ours > theirs {
			t.Errorf("seed %d: ours %d vs gonum %d evaluations, want ours 10x fewer", seed, ours, theirs)
		}
	}
}
