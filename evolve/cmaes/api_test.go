package cmaes

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "Config.N"},
		{Config{N: 3, Lambda: 1}, "Config.Lambda"},
		{Config{N: 3, Lambda: 8, Mu: 5}, "Config.Mu"},
		{Config{N: 3, Mu: -1}, "Config.Mu"},
		{Config{N: 3, Sigma0: -1}, "Config.Sigma0"},
		{Config{N: 3, Sigma0: math.Inf(1)}, "Config.Sigma0"},
		{Config{N: 3, Mode: "diag"}, "Config.Mode"},
		{Config{N: 3, EigenInterval: -2}, "Config.EigenInterval"},
		{Config{N: 3, Mean0: []float64{1, 2}}, "Config.Mean0"},
		{Config{N: 2, Mean0: []float64{1, math.NaN()}}, "Config.Mean0[1]"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	c := mustNew(t, Config{N: 4})
	got := c.Config()
	if got.Lambda != 32 || got.Mu != 16 || got.Sigma0 != 0.065 || got.Mode != ModeFull || got.EigenInterval != 1 {
		t.Errorf("defaults %+v", got)
	}
	if c.Sigma() != 0.065 || c.Generation() != 0 {
		t.Errorf("initial sigma %v generation %d", c.Sigma(), c.Generation())
	}
	for _, v := range c.Mean() {
		if v != 0 {
			t.Fatalf("default mean %v", c.Mean())
		}
	}
}

func TestTellValidation(t *testing.T) {
	c := mustNew(t, Config{N: 3, Lambda: 4, Seed: 1})
	fit := []float64{1, 2, 3, 4}
	if err := c.Tell(nil, fit); !errors.Is(err, ErrNoPendingAsk) {
		t.Errorf("Tell before Ask: %v", err)
	}
	xs := c.Ask()
	if err := c.Tell(xs[:3], fit); err == nil || !strings.Contains(err.Error(), "3 candidates") {
		t.Errorf("short candidates: %v", err)
	}
	if err := c.Tell(xs, fit[:2]); err == nil || !strings.Contains(err.Error(), "2 fitness") {
		t.Errorf("short fitness: %v", err)
	}
	bad := [][]float64{xs[0], xs[1], xs[2][:2], xs[3]}
	if err := c.Tell(bad, fit); err == nil || !strings.Contains(err.Error(), "candidate 2 has length 2") {
		t.Errorf("short candidate: %v", err)
	}
	moved := [][]float64{xs[0], append([]float64(nil), xs[1]...), xs[2], xs[3]}
	moved[1][2] += 1e-12
	if err := c.Tell(moved, fit); err == nil || !strings.Contains(err.Error(), "candidate 1 differs") || !strings.Contains(err.Error(), "coordinate 2") {
		t.Errorf("modified candidate: %v", err)
	}
	if c.Generation() != 0 {
		t.Fatal("a rejected Tell advanced the generation")
	}
	if err := c.Tell(xs, fit); err != nil {
		t.Fatal(err)
	}
	if err := c.Tell(xs, fit); !errors.Is(err, ErrNoPendingAsk) {
		t.Errorf("second Tell: %v", err)
	}
}

func TestRankByFitnessNaNIsWorst(t *testing.T) {
	got := rankByFitness([]float64{math.NaN(), 1, math.Inf(-1), math.NaN(), 3, 1})
	want := []int{4, 1, 5, 2, 0, 3}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rank = %v, want %v", got, want)
		}
	}
}

// TestNaNFitnessRun: a run where some evaluations fail (NaN) still converges
// and never produces a NaN state.
func TestNaNFitnessRun(t *testing.T) {
	c := mustNew(t, benchConfig(ModeFull, 4, 1))
	for g := 0; g < 400; g++ {
		xs := c.Ask()
		fit := make([]float64, len(xs))
		for k, x := range xs {
			fit[k] = -sphere(x)
			if k%3 == 0 {
				fit[k] = math.NaN()
			}
		}
		if err := c.Tell(xs, fit); err != nil {
			t.Fatal(err)
		}
	}
	if f := sphere(c.Mean()); !(f < 1e-8) || math.IsNaN(c.Sigma()) {
		t.Errorf("f(mean) = %v, sigma %v", f, c.Sigma())
	}
}

func TestAskIsDeterministic(t *testing.T) {
	for _, mode := range []Mode{ModeFull, ModeSep} {
		a := mustNew(t, Config{N: 5, Lambda: 6, Mode: mode, Seed: 77})
		b := mustNew(t, Config{N: 5, Lambda: 6, Mode: mode, Seed: 77})
		other := mustNew(t, Config{N: 5, Lambda: 6, Mode: mode, Seed: 78})
		xa, xb, xo := a.Ask(), b.Ask(), other.Ask()
		if _, _, ok := sameBits(xa, xb); !ok {
			t.Errorf("%s: same seed, different candidates", mode)
		}
		if _, _, ok := sameBits(xa, xo); ok {
			t.Errorf("%s: different seeds, same candidates", mode)
		}
		// Mutating the returned slices does not touch the state.
		xa[0][0] = 1e9
		if err := b.Tell(xb, []float64{1, 2, 3, 4, 5, 6}); err != nil {
			t.Fatal(err)
		}
		if err := a.Tell(a.Ask(), []float64{1, 2, 3, 4, 5, 6}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSmallDimensions: N = 1 and lambda = 2 run without NaN.
func TestSmallDimensions(t *testing.T) {
	for _, cfg := range []Config{{N: 1, Lambda: 2, Sigma0: 1, Mean0: []float64{3}}, {N: 1, Lambda: 5, Mode: ModeSep, Sigma0: 1, Mean0: []float64{3}}} {
		c := mustNew(t, cfg)
		r := minimise(t, c, sphere, 1e-12, 2000)
		if r.evalsToTarget < 0 || math.IsNaN(c.Sigma()) {
			t.Errorf("%+v: best f %v, sigma %v", cfg, r.bestF, c.Sigma())
		}
	}
}
