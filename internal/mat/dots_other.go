//go:build !amd64

package mat

func dotsAVX2(dst, w, x []float32) { panic("mat: no AVX2 on this architecture") }

func mul2x32(a0, a1, b *float32, n, stride int, out0, out1 *float32) {
	panic("mat: no AVX2 on this architecture")
}
