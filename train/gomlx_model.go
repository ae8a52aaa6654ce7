package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/model"
)

// Param is one trainable weight: its Hugging Face name and [out, in]-style
// shape, as written to model.safetensors.
type Param struct {
	Name  string
	Shape []int
	Decay bool // weight decay applies (matrices; not norms)
}

// Size is the number of elements of the parameter.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// ModelParams lists the model's parameters in a fixed order, with Hugging
// Face's names and shapes; lm_head.weight is absent when the embeddings are tied.
func ModelParams(cfg *model.Config) []Param {
	d, hd, inter := cfg.HiddenSize, cfg.HeadDim, cfg.IntermediateSize
	ps := []Param{{Name: "model.embed_tokens.weight", Shape: []int{cfg.VocabSize, d}, Decay: true}}
	for l := range cfg.NumLayers {
		pre := fmt.Sprintf("model.layers.%d.", l)
		ps = append(ps,
			Param{Name: pre + "input_layernorm.weight", Shape: []int{d}},
			Param{Name: pre + "self_attn.q_proj.weight", Shape: []int{cfg.NumHeads * hd, d}, Decay: true},
			Param{Name: pre + "self_attn.k_proj.weight", Shape: []int{cfg.NumKVHeads * hd, d}, Decay: true},
			Param{Name: pre + "self_attn.v_proj.weight", Shape: []int{cfg.NumKVHeads * hd, d}, Decay: true},
			Param{Name: pre + "self_attn.o_proj.weight", Shape: []int{d, cfg.NumHeads * hd}, Decay: true},
			Param{Name: pre + "post_attention_layernorm.weight", Shape: []int{d}},
			Param{Name: pre + "mlp.gate_proj.weight", Shape: []int{inter, d}, Decay: true},
			Param{Name: pre + "mlp.up_proj.weight", Shape: []int{inter, d}, Decay: true},
			Param{Name: pre + "mlp.down_proj.weight", Shape: []int{d, inter}, Decay: true},
		)
	}
	ps = append(ps, Param{Name: "model.norm.weight", Shape: []int{d}})
	if !cfg.TieWordEmbeddings {
		ps = append(ps, Param{Name: "lm_head.weight", Shape: []int{cfg.VocabSize, d}, Decay: true})
	}
	return ps
}

// InitParams draws the initial weights as transformers does for Llama:
// matrices from N(0, std), norms at 1. The same seed gives the same weights.
func InitParams(ps []Param, std float64, seed uint64) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 0x6e616d6d))
	out := make([][]float32, len(ps))
	for i, p := range ps {
		v := make([]float32, p.Size())
		if len(p.Shape) == 1 {
			for j := range v {
				v[j] = 1
			}
		} else {
			for j := range v {
				v[j] = float32(r.NormFloat64() * std)
			}
		}
		out[i] = v
	}
	return out
}

// RopeTables returns cos and sin [T, H] for positions 0..T-1, both halves
// equal, with the angle computed in float32 as transformers (and the engine) do.
func RopeTables(cfg *model.Config, t int) (cos, sin []float32) {
	inv := cfg.InvFrequencies()
	half, hd := len(inv), 2*len(inv)
	cos = make([]float32, t*hd)
	sin = make([]float32, t*hd)
	for p := range t {
		for i, f := range inv {
			a := float64(float32(f) * float32(p))
			c, s := float32(math.Cos(a)), float32(math.Sin(a))
			cos[p*hd+i], cos[p*hd+half+i] = c, c
			sin[p*hd+i], sin[p*hd+half+i] = s, s
		}
	}
	return cos, sin
}

// rotateHalfMatrix is R [H, H] with x.R = rotate_half(x) = (-x2, x1). RoPE is
// written as x*cos + (x.R)*sin because the pure-Go backend has no Pad op, and
// the gradient of the Slice that rotate_half would otherwise use needs it.
func rotateHalfMatrix(g *Graph, hd int) *Node {
	half := hd / 2
	r := make([]float32, hd*hd)
	for j := range half {
		r[(j+half)*hd+j] = -1 // out[j] = -x[j+half]
		r[j*hd+j+half] = 1    // out[j+half] = x[j]
	}
	return Reshape(Const(g, r), hd, hd)
}

// Forward is Hidden followed by the LM head: logits [B, T, V] in float32.
func Forward(cfg *model.Config, params []*Node, ids, cos, sin *Node) *Node {
	return Einsum("btd,vd->btv", Hidden(cfg, params, ids, cos, sin), params[headIndex(cfg, len(params))])
}

// headIndex is the LM head's index in ModelParams: the embedding when tied.
func headIndex(cfg *model.Config, n int) int {
	if cfg.TieWordEmbeddings {
		return 0
	}
	return n - 1
}

