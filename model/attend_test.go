package model

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestAttendProbsFromScoresBF16: in bfloat16, Attend rounds
// exp(s - m - log(den)) instead of e/den. The rows (group-averaged
// probabilities) and the attention output must equal the e/den ones up to
// a one-ulp bfloat16 rounding flip in a few values.
func TestAttendProbsFromScoresBF16(t *testing.T) {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	const nh, kh, hd, slots, tok = 4, 2, 8, 40, 5
	cfg := &Config{NumHeads: nh, NumKVHeads: kh, HeadDim: hd}
	bf := func(n int, seed uint64, dims ...int) *tensors.Tensor {
		return toTensor(randomFloats(n, 2, seed), dims, dtypes.BFloat16)
	}
	pos := make([]int32, kh*slots)
	for k := range kh {
		for s := range slots {
			pos[k*slots+s] = int32(s)
			if s >= 33 {
				pos[k*slots+s] = -1 // empty slots
			}
		}
	}
	qpos := []int32{33, 34, 35, 36, -1}
	qw := []float32{1, 1, 1, 1, 0, 0, 0, 0, 1, 0}
	cosSin := func(f func(float64) float64) *tensors.Tensor {
		v := make([]float32, tok*hd/2)
		for i := range v {
			v[i] = float32(f(float64(i) * 0.1))
		}
		return toTensor(v, []int{tok, hd / 2}, dtypes.BFloat16)
	}
	args := []any{bf(tok*nh*hd, 1, tok, nh*hd), bf(tok*kh*hd, 2, tok, kh*hd), bf(tok*kh*hd, 3, tok, kh*hd),
		bf(kh*slots*hd, 4, kh, slots, hd), bf(kh*hd*slots, 5, kh, hd, slots),
		tensors.FromFlatDataAndDimensions(pos, kh, slots), tensors.FromFlatDataAndDimensions(qpos, tok),
		tensors.FromFlatDataAndDimensions(qw, 2, tok), cosSin(math.Cos), cosSin(math.Sin)}
	run := func(fromScores bool) (rows, attn []float32) {
		probsFromScores = fromScores
		defer func() { probsFromScores = true }()
		out := MustExecOnceN(be, func(in []*Node) []*Node {
			st := LayerState{K: in[3], V: in[4], Pos: in[5]}
			pass := PassInputs{QueryPos: in[6], QueryWeights: in[7], Cos: in[8], Sin: in[9]}
			a, o := Attend(cfg, in[0], in[1], in[2], st, pass, StatRows)
			return []*Node{ConvertDType(a, dtypes.Float32), o.Stats[0]}
		}, args...)
		return tensors.MustCopyFlatData[float32](out[1]), tensors.MustCopyFlatData[float32](out[0])
	}
	rowsS, attnS := run(true)
	rowsE, attnE := run(false)
	flips, n := 0, kh*(tok-1)*(slots+tok)
	for i := range rowsE {
		if (i/(slots+tok))%tok == tok-1 {
			continue // the padding query: its rows are never read
		}
		d := math.Abs(float64(rowsS[i] - rowsE[i]))
		// A bfloat16 flip in one of the group's 2 heads moves the mean by at
		// most half an ulp of that head's probability (2^-8 relative).
		if d > 0 {
			flips++
			if d > math.Abs(float64(rowsE[i]))*(1.0/128)+1e-30 {
				t.Fatalf("rows[%d]: %g from scores, %g from e/den", i, rowsS[i], rowsE[i])
			}
		}
	}
	if flips > n/20 {
		t.Errorf("%d of %d rows values differ (more than rounding flips)", flips, n)
	}
	for i := range attnE {
		if i/(nh*hd) == tok-1 {
			continue
		}
		if d := math.Abs(float64(attnS[i] - attnE[i])); d > 0.02*(1+math.Abs(float64(attnE[i]))) {
			t.Errorf("attention output %d: %g from scores, %g from e/den", i, attnS[i], attnE[i])
		}
	}
	t.Logf("%d of %d rows values differ by a rounding flip", flips, n)
}
