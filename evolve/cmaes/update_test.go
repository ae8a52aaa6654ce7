package cmaes

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// naiveState is a literal float64 transcription of the reference's tell
// (memory_evolution/cma_es.py), with dense matrices everywhere: nroot_C as a
// full matrix, rank-mu as a sum of outer products.
type naiveState struct {
	n              int
	g              float64
	mean, ps, pc   []float64
	C              [][]float64 // full n x n; diagonal only meaningful in sep
	sigma          float64
	sep            bool
	s              strategy
	nrootC         [][]float64
	sampleFactorsG float64
}

func newNaive(c *CMAES) *naiveState {
	n := c.cfg.N
	ns := &naiveState{n: n, mean: c.Mean(), ps: make([]float64, n), pc: make([]float64, n),
		sigma: c.sigma, sep: c.cfg.Mode == ModeSep, s: c.st}
	ns.C = make([][]float64, n)
	for i := range ns.C {
		ns.C[i] = make([]float64, n)
		ns.C[i][i] = 1
	}
	return ns
}

// prepare computes nroot_C = B diag(1/D) B^T from the (shifted at g = 0,
// symmetrised) C with an independent decomposition, as the reference's ask.
func (ns *naiveState) prepare() {
	n := ns.n
	shift := 0.0
	if ns.g == 0 {
		shift = 1e-6
	}
	ns.nrootC = make([][]float64, n)
	for i := range ns.nrootC {
		ns.nrootC[i] = make([]float64, n)
	}
	if ns.sep {
		for i := 0; i < n; i++ {
			ns.nrootC[i][i] = 1 / clampRef(ns.C[i][i]+shift)
		}
		return
	}
	sym := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			sym.SetSym(i, j, (ns.C[i][j]+ns.C[j][i])/2+shift)
		}
	}
	var e mat.EigenSym
	if !e.Factorize(sym, true) {
		panic("eigen")
	}
	var b mat.Dense
	e.VectorsTo(&b)
	vals := e.Values(nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			for k := 0; k < n; k++ {
				ns.nrootC[i][j] += b.At(i, k) * b.At(j, k) / clampRef(vals[k])
			}
		}
	}
}

func clampRef(v float64) float64 {
	if v <= 0 {
		return math.Sqrt(1e-20)
	}
	return math.Sqrt(v)
}

func matVec(m [][]float64, v []float64) []float64 {
	out := make([]float64, len(m))
	for i, row := range m {
		for j, x := range row {
			out[i] += x * v[j]
		}
	}
	return out
}

// tell applies the reference update to the steps y sorted best first.
func (ns *naiveState) tell(sortedY [][]float64) {
	s, n := ns.s, ns.n
	ns.g++
	yw := make([]float64, n)
	for i, y := range sortedY {
		for j := range yw {
			yw[j] += s.meanWeights[i] * y[j]
		}
	}
	for j := range ns.mean {
		ns.mean[j] += ns.sigma * yw[j]
	}
	z := matVec(ns.nrootC, yw)
	for j := range ns.ps {
		ns.ps[j] = (1-s.csigma)*ns.ps[j] + math.Sqrt(s.csigma*(2-s.csigma)*s.muEff)*z[j]
	}
	nps := math.Sqrt(sphere(ns.ps))
	h := 0.0
	if nps/math.Sqrt(1-math.Pow(1-s.csigma, 2*ns.g)) < (1.4+2/float64(n+1))*s.chiN {
		h = 1
	}
	for j := range ns.pc {
		ns.pc[j] = (1-s.cc)*ns.pc[j] + h*math.Sqrt(s.cc*(2-s.cc)*s.muEff)*yw[j]
	}
	wio := make([]float64, len(sortedY))
	for i, y := range sortedY {
		wio[i] = s.weights[i]
		if s.weights[i] <= 0 {
			wio[i] *= float64(n) / (sphere(matVec(ns.nrootC, y)) + 1e-20)
		}
	}
	var sumW float64
	for _, w := range s.weights {
		sumW += w
	}
	dh := (1 - h) * s.cc * (2 - s.cc)
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			if ns.sep && a != b {
				continue
			}
			var rankMu float64
			for i, y := range sortedY {
				rankMu += wio[i] * y[a] * y[b]
			}
			ns.C[a][b] = (1+s.c1*dh-s.c1-s.cmu*sumW)*ns.C[a][b] + s.c1*ns.pc[a]*ns.pc[b] + s.cmu*rankMu
		}
	}
	ns.sigma *= math.Exp((s.csigma / s.dsigma) * (nps/s.chiN - 1))
}

