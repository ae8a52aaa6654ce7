package mat

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMulIntoMatchesFloat64 checks both paths (vek's AVX2 kernels where the
// CPU has them, gonum's BLAS) against a float64 triple loop, on shapes from
// empty to ones larger than vek's parallel threshold, overwriting a dirty dst.
func TestMulIntoMatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, simd := range []bool{false, avx2} {
		saved := avx2
		avx2 = simd
		for _, s := range [][3]int{{1, 1, 1}, {0, 3, 2}, {3, 0, 2}, {4, 32, 1100}, {7, 5, 3}, {512, 32, 300}, {130, 256, 96}} {
			m, n, p := s[0], s[1], s[2]
			x, y, dst := make([]float32, m*n), make([]float32, n*p), make([]float32, m*p)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			for i := range y {
				y[i] = float32(r.NormFloat64())
			}
			for i := range dst {
				dst[i] = 99
			}
			MulInto(dst, x, y, m, n, p)
			for i := range m {
				for j := range p {
					var want, scale float64
					for k := range n {
						want += float64(x[i*n+k]) * float64(y[k*p+j])
						scale += math.Abs(float64(x[i*n+k]) * float64(y[k*p+j]))
					}
					if d := math.Abs(float64(dst[i*p+j]) - want); d > 1e-5*(scale+1) {
						t.Fatalf("avx2=%v %dx%dx%d: [%d,%d] = %v, want %v", simd, m, n, p, i, j, dst[i*p+j], want)
					}
				}
			}
		}
		avx2 = saved
	}
}

func TestMulIntoRefusesWrongLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short dst")
		}
	}()
	MulInto(make([]float32, 3), make([]float32, 4), make([]float32, 4), 2, 2, 2)
}
