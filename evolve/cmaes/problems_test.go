package cmaes

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Test objectives, all minimised (the optimiser maximises their negation).
func sphere(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s
}

// ellipsoid has condition number 1e6: f = sum 1e6^(i/(n-1)) x_i^2.
func ellipsoid(x []float64) float64 {
	n := len(x)
	var s float64
	for i, v := range x {
		s += math.Pow(1e6, float64(i)/float64(n-1)) * v * v
	}
	return s
}

func rosenbrock(x []float64) float64 {
	var s float64
	for i := 0; i+1 < len(x); i++ {
		a := x[i]*x[i] - x[i+1]
		b := x[i] - 1
		s += 100*a*a + b*b
	}
	return s
}

// randomRotation returns an n x n orthogonal matrix (Gram-Schmidt of a
// Gaussian matrix), rows as slices.
func randomRotation(n int, seed uint64) [][]float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	q := make([][]float64, n)
	for i := range q {
		q[i] = make([]float64, n)
		for j := range q[i] {
			q[i][j] = r.NormFloat64()
		}
		for k := 0; k < i; k++ {
			var d float64
			for j := range q[i] {
				d += q[i][j] * q[k][j]
			}
			for j := range q[i] {
				q[i][j] -= d * q[k][j]
			}
		}
		nrm := math.Sqrt(sphere(q[i]))
		for j := range q[i] {
			q[i][j] /= nrm
		}
	}
	return q
}

func rotated(f func([]float64) float64, q [][]float64) func([]float64) float64 {
	return func(x []float64) float64 {
		y := make([]float64, len(x))
		for i, row := range q {
			for j, v := range row {
				y[i] += v * x[j]
			}
		}
		return f(y)
	}
}

// runResult summarises one optimisation run.
type runResult struct {
	evalsToTarget int     // evaluations until a sample reached f < target; -1 if never
	generations   int     // generations run
	bestF         float64 // lowest f sampled
	meanF         float64 // f at the final mean
	mean          []float64
}

// minimise runs c for at most maxGen generations on f, stopping after the
// generation in which a sample reached f < target.
func minimise(t testing.TB, c *CMAES, f func([]float64) float64, target float64, maxGen int) runResult {
	t.Helper()
	res := runResult{evalsToTarget: -1, bestF: math.Inf(1)}
	evals := 0
	for g := 0; g < maxGen; g++ {
		xs := c.Ask()
		fit := make([]float64, len(xs))
		for k, x := range xs {
			v := f(x)
			evals++
			fit[k] = -v
			if v < res.bestF {
				res.bestF = v
			}
			if v < target && res.evalsToTarget < 0 {
				res.evalsToTarget = evals
			}
		}
		if err := c.Tell(xs, fit); err != nil {
			t.Fatal(err)
		}
		res.generations = g + 1
		if res.evalsToTarget >= 0 {
			break
		}
	}
	res.mean = c.Mean()
	res.meanF = f(res.mean)
	return res
}

func mustNew(t testing.TB, cfg Config) *CMAES {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func filled(n int, v float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = v
	}
	return x
}
