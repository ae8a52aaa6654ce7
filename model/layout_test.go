package model

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// refMatVec is x W^T in float64 for x [t, in] and W [out, in], row-major.
func refMatVec(x, w []float32, t, in, out int) []float64 {
	y := make([]float64, t*out)
	for i := range t {
		for o := range out {
			var s float64
			for k := range in {
				s += float64(x[i*in+k]) * float64(w[o*in+k])
			}
			y[i*out+o] = s
		}
	}
	return y
}

func maxRelDiff(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		num = math.Max(num, math.Abs(float64(got[i])-want[i]))
		den = math.Max(den, math.Abs(want[i]))
	}
	return num / den
}

// TestGroupedLinear checks linear on row-grouped weights against a float64
// x W^T, for one token (groups as a batch) and several (one matrix), with
// an even (2 groups) and an odd (1 group) output size.
func TestGroupedLinear(t *testing.T) {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	const in = 24
	for _, out := range []int{10, 7} {
		for _, tok := range []int{1, 5} {
			x := randomFloats(tok*in, 1, 3)
			w := randomFloats(out*in, 1, 4)
			g := RowGroups(out)
			if want := 2 - out%2; g != want {
				t.Fatalf("RowGroups(%d) = %d, want %d", out, g, want)
			}
			wt := toTensor(w, []int{g, out / g, in}, dtypes.Float32)
			got := MustExecOnce(be, func(x, w *Node) *Node { return linear(x, w) },
				tensors.FromFlatDataAndDimensions(x, tok, in), wt)
			if dims := got.Shape().Dimensions; dims[0] != tok || dims[1] != out {
				t.Fatalf("out=%d t=%d: shape %v", out, tok, dims)
			}
			if d := maxRelDiff(tensors.MustCopyFlatData[float32](got), refMatVec(x, w, tok, in, out)); d > 1e-5 {
				t.Errorf("out=%d t=%d: relative error %g", out, tok, d)
			}
		}
	}
}

// TestLogitsGroupedHead checks Logits with a padded, grouped head (odd
// vocabulary) against float64 RMSNorm and x W^T, for every row and for a
// selected row.
func TestLogitsGroupedHead(t *testing.T) {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	const d, v, tok = 16, 37, 3
	cfg := &Config{HiddenSize: d, VocabSize: v, RMSNormEps: 1e-5}
	head := randomFloats(v*d, 1, 5)
	ht := groupHead(head, v, d, dtypes.Float32)
	if dims := ht.Shape().Dimensions; dims[0] != HeadGroups(v) || dims[0]*dims[1] < v || dims[2] != d {
		t.Fatalf("grouped head shape %v", dims)
	}
	x := randomFloats(tok*d, 2, 6)
	norm := randomFloats(d, 1, 7)
	// float64 reference
	h := make([]float32, tok*d)
	for i := range tok {
		var ms float64
		for k := range d {
			ms += float64(x[i*d+k]) * float64(x[i*d+k])
		}
		r := 1 / math.Sqrt(ms/d+1e-5)
		for k := range d {
			h[i*d+k] = float32(float64(x[i*d+k]) * r * float64(norm[k]))
		}
	}
	want := refMatVec(h, head, tok, d, v)
	xt := tensors.FromFlatDataAndDimensions(x, tok, d)
	nt := tensors.FromFlatDataAndDimensions(norm, d)
	all := MustExecOnce(be, func(x, n, w *Node) *Node { return Logits(cfg, x, n, w, nil) }, xt, nt, ht)
	if dims := all.Shape().Dimensions; dims[0] != tok || dims[1] != v {
		t.Fatalf("all rows: shape %v", dims)
	}
	if e := maxRelDiff(tensors.MustCopyFlatData[float32](all), want); e > 1e-5 {
		t.Errorf("all rows: relative error %g", e)
	}
	sel := tensors.FromFlatDataAndDimensions([]float32{0, 1, 0}, tok)
	one := MustExecOnce(be, func(x, n, w, s *Node) *Node { return Logits(cfg, x, n, w, s) }, xt, nt, ht, sel)
	if dims := one.Shape().Dimensions; len(dims) != 1 || dims[0] != v {
		t.Fatalf("selected row: shape %v", dims)
	}
	if e := maxRelDiff(tensors.MustCopyFlatData[float32](one), want[v:2*v]); e > 1e-5 {
		t.Errorf("selected row: relative error %g", e)
	}
}

// TestCacheScoresChunked checks the chunked q.K of a long cache against the
// plain einsum and a float64 dot product.
func TestCacheScoresChunked(t *testing.T) {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	const tok, kh, grp, hd, s = 1, 2, 4, 8, 6144 // 4*6144 > directOutputs
	q := randomFloats(tok*kh*grp*hd, 1, 8)
	k := randomFloats(kh*s*hd, 1, 9)
	qt := tensors.FromFlatDataAndDimensions(q, tok, kh, grp, hd)
	kt := tensors.FromFlatDataAndDimensions(k, kh, s, hd)
	got := tensors.MustCopyFlatData[float32](MustExecOnce(be, cacheScores, qt, kt))
	plain := tensors.MustCopyFlatData[float32](MustExecOnce(be, func(q, k *Node) *Node { return Einsum("tkgh,ksh->kgts", q, k) }, qt, kt))
	want := make([]float64, kh*grp*tok*s)
	for h := range kh {
		for g := range grp {
			for j := range s {
				var sum float64
				for d := range hd {
					sum += float64(q[(h*grp+g)*hd+d]) * float64(k[(h*s+j)*hd+d])
				}
				want[(h*grp+g)*s+j] = sum
			}
		}
	}
	if e := maxRelDiff(got, want); e > 1e-5 {
		t.Errorf("chunked: relative error %g", e)
	}
	if e := maxRelDiff(plain, want); e > 1e-5 {
		t.Errorf("plain: relative error %g", e)
	}
}