// Hidden is the full-sequence causal forward pass used for training, with
// the weights named and shaped as in Hugging Face. ids is [B, T] int32,
// cos and sin [T, H]; params follow ModelParams' order. It returns the
// final-normed hidden states [B, T, D].
func Hidden(cfg *model.Config, params []*Node, ids, cos, sin *Node) *Node {
	g := ids.Graph()
	b, t := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	hd, nh, kh := cfg.HeadDim, cfg.NumHeads, cfg.NumKVHeads
	grp := cfg.GroupSize()
	embed := params[0]
	x := Reshape(Gather(embed, Reshape(ids, b*t, 1)), b, t, cfg.HiddenSize)

	rot := rotateHalfMatrix(g, hd)
	ropeAll := func(z *Node, heads int) *Node { // z [B, T, heads, H]
		c := BroadcastToDims(Reshape(cos, 1, t, 1, hd), b, t, heads, hd)
		s := BroadcastToDims(Reshape(sin, 1, t, 1, hd), b, t, heads, hd)
		return Add(Mul(z, c), Mul(Einsum("btnh,hj->btnj", z, rot), s))
	}
	lin := func(z, w *Node) *Node { return Einsum("bti,oi->bto", z, w) }

	// Causal mask as an additive bias [T, T]: query row, key column.
	maskData := make([]float32, t*t)
	for q := range t {
		for k := q + 1; k < t; k++ {
			maskData[q*t+k] = -1e30
		}
	}
	mask := BroadcastToDims(Reshape(Const(g, maskData), 1, 1, 1, t, t), b, kh, grp, t, t)
	scale := 1 / math.Sqrt(float64(hd))

	p := params[1:]
	for range cfg.NumLayers {
		attnNorm, wq, wk, wv, wo, mlpNorm, wg, wu, wd := p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
		p = p[9:]
		h := rmsNorm(x, attnNorm, cfg.RMSNormEps)
		q := ropeAll(Reshape(lin(h, wq), b, t, nh, hd), nh)
		k := ropeAll(Reshape(lin(h, wk), b, t, kh, hd), kh)
		v := Reshape(lin(h, wv), b, t, kh, hd)
		qg := Reshape(MulScalar(q, scale), b, t, kh, grp, hd)
		sc := Add(Einsum("btkgh,bskh->bkgts", qg, k), mask)
		m := StopGradient(ReduceAndKeep(sc, ReduceMax, -1))
		e := Exp(Sub(sc, m))
		pr := Div(e, ReduceAndKeep(e, ReduceSum, -1))
		attn := Reshape(Einsum("bkgts,bskh->btkgh", pr, v), b, t, nh*hd)
		x = Add(x, lin(attn, wo))
		h = rmsNorm(x, mlpNorm, cfg.RMSNormEps)
		gate := lin(h, wg)
		act := Mul(Mul(gate, Sigmoid(gate)), lin(h, wu))
		x = Add(x, lin(act, wd))
	}
	return rmsNorm(x, p[0], cfg.RMSNormEps)
}

// CrossEntropyGrad returns the mean next-token loss for logits [B, T, V],
// targets [B, T] int32 and weights [B, T] float32 (0 where no target), and
// its gradient with respect to the logits, (softmax - onehot) * w / sum(w),
// written out: GoMLX's reverse-mode rule for DotGeneral multiplies with
// broadcasting and then reduces, materialising [B*T, V, D] for the LM head
// (about 12 s per step on the pure-Go backend for the tiny model). Sums over
// V are matmuls with a vector of ones, not the generic reduction.
func CrossEntropyGrad(logits, targets, weights *Node) (loss, grad *Node) {
	dims := logits.Shape().Dimensions
	b, t, v := dims[0], dims[1], dims[2]
	bc := func(x *Node) *Node { return BroadcastToDims(Reshape(x, b, t, 1), b, t, v) }
	m := ReduceMax(logits, -1) // [B, T]
	e := Exp(Sub(logits, bc(m)))
	ones := OnesLike(Reshape(Slice(logits, AxisRange(0, 1), AxisRange(0, 1), AxisRange()), v))
	sum := Einsum("btv,v->bt", e, ones)
	lse := Add(Log(sum), m)
	onehot := OneHot(targets, v, dtypes.Float32)
	picked := Einsum("btv,btv->bt", logits, onehot)
	wsum := ReduceAllSum(weights)
	loss = Div(ReduceAllSum(Mul(Sub(lse, picked), weights)), wsum)
	wn := Div(weights, BroadcastToDims(wsum, b, t)) // [B, T]
	grad = Mul(Sub(Mul(e, bc(Reciprocal(sum))), onehot), bc(wn))
	return loss, grad
}

// ForwardLogits runs Forward on one sequence of ids with the given weights
// (ModelParams order) and returns its logits [T, V], row-major.
func ForwardLogits(b backends.Backend, cfg *model.Config, values [][]float32, ids []int) ([]float32, error) {
	ps := ModelParams(cfg)
	if len(values) != len(ps) {
		return nil, fmt.Errorf("forward: %d weight tensors, the config needs %d", len(values), len(ps))
	}
	t := len(ids)
	cos, sin := RopeTables(cfg, t)
	ids32 := make([]int32, t)
	for i, id := range ids {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("forward: token id %d out of range [0, %d)", id, cfg.VocabSize)
		}
		ids32[i] = int32(id)
	}
	args := []any{
		tensors.FromFlatDataAndDimensions(ids32, 1, t),
		tensors.FromFlatDataAndDimensions(cos, t, cfg.HeadDim),
		tensors.FromFlatDataAndDimensions(sin, t, cfg.HeadDim),
	}
	for i, p := range ps {
		args = append(args, tensors.FromFlatDataAndDimensions(values[i], p.Shape...))
	}
	exec, err := NewExecAny(b, func(in []*Node) []*Node {
		return []*Node{Forward(cfg, in[3:], in[0], in[1], in[2])}
	})
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	out, err := exec.Exec(args...)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	return tensors.MustCopyFlatData[float32](out[0]), nil
}

// rmsNorm is model.RMSNorm in float32 with 1/sqrt written as a division:
// GoMLX v0.26.0 defines no gradient for Rsqrt.
func rmsNorm(x, w *Node, eps float64) *Node {
	ms := ReduceAndKeep(Square(x), ReduceMean, -1)
	y := Div(x, Sqrt(AddScalar(ms, eps)))
	dims := y.Shape().Dimensions
	lead := make([]int, len(dims))
	for i := range lead {
		lead[i] = 1
	}
	lead[len(dims)-1] = dims[len(dims)-1]
	return Mul(y, BroadcastToDims(Reshape(w, lead...), dims...))
}
