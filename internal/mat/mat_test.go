package mat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/viterin/vek"
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

// BenchmarkMulInto times the engine's and the NAMM scorer's product shapes
// (m x n x p) with vek's AVX2 kernels, gonum's BLAS and vek's plain-Go
// fallback, in GFMA/s:
//
//	go test ./internal/mat -run XXX -bench MulInto
func BenchmarkMulInto(b *testing.B) {
	shapes := [][3]int{
		{512, 32, 4096}, // prefill q.K at 4k: 4 query heads x 128 queries, one KV head
		{512, 4096, 32}, // prefill P.V at 4k
		{768, 256, 128}, // a 128-token chunk's gate/up projection, as W x^T
		{64, 32, 4096},  // a BAM block's scores
	}
	r := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	for _, s := range shapes {
		m, n, p := s[0], s[1], s[2]
		x, y, dst := fill(m*n), fill(n*p), make([]float32, m*p)
		for _, path := range []string{"vek", "gonum", "vek-fallback"} {
			if path != "gonum" && !avx2 {
				continue // vek's kernels need AVX2; its fallback is then what runs anyway
			}
			b.Run(fmt.Sprintf("%s/%dx%dx%d", path, m, n, p), func(b *testing.B) {
				saved := avx2
				avx2 = path != "gonum"
				if path == "vek-fallback" {
					vek.SetAcceleration(false)
					defer vek.SetAcceleration(true)
				}
				defer func() { avx2 = saved }()
				for b.Loop() {
					MulInto(dst, x, y, m, n, p)
				}
				b.ReportMetric(float64(m*n*p)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFMA/s")
			})
		}
	}
}
