package cmaes

import (
	"math"
)

// maxClippedN mirrors the reference, which clips the dimension to 40000 inside
// c1, c_mu and the 1/(21 n^2) term of E||N(0,I)|| "for numerical stability".
// It has no effect for n = 4172.
const maxClippedN = 40000

// strategy holds the constants of one CMA-ES configuration. They depend only
// on (n, lambda, mu, mode) and are recomputed, never serialised.
type strategy struct {
	n, lambda, mu int

	// weights[i] is the recombination weight of the i-th best member (length
	// lambda): the positive ones sum to 1, the negative ones to -alphaMin.
	weights []float64
	// meanWeights is weights with every entry from mu on set to 0; it moves
	// the mean (the reference's weights_truncated, not renormalised).
	meanWeights []float64
	sumWeights  float64 // sum of weights (1 - alphaMin when every w' != 0)

	muEff, muEffNeg float64 // variance-effective selection masses
	c1, cmu         float64 // rank-one and rank-mu learning rates
	alphaMin        float64 // total magnitude of the negative weights
	csigma, dsigma  float64 // step-size path rate and damping
	cc              float64 // rank-one path rate
	cm              float64 // mean learning rate (1)
	chiN            float64 // E||N(0,I)||
}

// newStrategy computes the constants of NAMM reference §5 (get_cma_defaults
// and init_cma_es_params of the official code), in float64 where the
// reference uses float32 for the weights and mu_eff.
//
// In sep mode c1 and c_mu are multiplied by (n+2)/3 (Ros & Hansen 2008,
// "A simple modification in CMA-ES achieving linear time and space
// complexity", where c_cov^sep = min(1, c_cov (n+2)/3)); c1 is capped at 1
// and c_mu at 1 - c1, and alpha_min is computed from the scaled rates.
func newStrategy(n, lambda, mu int, mode Mode) strategy {
	s := strategy{n: n, lambda: lambda, mu: mu, cm: 1}
	nf := float64(n)
	nClip := float64(min(n, maxClippedN))

	prime := make([]float64, lambda)
	for i := range prime {
		prime[i] = math.Log(float64(lambda+1)/2) - math.Log(float64(i+1))
	}
	s.muEff = selectionMass(prime[:mu])
	s.muEffNeg = selectionMass(prime[mu:])

	const alphaCov = 2
	s.c1 = alphaCov / ((nClip+1.3)*(nClip+1.3) + s.muEff)
	s.cmu = math.Min(1-s.c1-1e-8,
		alphaCov*(s.muEff-2+1/s.muEff)/((nClip+2)*(nClip+2)+alphaCov*s.muEff/2))
	if mode == ModeSep {
		scale := (nf + 2) / 3
		s.c1 = math.Min(1, s.c1*scale)
		s.cmu = math.Min(1-s.c1, s.cmu*scale)
	}

	s.alphaMin = math.Min(1+s.c1/s.cmu, 1+2*s.muEffNeg/(s.muEff+2))
	s.alphaMin = math.Min(s.alphaMin, (1-s.c1-s.cmu)/(nf*s.cmu))

	var posSum, negSum float64
	for _, w := range prime {
		if w > 0 {
			posSum += w
		} else {
			negSum -= w
		}
	}
	s.weights = make([]float64, lambda)
	s.meanWeights = make([]float64, lambda)
	for i, w := range prime {
		if w >= 0 {
			s.weights[i] = w / posSum
		} else {
			s.weights[i] = s.alphaMin / negSum * w
		}
		if i < mu {
			s.meanWeights[i] = s.weights[i]
		}
		s.sumWeights += s.weights[i]
	}

	s.csigma = (s.muEff + 2) / (nf + s.muEff + 5)
	s.dsigma = 1 + 2*math.Max(0, math.Sqrt((s.muEff-1)/(nf+1))-1) + s.csigma
	s.cc = (4 + s.muEff/nf) / (nf + 4 + 2*s.muEff/nf)
	s.chiN = math.Sqrt(nf) * (1 - 1/(4*nf) + 1/(21*nClip*nClip))
	return s
}

// selectionMass is (sum w)^2 / sum w^2.
func selectionMass(w []float64) float64 {
	var sum, sq float64
	for _, v := range w {
		sum += v
		sq += v * v
	}
	return sum * sum / sq
}

// LazyInterval is the number of generations one eigendecomposition of C may
// serve in full mode (Config.EigenInterval) with the default Mu: Hansen's
// lazy update, which decomposes after lambda / ((c1 + c_mu) n 10)
// evaluations (purecma.py, "update B and D ... achieves O(N^2)"), that is
// 1 / (10 n (c1 + c_mu)) generations, and at least 1. At n = 4,172 and
// lambda = 32 that is 25.
func LazyInterval(n, lambda int) int {
	s := newStrategy(n, lambda, lambda/2, ModeFull)
	return max(1, int(1/(10*float64(n)*(s.c1+s.cmu))))
}
