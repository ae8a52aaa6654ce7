package cmaes

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// firstGenShift is added to every entry of C before the generation-0
// decomposition (reference: full_eigen_decomp with shift_first_gen). In sep
// mode only the diagonal exists, so only the diagonal is shifted.
const firstGenShift = 1e-6

// clampedEigenvalue replaces eigenvalues <= 0 before the square root.
const clampedEigenvalue = 1e-20

// factorsCurrent reports whether the sampling factors may be used for
// generation gen: computed at gen, or, with EigenInterval > 1, fewer than
// EigenInterval generations ago.
func (c *CMAES) factorsCurrent() bool {
	if c.eigGen < 0 {
		return false
	}
	if c.cfg.Mode == ModeSep {
		return c.eigGen == c.gen
	}
	return c.gen-c.eigGen < c.cfg.EigenInterval
}

// ensureFactors computes C = B diag(D)^2 B^T for the current generation when
// the stored factors are not current.
func (c *CMAES) ensureFactors() {
	if c.factorsCurrent() {
		return
	}
	n := c.cfg.N
	shift := 0.0
	if c.gen == 0 {
		shift = firstGenShift
	}
	if c.eigD == nil {
		c.eigD = make([]float64, n)
	}
	if c.cfg.Mode == ModeSep {
		for i, v := range c.cov {
			c.eigD[i] = clampedSqrt(v + shift)
		}
		c.eigGen = c.gen
		return
	}
	data := c.cov
	if shift != 0 {
		data = make([]float64, len(c.cov))
		for i, v := range c.cov {
			data[i] = v + shift
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(n, data), true) {
		// Dsyev failed to converge: fall back to the diagonal, which keeps
		// sampling defined; this has not been observed.
		c.eigB = mat.NewDense(n, n, nil)
		for i := 0; i < n; i++ {
			c.eigB.Set(i, i, 1)
			c.eigD[i] = clampedSqrt(data[i*n+i])
		}
		c.eigGen = c.gen
		return
	}
	c.eigB = eig.RawQ().(*mat.Dense) // owned by us once eig goes out of scope
	for i, v := range eig.RawValues() {
		c.eigD[i] = clampedSqrt(v)
	}
	c.eigGen = c.gen
}

func clampedSqrt(v float64) float64 {
	if v <= 0 {
		v = clampedEigenvalue
	}
	return math.Sqrt(v)
}

// scaleByFactors turns normal draws z (lambda*n, row k = member k) into steps
// y_k = B diag(D) z_k.
func (c *CMAES) scaleByFactors(z []float64) [][]float64 {
	n, lambda := c.cfg.N, c.cfg.Lambda
	for k := 0; k < lambda; k++ {
		row := z[k*n : (k+1)*n]
		for j := range row {
			row[j] *= c.eigD[j]
		}
	}
	var y []float64
	if c.cfg.Mode == ModeSep {
		y = z
	} else {
		out := mat.NewDense(lambda, n, nil)
		out.Mul(mat.NewDense(lambda, n, z), c.eigB.T())
		y = out.RawMatrix().Data
	}
	ys := make([][]float64, lambda)
	for k := range ys {
		ys[k] = y[k*n : (k+1)*n : (k+1)*n]
	}
	return ys
}

// invSqrtC returns C^(-1/2) v = B diag(1/D) B^T v with the sampling factors.
func (c *CMAES) invSqrtC(v []float64) []float64 {
	n := c.cfg.N
	out := make([]float64, n)
	if c.cfg.Mode == ModeSep {
		for j, x := range v {
			out[j] = x / c.eigD[j]
		}
		return out
	}
	t := mat.NewVecDense(n, nil)
	t.MulVec(c.eigB.T(), mat.NewVecDense(n, append([]float64(nil), v...)))
	for j := 0; j < n; j++ {
		t.SetVec(j, t.AtVec(j)/c.eigD[j])
	}
	mat.NewVecDense(n, out).MulVec(c.eigB, t)
	return out
}

// whitenedSqNorms returns ||C^(-1/2) y_i||^2 = ||diag(1/D) B^T y_i||^2 for
// every step (B is orthogonal, so the final rotation by B is skipped).
func (c *CMAES) whitenedSqNorms(ys [][]float64) []float64 {
	n := c.cfg.N
	sq := make([]float64, len(ys))
	if c.cfg.Mode == ModeSep {
		for i, y := range ys {
			for j, v := range y {
				w := v / c.eigD[j]
				sq[i] += w * w
			}
		}
		return sq
	}
	flat := make([]float64, 0, len(ys)*n)
	for _, y := range ys {
		flat = append(flat, y...)
	}
	var t mat.Dense
	t.Mul(mat.NewDense(len(ys), n, flat), c.eigB) // row i = (B^T y_i)^T
	for i := range ys {
		row := t.RawRowView(i)
		for j, v := range row {
			w := v / c.eigD[j]
			sq[i] += w * w
		}
	}
	return sq
}

// updateCov sets C = decay C + c1 pC pC^T + c_mu sum_i w_i y_i y_i^T. In full
// mode the lower triangle is computed (rows split among goroutines; each
// entry has one fixed summation order) and mirrored, so C stays exactly
// symmetric and the result does not depend on the number of workers.
func (c *CMAES) updateCov(decay float64, w []float64, ys [][]float64) {
	s := &c.st
	n := c.cfg.N
	if c.cfg.Mode == ModeSep {
		for j := range c.cov {
			v := decay*c.cov[j] + s.c1*c.pC[j]*c.pC[j]
			var r float64
			for i, y := range ys {
				r += w[i] * y[j] * y[j]
			}
			c.cov[j] = v + s.cmu*r
		}
		return
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for worker := 0; worker < workers; worker++ {
		wg.Add(1)
		go func(first int) {
			defer wg.Done()
			coefs := make([]float64, len(ys))
			for i := first; i < n; i += workers {
				row := c.cov[i*n : i*n+i+1]
				for j := range row {
					row[j] *= decay
				}
				a := s.c1 * c.pC[i]
				for j, p := range c.pC[:i+1] {
					row[j] += a * p
				}
				for k, y := range ys {
					coefs[k] = s.cmu * w[k] * y[i]
				}
				addScaledRows(row, coefs, ys, i+1)
			}
		}(worker)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		for j := 0; j < i; j++ {
			c.cov[j*n+i] = c.cov[i*n+j]
		}
	}
}

// addScaledRows adds sum_k coefs[k] * ys[k][:m] to row (length m), four
// steps per pass so the row is loaded and stored a quarter as often.
func addScaledRows(row, coefs []float64, ys [][]float64, m int) {
	k := 0
	for ; k+4 <= len(ys); k += 4 {
		a0, a1, a2, a3 := coefs[k], coefs[k+1], coefs[k+2], coefs[k+3]
		y0, y1, y2, y3 := ys[k][:m], ys[k+1][:m], ys[k+2][:m], ys[k+3][:m]
		for j := range row {
			row[j] += a0*y0[j] + a1*y1[j] + a2*y2[j] + a3*y3[j]
		}
	}
	for ; k < len(ys); k++ {
		a, y := coefs[k], ys[k][:m]
		for j := range row {
			row[j] += a * y[j]
		}
	}
}
