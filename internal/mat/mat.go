// Package mat multiplies row-major float32 matrices on the host, with
// kernels of its own where the CPU has AVX2 and FMA and gonum's BLAS
// elsewhere (arm64, older x86). MulStrided serves attention's products and
// the NAMM's; Dots takes one weight row against several vectors (the
// engine's projections); MulInto is vek's AVX2 product for other shapes
// (vek's own fallback is a plain triple loop, so gonum replaces it).
// BenchmarkMulInto measures vek, gonum and vek's fallback on the engine's
// shapes (on the 2-core development machine: vek 11-19 GFMA/s, gonum
// 3.1-3.8, vek's fallback 0.7).
//
// NAMM_NO_AVX2=1 in the environment takes the path of a CPU without AVX2
// (gonum here, and vek's plain-Go vector operations everywhere), to measure
// or debug it on a machine that has AVX2.
package mat

import (
	"os"

	"github.com/viterin/vek"
	"github.com/viterin/vek/vek32"
	"golang.org/x/sys/cpu"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// avx2 selects vek's kernels; tests switch it off to check the other path.
var avx2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func init() {
	if os.Getenv("NAMM_NO_AVX2") != "" && avx2 {
		avx2 = false
		vek.SetAcceleration(false)
	}
}

// MulInto sets dst [m, p] to x [m, n] times y [n, p]. The slices hold
// exactly m*p, m*n and n*p values.
func MulInto(dst, x, y []float32, m, n, p int) {
	if len(dst) != m*p || len(x) != m*n || len(y) != n*p {
		panic("mat: MulInto: slice lengths do not match the dimensions")
	}
	if m == 0 || p == 0 {
		return
	}
	if n == 0 {
		clear(dst)
		return
	}
	if avx2 {
		vek32.MatMul_Into(dst, x, y, n)
		return
	}
	gemm(dst, x, y, m, n, p, p)
}

// gemm is gonum's BLAS product dst [rows, m] = a [rows, n] times b [n, m],
// b's rows stride apart: the path of CPUs without AVX2 and FMA.
func gemm(dst, a, b []float32, rows, n, m, stride int) {
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: rows, Cols: n, Stride: n, Data: a},
		blas32.General{Rows: n, Cols: m, Stride: stride, Data: b},
		0, blas32.General{Rows: rows, Cols: m, Stride: m, Data: dst})
}
