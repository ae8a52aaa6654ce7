package mat

// dotsAVX2 is Dots for rows of a multiple of 16 values: four rows at a time
// (the last four again where the count is not a multiple of four: the rows
// computed twice get the same values), fewer one at a time, each with the
// same two accumulators and the same reduction.
func dotsAVX2(dst, w, x []float32) {
	n, b := len(w), len(dst)
	if b < 4 {
		for r := range b {
			dst[r] = dot1(&w[0], &x[r*n], n)
		}
		return
	}
	for r := 0; r < b; r += 4 {
		r = min(r, b-4)
		dots4(&w[0], &x[r*n], n, &dst[r])
	}
}

// dots4 sets out[0:4] to w . x[i*n:(i+1)*n] for i < 4; n is a multiple of 16.
//
//go:noescape
func dots4(w, x *float32, n int, out *float32)

// dot1 is w . x[0:n]; n is a multiple of 16.
//
//go:noescape
func dot1(w, x *float32, n int) float32

// mul2x32 sets out0[0:32] to sum over c < n of a0[c] * b[c*stride:][0:32],
// in order of c with fused multiply-adds, and out1 the same with a1; n > 0.
//
//go:noescape
func mul2x32(a0, a1, b *float32, n, stride int, out0, out1 *float32)
