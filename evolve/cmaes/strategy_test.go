package cmaes

import (
	"math"
	"testing"
)

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

// TestReferenceConstants4172 recomputes the constants of namm-reference.md §5
// for n = 4172, lambda = 32, mu = 16 step by step, and also checks them
// against values printed by Python's math module (python3, float64).
func TestReferenceConstants4172(t *testing.T) {
	const n, lambda, mu = 4172, 32, 16
	s := newStrategy(n, lambda, mu, ModeFull)

	// Independent recomputation, written from the reference text.
	var wp [lambda]float64
	for i := 0; i < lambda; i++ {
		wp[i] = math.Log(16.5) - math.Log(float64(i+1))
	}
	sumPos, sumPosSq, sumNeg, sumNegSq := 0.0, 0.0, 0.0, 0.0
	for i := 0; i < mu; i++ {
		sumPos += wp[i]
		sumPosSq += wp[i] * wp[i]
	}
	for i := mu; i < lambda; i++ {
		sumNeg += wp[i]
		sumNegSq += wp[i] * wp[i]
	}
	muEff := sumPos * sumPos / sumPosSq
	muEffNeg := sumNeg * sumNeg / sumNegSq
	c1 := 2 / ((n+1.3)*(n+1.3) + muEff)
	cmu := math.Min(1-c1-1e-8, 2*(muEff-2+1/muEff)/((n+2)*(n+2)+muEff))
	alpha := math.Min(math.Min(1+c1/cmu, 1+2*muEffNeg/(muEff+2)), (1-c1-cmu)/(n*cmu))
	csigma := (muEff + 2) / (n + muEff + 5)
	dsigma := 1 + 2*math.Max(0, math.Sqrt((muEff-1)/(n+1))-1) + csigma
	cc := (4 + muEff/n) / (n + 4 + 2*muEff/n)
	chi := math.Sqrt(n) * (1 - 1.0/(4*n) + 1.0/(21*n*n))

	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"mu_eff", s.muEff, muEff}, {"mu_eff_neg", s.muEffNeg, muEffNeg},
		{"c1", s.c1, c1}, {"c_mu", s.cmu, cmu}, {"alpha_min", s.alphaMin, alpha},
		{"c_sigma", s.csigma, csigma}, {"d_sigma", s.dsigma, dsigma},
		{"c_c", s.cc, cc}, {"E||N||", s.chiN, chi}, {"c_m", s.cm, 1},
		// python3: see the test comment.
		{"mu_eff (python)", s.muEff, 9.17882891362855},
		{"c1 (python)", s.c1, 1.1483401673522636e-07},
		{"c_mu (python)", s.cmu, 8.366038322655091e-07},
		{"alpha_min (python)", s.alphaMin, 1.1372621213367595},
	} {
		if !relClose(c.got, c.want, 1e-13) {
			t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
		}
	}
	if math.Abs(s.muEff-9.179) > 5e-4 {
		t.Errorf("mu_eff = %v, reference says ~9.179", s.muEff)
	}
	// The binding alpha_min term for n = 4172 is 1 + c1/c_mu (sum of weights
	// ~ -c1/c_mu, so C's decay factor stays ~1).
	if alpha != 1+c1/cmu {
		t.Errorf("alpha_min is not the 1 + c1/c_mu term")
	}

	var pos, neg float64
	for i, w := range s.weights {
		want := wp[i] / sumPos
		if i >= mu {
			want = alpha * wp[i] / -sumNeg
		}
		if !relClose(w, want, 1e-13) {
			t.Errorf("weight %d = %v, want %v", i, w, want)
		}
		if (i < mu) != (w > 0) {
			t.Errorf("weight %d = %v has the wrong sign", i, w)
		}
		if i < mu {
			pos += w
			if s.meanWeights[i] != w {
				t.Errorf("mean weight %d = %v, want %v", i, s.meanWeights[i], w)
			}
		} else {
			neg += w
			if s.meanWeights[i] != 0 {
				t.Errorf("mean weight %d = %v, want 0", i, s.meanWeights[i])
			}
		}
	}
	if math.Abs(pos-1) > 1e-14 || math.Abs(neg+alpha) > 1e-13 || !relClose(s.sumWeights, 1-alpha, 1e-12) {
		t.Errorf("weight sums %v (want 1), %v (want %v), total %v", pos, neg, -alpha, s.sumWeights)
	}
	// C's decay with h_sigma = 1: 1 - c1 - c_mu sum w = 1 - c1 - c_mu + c_mu alpha = 1 exactly in math.
	if d := 1 - s.c1 - s.cmu*s.sumWeights; math.Abs(d-1) > 1e-15 {
		t.Errorf("C decay factor %v, want 1", d)
	}
}

// TestSepRates checks the (n+2)/3 scaling of sep mode and that alpha_min
// uses the scaled rates.
func TestSepRates(t *testing.T) {
	for _, n := range []int{10, 4172} {
		full := newStrategy(n, 32, 16, ModeFull)
		sep := newStrategy(n, 32, 16, ModeSep)
		scale := float64(n+2) / 3
		if !relClose(sep.c1, full.c1*scale, 1e-14) || !relClose(sep.cmu, full.cmu*scale, 1e-14) {
			t.Errorf("n=%d: sep c1 %v c_mu %v, want %v %v", n, sep.c1, sep.cmu, full.c1*scale, full.cmu*scale)
		}
		want := math.Min(math.Min(1+sep.c1/sep.cmu, 1+2*sep.muEffNeg/(sep.muEff+2)), (1-sep.c1-sep.cmu)/(float64(n)*sep.cmu))
		if sep.alphaMin != want {
			t.Errorf("n=%d: sep alpha_min %v, want %v", n, sep.alphaMin, want)
		}
		if sep.csigma != full.csigma || sep.cc != full.cc || sep.dsigma != full.dsigma {
			t.Errorf("n=%d: sep changed the path constants", n)
		}
	}
	// Tiny n: the cap keeps c1 + c_mu <= 1.
	s := newStrategy(2, 4, 2, ModeSep)
	if s.c1+s.cmu > 1 || s.cmu <= 0 {
		t.Errorf("n=2 sep: c1 %v c_mu %v", s.c1, s.cmu)
	}
}

// TestLazyInterval recomputes Hansen's interval from the learning rates as
// namm-reference.md §5 states them (n clipped at maxClippedN).
func TestLazyInterval(t *testing.T) {
	for _, c := range []struct{ n, lambda int }{{4172, 32}, {100, 10}, {2, 4}} {
		mu := c.lambda / 2
		w := make([]float64, mu)
		var sum, sq float64
		for i := range w {
			w[i] = math.Log(float64(c.lambda+1)/2) - math.Log(float64(i+1))
			sum += w[i]
		}
		for i := range w {
			sq += (w[i] / sum) * (w[i] / sum)
		}
		muEff := 1 / sq
		n, nc := float64(c.n), float64(min(c.n, maxClippedN))
		c1 := 2 / ((nc+1.3)*(nc+1.3) + muEff)
		cmu := math.Min(1-c1-1e-8, 2*(muEff-2+1/muEff)/((nc+2)*(nc+2)+muEff))
		want := max(1, int(1/(10*n*(c1+cmu))))
		if got := LazyInterval(c.n, c.lambda); got != want {
			t.Errorf("LazyInterval(%d, %d) = %d, want %d", c.n, c.lambda, got, want)
		}
	}
	if got := LazyInterval(4172, 32); got < 5 || got > 40 {
		t.Errorf("LazyInterval(4172, 32) = %d, want Hansen's ~n/(10 lambda)-scale value", got)
	}
}
