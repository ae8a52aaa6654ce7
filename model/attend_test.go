package model

import (
	"fmt"
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

// TestAttendBatchMatchesAttend: attending to three sequences over one batch
// axis gives each the output, keys, values, statistics and policy-state
// update Attend gives it alone, for a decoded token and a prefill chunk with
// padding, in float32 and bfloat16, each sequence with its own positions and
// empty slots (and a sliding window).
func TestAttendBatchMatchesAttend(t *testing.T) {
	be, err := backends.NewWithConfig("go:ops_sequential") // the parallel executor can deadlock (see engine.OpenBackend)
	if err != nil {
		t.Fatal(err)
	}
	const nh, kh, hd, slots, b, w = 4, 2, 8, 24, 3, 3
	all := StatColSums | StatLastRow | StatRows | StatKeyNorms
	// A stand-in for a policy's state update that reads every row value.
	update := func(rows, state, ctl, writeAt *Node) *Node {
		r := Slice(ReduceSum(rows, 1), AxisRange(), AxisRange(0, slots)) // [K, S]
		return Add(state, Mul(BroadcastToDims(InsertAxes(r, -1), kh, slots, w), BroadcastToDims(ConvertDType(ctl, dtypes.Float32), kh, slots, w)))
	}
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16} {
		for _, tok := range []int{1, 5} {
			for _, window := range []int{0, 12} {
				for _, withState := range []bool{false, true} {
					stats := StatMask(0)
					if withState {
						stats = all
					}
					name := fmt.Sprintf("%s t=%d window %d stats %b", dt, tok, window, stats)
					cfg := &Config{NumHeads: nh, NumKVHeads: kh, HeadDim: hd, SlidingWindow: window}
					var args []any
					seed := uint64(10)
					rnd := func(dims ...int) *tensors.Tensor {
						n := 1
						for _, d := range dims {
							n *= d
						}
						seed++
						return toTensor(randomFloats(n, 2, seed), dims, dt)
					}
					const perSeq = 12
					for i := range b {
						used := 10 + 5*i // sequence i holds tokens 0..used-1, the rest empty
						pos := make([]int32, kh*slots)
						for k := range kh {
							for s := range slots {
								pos[k*slots+s] = -1
								if s < used && (s+k+i)%7 != 3 { // holes differ per head and sequence
									pos[k*slots+s] = int32(s)
								}
							}
						}
						qpos := make([]int32, tok)
						qw := make([]float32, 2*tok)
						for j := range qpos {
							qpos[j], qw[j] = int32(used+j), 1
						}
						if tok > 1 {
							qpos[tok-1], qw[tok-1] = -1, 0 // padding
						}
						qw[tok+max(tok-2, 0)] = 1
						cs := make([]float32, tok*hd/2)
						sn := make([]float32, tok*hd/2)
						for j := range cs {
							cs[j], sn[j] = float32(math.Cos(float64(j+i)*0.3)), float32(math.Sin(float64(j+i)*0.3))
						}
						feat := toTensor(randomFloats(kh*slots*w, 1, seed+100), []int{kh, slots, w}, dtypes.Float32)
						ctl := tensors.FromFlatDataAndDimensions([]float32{float32(i + 1)}, 1)
						args = append(args, rnd(tok, nh*hd), rnd(tok, kh*hd), rnd(tok, kh*hd), rnd(kh, slots, hd), rnd(kh, hd, slots),
							tensors.FromFlatDataAndDimensions(pos, kh, slots), tensors.FromFlatDataAndDimensions(qpos, tok),
							toTensor(cs, []int{tok, hd / 2}, dt), toTensor(sn, []int{tok, hd / 2}, dt),
							tensors.FromFlatDataAndDimensions(qw, 2, tok), feat, ctl)
					}
					nOut := 0 // outputs per sequence and path
					out := MustExecOnceN(be, func(in []*Node) []*Node {
						var qs, ks, vs []*Node
						var sts []LayerState
						var ins []PassInputs
						for i := range b {
							p := in[perSeq*i:]
							qs, ks, vs = append(qs, p[0]), append(ks, p[1]), append(vs, p[2])
							st := LayerState{K: p[3], V: p[4], Pos: p[5]}
							pass := PassInputs{X: p[0], QueryPos: p[6], Cos: p[7], Sin: p[8], QueryWeights: p[9]}
							if withState {
								st.Feat = p[10]
								pass.UpdateState, pass.StateCtl, pass.WriteAt = update, p[11], ScalarZero(p[0].Graph(), dtypes.Int32)
							}
							sts, ins = append(sts, st), append(ins, pass)
						}
						if !batchable(sts, ins, []StatMask{stats, stats, stats}) {
							t.Fatalf("%s: three sequences of one kind, width and cache size are not batchable", name)
						}
						f32 := func(x *Node) *Node { return ConvertDType(x, dtypes.Float32) }
						flat := func(a *Node, o LayerOutputs) []*Node {
							r := []*Node{f32(a), f32(o.NewK), f32(o.NewV)}
							for _, st := range o.Stats {
								r = append(r, f32(st))
							}
							if o.Feat != nil {
								r = append(r, f32(o.Feat))
							}
							return r
						}
						attn, outs := attendBatch(cfg, Concatenate(qs, 0), Concatenate(ks, 0), Concatenate(vs, 0), sts, ins, stats)
						var res []*Node
						for i := range b {
							a, o := Attend(cfg, qs[i], ks[i], vs[i], sts[i], ins[i], stats)
							alone := flat(a, o)
							batched := flat(Slice(attn, AxisRange(i*tok, (i+1)*tok)), outs[i])
							nOut = len(alone)
							res = append(append(res, alone...), batched...)
						}
						return res
					}, args...)
					if want := 3 + 4*btoi(withState) + btoi(withState); nOut != want {
						t.Fatalf("%s: %d outputs per sequence, want %d", name, nOut, want)
					}
					for i := range b {
						for j := range nOut {
							alone := tensors.MustCopyFlatData[float32](out[2*nOut*i+j])
							batched := tensors.MustCopyFlatData[float32](out[2*nOut*i+nOut+j])
							for x, v := range alone {
								if j == 0 && tok > 1 && x/(nh*hd) == tok-1 {
									continue // the padding query's output is never read
								}
								if g := batched[x]; math.Abs(float64(g-v)) > 1e-6*math.Max(1, math.Abs(float64(v))) {
									t.Fatalf("%s sequence %d output %d: [%d] = %g batched, %g alone", name, i, j, x, g, v)
								}
							}
						}
					}
				}
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