// TestUpdateMatchesReferenceTranscription runs our optimiser and the literal
// transcription side by side on the same samples and rankings.
func TestUpdateMatchesReferenceTranscription(t *testing.T) {
	for _, mode := range []Mode{ModeFull, ModeSep} {
		t.Run(string(mode), func(t *testing.T) {
			c := mustNew(t, Config{N: 7, Lambda: 9, Mu: 3, Sigma0: 0.3, Mode: mode, Seed: 11, Mean0: filled(7, 0.5)})
			ns := newNaive(c)
			r := rand.New(rand.NewPCG(5, 6))
			for g := 0; g < 40; g++ {
				ns.prepare()
				xs := c.Ask()
				fit := make([]float64, len(xs))
				for k, x := range xs {
					fit[k] = -rosenbrock(x) + 0.1*r.NormFloat64()
				}
				order := rankByFitness(fit)
				sorted := make([][]float64, len(order))
				for i, k := range order {
					sorted[i] = append([]float64(nil), c.pendingY[k]...)
				}
				if err := c.Tell(xs, fit); err != nil {
					t.Fatal(err)
				}
				ns.tell(sorted)
				const tol = 1e-9
				n := c.cfg.N
				for i := 0; i < n; i++ {
					if !near(c.mean[i], ns.mean[i], tol) || !near(c.pSigma[i], ns.ps[i], tol) || !near(c.pC[i], ns.pc[i], tol) {
						t.Fatalf("gen %d coord %d: mean %v/%v p_sigma %v/%v p_c %v/%v", g, i, c.mean[i], ns.mean[i], c.pSigma[i], ns.ps[i], c.pC[i], ns.pc[i])
					}
					for j := 0; j < n; j++ {
						var got float64
						if mode == ModeFull {
							got = c.cov[i*n+j]
						} else if i == j {
							got = c.cov[i]
						} else {
							continue
						}
						if !near(got, ns.C[i][j], tol) {
							t.Fatalf("gen %d C[%d][%d] = %v, transcription %v", g, i, j, got, ns.C[i][j])
						}
					}
				}
				if !near(c.sigma, ns.sigma, tol) {
					t.Fatalf("gen %d sigma %v, transcription %v", g, c.sigma, ns.sigma)
				}
			}
		})
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// TestFirstGenerationShift checks what adding 1e-6 to every entry of C does
// at generation 0: sampling uses C' = I + 1e-6 * ones, whose eigenvalues are
// 1 (n-1 times) and 1 + 1e-6 n (eigenvector ones/sqrt(n)). Each coordinate
// then has std sigma0 sqrt(1 + 1e-6); only the all-ones direction gets
// sigma0 sqrt(1 + 1e-6 n). C itself stays I.
func TestFirstGenerationShift(t *testing.T) {
	const n, lambda, sigma0 = 200, 32, 0.065
	c := mustNew(t, Config{N: n, Lambda: lambda, Seed: 3})
	c.ensureFactors()
	var maxIdx int
	for i, d := range c.eigD {
		if d > c.eigD[maxIdx] {
			maxIdx = i
		}
	}
	for i, d := range c.eigD {
		want := 1.0
		if i == maxIdx {
			want = 1 + 1e-6*n
		}
		if math.Abs(d*d-want) > 1e-12 {
			t.Errorf("eigenvalue %d = %.15g, want %.15g", i, d*d, want)
		}
	}
	for i := 0; i < n; i++ {
		if v := math.Abs(c.eigB.At(i, maxIdx)); math.Abs(v-1/math.Sqrt(n)) > 1e-9 {
			t.Fatalf("top eigenvector entry %d = %v, want 1/sqrt(n)", i, v)
		}
		for j := 0; j < n; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			if c.cov[i*n+j] != want {
				t.Fatalf("C[%d][%d] = %v changed by the shift", i, j, c.cov[i*n+j])
			}
		}
	}

	// Every step satisfies y^T C'^{-1} y = ||z||^2, where z is redrawn from
	// the same sampler and C'^{-1} = I - (1e-6/(1 + 1e-6 n)) ones (Sherman-
	// Morrison): this holds for C' with the shift and fails without it.
	replay := rand.New(newPCG(3))
	var sumSq, count float64
	for rep := 0; rep < 20; rep++ {
		xs := c.Ask()
		for _, x := range xs {
			var zz, yy, sum float64
			for _, v := range x {
				zv := replay.NormFloat64()
				zz += zv * zv
				y := v / sigma0
				yy += y * y
				sum += y
				sumSq += v * v
				count++
			}
			quad := yy - 1e-6/(1+1e-6*n)*sum*sum
			if math.Abs(quad-zz) > 1e-10*zz {
				t.Fatalf("y^T C'^-1 y = %.15g, ||z||^2 = %.15g", quad, zz)
			}
			if noShift := yy; math.Abs(noShift-zz) < 1e-9*zz && math.Abs(sum) > 1 {
				t.Fatalf("samples look unshifted: y^T y = %v = ||z||^2", noShift)
			}
		}
	}
	// Empirical per-coordinate std (128,000 draws, relative error ~0.2%).
	std := math.Sqrt(sumSq / count)
	if want := sigma0 * math.Sqrt(1+1e-6); math.Abs(std/want-1) > 0.01 {
		t.Errorf("empirical std %v, want %v", std, want)
	}
}
