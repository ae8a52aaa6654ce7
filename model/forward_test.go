package model

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestLayerAppendFirstMatchesTwoParts checks that a layer which writes the
// pass's keys and values into the cache before attending (AppendFirst, the
// GPU's fused pass) computes what the two-part attention (cache, then the
// pass's own tokens) computes: for one decoded token and for a chunk with a
// padding query, with and without QKV biases and a sliding window, over a
// cache with an evicted slot.
func TestLayerAppendFirstMatchesTwoParts(t *testing.T) {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	base := Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 1, NumHeads: 4, NumKVHeads: 2,
		HeadDim: 8, VocabSize: 16, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 64, HiddenAct: "silu"}
	const slots, used = 16, 6
	cachePos := []int32{0, 1, 3, 4, 6, 7} // position 2 and 5 were evicted
	for _, c := range []struct {
		name    string
		t, real int
		bias    bool
		window  int
	}{
		{"decode", 1, 1, false, 0},
		{"chunk with padding", 4, 3, false, 0},
		{"qwen2 biases", 3, 3, true, 0},
		{"sliding window", 4, 4, false, 5},
	} {
		cfg := base
		cfg.AttentionBias, cfg.SlidingWindow = c.bias, c.window
		wt := RandomWeights(&cfg, dtypes.Float32, 7).Layers[0]
		kh, hd, d := cfg.NumKVHeads, cfg.HeadDim, cfg.HiddenSize
		pos := make([]int32, kh*slots)
		for h := range kh {
			for s := range slots {
				pos[h*slots+s] = -1
				if s < used {
					pos[h*slots+s] = cachePos[s]
				}
			}
		}
		qpos := make([]int32, c.t)
		qw := make([]float32, 2*c.t)
		for i := range c.t {
			qpos[i] = -1
			if i < c.real {
				qpos[i], qw[i] = int32(8+i), 1
			}
		}
		qw[c.t+c.real-1] = 1
		args := []*tensors.Tensor{
			tensors.FromFlatDataAndDimensions(randomFloats(c.t*d, 1, 11), c.t, d),
			tensors.FromFlatDataAndDimensions(randomFloats(c.t*hd/2, 1, 12), c.t, hd/2),
			tensors.FromFlatDataAndDimensions(randomFloats(c.t*hd/2, 1, 13), c.t, hd/2),
			tensors.FromFlatDataAndDimensions(qpos, c.t),
			tensors.FromFlatDataAndDimensions(qw, 2, c.t),
			tensors.FromFlatDataAndDimensions(randomFloats(kh*slots*hd, 1, 14), kh, slots, hd),
			tensors.FromFlatDataAndDimensions(randomFloats(kh*hd*slots, 1, 15), kh, hd, slots),
			tensors.FromFlatDataAndDimensions(pos, kh, slots),
		}
		run := func(first bool) []float32 {
			var in []any
			for _, a := range args {
				in = append(in, a)
			}
			for _, w := range wt.List() {
				in = append(in, w)
			}
			out := MustExecOnce(be, func(p []*Node) *Node {
				pass := PassInputs{X: p[0], Cos: p[1], Sin: p[2], QueryPos: p[3], QueryWeights: p[4]}
				st := LayerState{K: p[5], V: p[6], Pos: p[7]}
				w := LayerWeights{AttnNorm: p[8], Wqkv: p[9]}
				q := p[10:]
				if cfg.AttentionBias {
					w.Bq, w.Bk, w.Bv, q = q[0], q[1], q[2], q[3:]
				}
				w.Wo, w.MLPNorm, w.Wgu, w.Wdown = q[0], q[1], q[2], q[3]
				if first {
					// Concatenation places the tokens at slots used..used+t-1,
					// as AppendKV's DynamicUpdateSlice does on XLA.
					pass.AppendFirst = func(k, v *Node) LayerState {
						all := AxisRange()
						qp := BroadcastToDims(InsertAxes(pass.QueryPos, 0), kh, c.t)
						return LayerState{
							K: Concatenate([]*Node{Slice(st.K, all, AxisRange(0, used), all), k, Slice(st.K, all, AxisRange(used+c.t, slots), all)}, 1),
							V: Concatenate([]*Node{Slice(st.V, all, all, AxisRange(0, used)), v, Slice(st.V, all, all, AxisRange(used+c.t, slots))}, 2),
							Pos: Concatenate([]*Node{Slice(st.Pos, all, AxisRange(0, used)), qp, Slice(st.Pos, all, AxisRange(used+c.t, slots))}, 1),
						}
					}
				}
				return Layer(&cfg, w, st, pass, StatKeyNorms).X
			}, in...)
			return tensors.MustCopyFlatData[float32](out)
		}
		want, got := run(false), run(true)
		ref := make([]float64, len(want))
		for i, v := range want {
			ref[i] = float64(v)
		}
		// Only real queries: a padding query's output is meaningless.
		n := c.real * d
		if e := maxRelDiff(got[:n], ref[:n]); e > 1e-5 {
			t.Errorf("%s: append-first output differs from the two-part attention by %g (relative)", c.name, e)
		}
	}
}
