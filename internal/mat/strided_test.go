package mat

import (
	"math"
	"math/rand/v2"
	"testing"
)

// MulStrided equals a float64 product to float32 rounding, on windows of a
// wider matrix, for column counts inside and outside the kernel's blocks
// and odd and even row counts; a row's values are bit for bit those it
// gets alone.
func TestMulStridedMatchesFloat64AndAlone(t *testing.T) {
	testMulStrided(t)
	if avx2 {
		avx2 = false // the path of CPUs without AVX2 (gonum's BLAS)
		defer func() { avx2 = true }()
		testMulStrided(t)
	}
}

func testMulStrided(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 32, 33} {
		for _, m := range []int{1, 31, 32, 33, 64, 100} {
			for _, rows := range []int{1, 2, 3, 5} {
				stride := m + 9
				a := make([]float32, rows*n)
				b := make([]float32, (n-1)*stride+m)
				for i := range a {
					a[i] = float32(r.NormFloat64())
				}
				for i := range b {
					b[i] = float32(r.NormFloat64())
				}
				got := make([]float32, rows*m)
				MulStrided(got, a, b, rows, n, m, stride)
				alone := make([]float32, m)
				for i := range rows {
					MulStrided(alone, a[i*n:(i+1)*n], b, 1, n, m, stride)
					for j := range m {
						var want, mag float64
						for c := range n {
							p := float64(a[i*n+c]) * float64(b[c*stride+j])
							want += p
							mag += math.Abs(p)
						}
						g := got[i*m+j]
						if d := math.Abs(float64(g) - want); d > 1e-5*mag+1e-30 {
							t.Fatalf("n %d m %d rows %d: [%d,%d] = %v, float64 %v", n, m, rows, i, j, g, want)
						}
						if math.Float32bits(alone[j]) != math.Float32bits(g) {
							t.Fatalf("n %d m %d rows %d: [%d,%d] = %v beside others, %v alone", n, m, rows, i, j, g, alone[j])
						}
					}
				}
			}
		}
	}
}

// BenchmarkMulStrided: a 64-query block of the NAMM's BAM over 2,573 keys
// of 32 values. q.K (scores [64, 2573]) as MulStrided on the transposed
// keys, as Dots per query on the keys as they are, and as vek's product on
// both cores; P.V (output [64, 32]) as MulStrided on the values and as
// vek's product. Then a prefill chunk's attention with the cache on model C
// (one KV head: 4 query heads x 128 queries, head dimension 32, 4,096 cached
// keys), on one core as the engine runs each row block; q.K on keys
// transposed with the cache's length as their row stride, and with
// PaddedStride's.
func BenchmarkMulStrided(b *testing.B) {
	run := func(name string, fmas int, f func()) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				f()
			}
			b.ReportMetric(float64(fmas)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFMA/s")
		})
	}
	const rows, n, m = 64, 32, 2573
	q, kt, kf := make([]float32, rows*n), make([]float32, n*m), make([]float32, m*n)
	scores, v, out := make([]float32, rows*m), make([]float32, m*n), make([]float32, rows*n)
	run("qk/MulStrided", rows*n*m, func() { MulStrided(scores, q, kt, rows, n, m, m) })
	run("qk/Dots", rows*n*m, func() {
		for r := range rows {
			Dots(scores[r*m:(r+1)*m], q[r*n:(r+1)*n], kf)
		}
	})
	run("qk/vek-both-cores", rows*n*m, func() { MulInto(scores, q, kt, rows, n, m) })
	run("pv/MulStrided", rows*n*m, func() { MulStrided(out, scores, v, rows, m, n, n) })
	run("pv/vek-both-cores", rows*n*m, func() { MulInto(out, scores, v, rows, m, n) })

	const ar, ah, ac = 512, 32, 4096
	ld := PaddedStride(ac)
	aq, akt := make([]float32, ar*ah), make([]float32, ah*ld)
	ap, avt, ao := make([]float32, ar*ac), make([]float32, ac*ah), make([]float32, ar*ah)
	run("attn-qk/stride-4096", ar*ah*ac, func() { MulStrided(ap, aq, akt, ar, ah, ac, ac) })
	run("attn-qk/padded", ar*ah*ac, func() { MulStrided(ap, aq, akt, ar, ah, ac, ld) })
	run("attn-pv", ar*ah*ac, func() { MulStrided(ao, ap, avt, ar, ac, ah, ah) })
}

// TestPaddedStride: never shorter than the row, at most 16 longer, never a
// multiple of 32 floats (so never of 128 floats, 512 bytes, where rows fall
// into a few of L1's sets), and the row itself when its bit 16 is set.
func TestPaddedStride(t *testing.T) {
	for m := range 10000 {
		s := PaddedStride(m)
		if s < m || s%32 == 0 || s-m > 16 {
			t.Fatalf("PaddedStride(%d) = %d", m, s)
		}
		if m%32 != 0 && m%32 >= 16 && s != m {
			t.Fatalf("PaddedStride(%d) = %d, want the row itself", m, s)
		}
	}
}
