package mat

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Dots equals a float64 dot product to float32 rounding, for row lengths
// the kernel takes (multiples of 16) and others, and for any number of
// rows; every row's result is bit for bit the one it gets alone.
func TestDotsMatchFloat64AndAlone(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{16, 32, 48, 80, 256, 768, 7, 33} {
		for _, rows := range []int{1, 2, 3, 4, 5, 8, 9, 16} {
			w := make([]float32, n)
			x := make([]float32, rows*n)
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			got := make([]float32, rows)
			Dots(got, w, x)
			for i := range rows {
				var want, mag float64
				for k := range n {
					p := float64(w[k]) * float64(x[i*n+k])
					want += p
					mag += math.Abs(p)
				}
				if d := math.Abs(float64(got[i]) - want); d > 1e-5*mag {
					t.Fatalf("n %d, %d rows, row %d: %v, float64 %v", n, rows, i, got[i], want)
				}
				alone := make([]float32, 1)
				Dots(alone, w, x[i*n:(i+1)*n])
				if math.Float32bits(alone[0]) != math.Float32bits(got[i]) {
					t.Fatalf("n %d, %d rows, row %d: %v beside others, %v alone", n, rows, i, got[i], alone[0])
				}
			}
		}
	}
}

func BenchmarkDots(b *testing.B) {
	const out, in = 4096, 256
	w := make([]float32, out*in)
	for i := range w {
		w[i] = rand.Float32()
	}
	for _, rows := range []int{1, 15, 16} {
		x := make([]float32, rows*in)
		for i := range x {
			x[i] = rand.Float32()
		}
		dst := make([]float32, rows)
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			for range b.N {
				for o := range out {
					Dots(dst, w[o*in:(o+1)*in], x)
				}
			}
		})
		b.Run(fmt.Sprintf("vek/rows=%d", rows), func(b *testing.B) {
			for range b.N {
				for o := range out {
					for r := range rows {
						dst[r] = vek32Dot(w[o*in:(o+1)*in], x[r*in:(r+1)*in])
					}
				}
			}
		})
	}
}

var vek32Dot = func(a, b []float32) float32 {
	saved := avx2
	avx2 = false
	dst := []float32{0}
	Dots(dst, a, b)
	avx2 = saved
	return dst[0]
}

// BenchmarkDotsAgainstMulInto: a [768, 256] weight against T rows, as the
// engine's projections take them (Dots per weight row) and as one matrix
// product (MulInto, y^T = W x^T).
func BenchmarkDotsAgainstMulInto(b *testing.B) {
	const out, in = 768, 256
	w := make([]float32, out*in)
	for i := range w {
		w[i] = rand.Float32()
	}
	for _, t := range []int{16, 32, 128} {
		x := make([]float32, t*in)
		for i := range x {
			x[i] = rand.Float32()
		}
		y := make([]float32, out*t)
		dst := make([]float32, t)
		b.Run(fmt.Sprintf("Dots/rows=%d", t), func(b *testing.B) {
			for range b.N {
				for o := range out {
					Dots(dst, w[o*in:(o+1)*in], x)
				}
			}
		})
		b.Run(fmt.Sprintf("MulInto/rows=%d", t), func(b *testing.B) {
			for range b.N {
				MulInto(y, w, x, out, in, t)
			}
		})
	}
}
