package mat

// MulStrided sets dst [rows, m] to a [rows, n] times b, an [n, m] matrix
// whose rows lie stride values apart in b: dst[r*m+j] is the sum over c, in
// order, of a[r*n+c] * b[c*stride+j]. With stride > m, b can be a window of
// columns of a wider matrix (the keys a block of queries sees, of all the
// keys transposed), which vek's product cannot take.
//
// On CPUs with AVX2 and FMA, blocks of 32 columns go through a kernel that
// broadcasts two rows' values of a against each row of b (a fused
// multiply-add per product), the last m%32 columns plain multiply-adds: a
// value's arithmetic depends on its column's place in the block structure
// of m only, not on rows. Elsewhere gonum's BLAS computes it.
func MulStrided(dst, a, b []float32, rows, n, m, stride int) {
	if len(dst) != rows*m || len(a) != rows*n || stride < m || (n > 0 && m > 0 && len(b) < (n-1)*stride+m) {
		panic("mat: MulStrided: slice lengths do not match the dimensions")
	}
	if rows == 0 || m == 0 {
		return
	}
	if n == 0 {
		clear(dst)
		return
	}
	if !avx2 {
		gemm(dst, a, b, rows, n, m, stride) // the window as a matrix with a row stride
		return
	}
	body := m &^ 31
	if body > 0 {
		var spare [32]float32
		// Column blocks outer: a block of b stays in L1 while every row
		// pair runs against it. That holds only if b's rows do not lie a
		// multiple of 512 bytes apart, which maps the block's rows to a few
		// of L1's sets: callers pick such strides (PaddedStride).
		for j := 0; j < body; j += 32 {
			for r := 0; r < rows; r += 2 {
				r1 := min(r+1, rows-1)
				out1 := &dst[r1*m+j]
				if r1 == r {
					out1 = &spare[0]
				}
				mul2x32(&a[r*n], &a[r1*n], &b[j], n, stride, &dst[r*m+j], out1)
			}
		}
	}
	for r := range rows {
		ar := a[r*n : (r+1)*n]
		for j := body; j < m; j++ {
			var s float32
			for c, v := range ar {
				s += v * b[c*stride+j]
			}
			dst[r*m+j] = s
		}
	}
}

// PaddedStride is a row stride of at least m float32s that does not put
// MulStrided's b rows a multiple of 512 bytes apart (m | 16 is an odd multiple
// of 16 or not one of 16 at all): on the 2-core development machine a q.K
// against 4,096 keys runs at 24 GFMA/s with stride 4,096 and 50 with 4,112.
func PaddedStride(m int) int { return m | 16 }
