//go:build !amd64

package mat

func dotsAVX2(dst, w, x []float32) { panic("mat: no AVX2 on this architecture") }
