package mat

import "github.com/viterin/vek/vek32"

// Dots sets dst[r] to the dot product of w with the r-th row of x
// [len(dst), len(w)]: one weight row against several vectors (the decoding
// rows of a batch), read once for all of them. Each dot product's
// arithmetic is the same whatever the number of rows, so a row's result
// does not depend on the rows beside it. On CPUs with AVX2 and FMA, rows of
// a multiple of 16 values go through a kernel that loads each part of w once
// for four rows; otherwise vek's Dot per row.
func Dots(dst, w, x []float32) {
	n := len(w)
	if len(x) != len(dst)*n {
		panic("mat: Dots: x does not hold len(dst) rows of len(w) values")
	}
	if n == 0 {
		clear(dst)
		return
	}
	if !avx2 || n%16 != 0 {
		for r := range dst {
			dst[r] = vek32.Dot(w, x[r*n:(r+1)*n])
		}
		return
	}
	dotsAVX2(dst, w, x)
}
