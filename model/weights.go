package model

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/x448/float16"

	"github.com/namm-dev/namm/safetensors"
)

// LayerTensors hold one layer's weights in the layout the layer graph
// takes (see LayerWeights): the Hugging Face [out, in] matrices fused and
// split into row groups once, at load.
type LayerTensors struct {
	AttnNorm, Wqkv, Bq, Bk, Bv, Wo, MLPNorm, Wgu, Wdown *tensors.Tensor
}

// List returns the layer's tensors in the order the layer graph takes them;
// absent biases are skipped.
func (l *LayerTensors) List() []*tensors.Tensor {
	out := []*tensors.Tensor{l.AttnNorm, l.Wqkv}
	if l.Bq != nil {
		out = append(out, l.Bq, l.Bk, l.Bv)
	}
	return append(out, l.Wo, l.MLPNorm, l.Wgu, l.Wdown)
}

// RowGroups is the number of row groups a projection with out outputs is
// stored in: 2 when out is even, else 1. A single-token matmul on the
// pure-Go backend runs one batch entry per core, so two groups use both
// cores of a small machine; a [G, out/G, in] tensor holds the same bytes as
// [out, in], so a many-token pass contracts it as one matrix.
func RowGroups(out int) int {
	if out%2 == 0 {
		return 2
	}
	return 1
}

// layerTensors fuses and groups one layer's [out, in] matrices (float32).
func layerTensors(cfg *Config, q, k, v, o, gate, up, down []float32, dtype dtypes.DType) (wqkv, wo, wgu, wdown *tensors.Tensor) {
	d, i := cfg.HiddenSize, cfg.IntermediateSize
	nq := cfg.NumHeads * cfg.HeadDim
	qkv := slices.Concat(q, k, v)
	rows := len(qkv) / d
	g := RowGroups(rows)
	wqkv = toTensor(qkv, []int{g, rows / g, d}, dtype)
	g = RowGroups(d)
	wo = toTensor(o, []int{g, d / g, nq}, dtype)
	wgu = toTensor(slices.Concat(gate, up), []int{2, i, d}, dtype)
	wdown = toTensor(down, []int{g, d / g, i}, dtype)
	return
}

// Weights are a model's parameters in the compute dtype, plus the embedding
// table kept on the host in float32 (the lookup happens there).
type Weights struct {
	DType  dtypes.DType
	Embed  []float32 // [V*D] row-major, host
	Layers []LayerTensors
	Norm   *tensors.Tensor // [D]
	// Head is the LM head (the embedding when tied) split by rows into
	// groups: [HeadGroups(V), R, D] with R = ceil(V/groups), zero rows
	// padding the last group. See HeadGroups for why.
	Head *tensors.Tensor
}

// HeadGroups is the number of row groups the LM head of a vocabulary of
// size v is split into. On the pure-Go backend a matmul with more than
// 16,384 outputs per batch entry takes a path that re-blocks the whole
// weight on every call (~100 ms for a 32k x 256 head at one token); as a
// batch of groups of at most 16,384 rows each it takes the direct path, and
// the groups run on different cores. An even count keeps both cores of a
// small machine busy. On XLA it is an ordinary batched matmul.
func HeadGroups(v int) int {
	const maxRows = 16384
	n := max(2, (v+maxRows-1)/maxRows)
	return n + n%2
}

// groupHead lays out the [v, d] head as [n, ceil(v/n), d], zero-padded.
func groupHead(data []float32, v, d int, dtype dtypes.DType) *tensors.Tensor {
	n := HeadGroups(v)
	rows := (v + n - 1) / n
	if rows*n != v {
		padded := make([]float32, n*rows*d)
		copy(padded, data[:v*d])
		data = padded
	}
	return toTensor(data, []int{n, rows, d}, dtype)
}

// LoadWeights reads dir's safetensors into tensors of dtype (Float32 or
// BFloat16), checking every tensor's presence and shape against cfg.
func LoadWeights(dir string, cfg *Config, dtype dtypes.DType) (*Weights, error) {
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	d, hd := cfg.HiddenSize, cfg.HeadDim
	nq, nkv := cfg.NumHeads*hd, cfg.NumKVHeads*hd
	load := func(name string, shape ...int) ([]float32, error) {
		data, got, err := set.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("%s: weight %q: %w", dir, name, err)
		}
		if !slices.Equal(got, shape) {
			return nil, fmt.Errorf("%s: weight %q has shape %v, config.json implies %v", dir, name, got, shape)
		}
		return data, nil
	}
	w := &Weights{DType: dtype}
	embed, err := load("model.embed_tokens.weight", cfg.VocabSize, d)
	if err != nil {
		return nil, err
	}
	w.Embed = embed
	for i := range cfg.NumLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		var attnNorm, q, k, v, o, mlpNorm, gate, up, down, bq, bk, bv []float32
		specs := []struct {
			dst   *[]float32
			name  string
			shape []int
		}{
			{&attnNorm, "input_layernorm.weight", []int{d}},
			{&q, "self_attn.q_proj.weight", []int{nq, d}},
			{&k, "self_attn.k_proj.weight", []int{nkv, d}},
			{&v, "self_attn.v_proj.weight", []int{nkv, d}},
			{&o, "self_attn.o_proj.weight", []int{d, nq}},
			{&mlpNorm, "post_attention_layernorm.weight", []int{d}},
			{&gate, "mlp.gate_proj.weight", []int{cfg.IntermediateSize, d}},
			{&up, "mlp.up_proj.weight", []int{cfg.IntermediateSize, d}},
			{&down, "mlp.down_proj.weight", []int{d, cfg.IntermediateSize}},
		}
		if cfg.AttentionBias {
			specs = append(specs, []struct {
				dst   *[]float32
				name  string
				shape []int
			}{
				{&bq, "self_attn.q_proj.bias", []int{nq}},
				{&bk, "self_attn.k_proj.bias", []int{nkv}},
				{&bv, "self_attn.v_proj.bias", []int{nkv}},
			}...)
		}
		for _, s := range specs {
			data, err := load(p+s.name, s.shape...)
			if err != nil {
				return nil, err
			}
			*s.dst = data
		}
		l := LayerTensors{AttnNorm: toTensor(attnNorm, []int{d}, dtype), MLPNorm: toTensor(mlpNorm, []int{d}, dtype)}
		l.Wqkv, l.Wo, l.Wgu, l.Wdown = layerTensors(cfg, q, k, v, o, gate, up, down, dtype)
		if cfg.AttentionBias {
			l.Bq, l.Bk, l.Bv = toTensor(bq, []int{nq}, dtype), toTensor(bk, []int{nkv}, dtype), toTensor(bv, []int{nkv}, dtype)
		}
		w.Layers = append(w.Layers, l)
	}
	norm, err := load("model.norm.weight", d)
	if err != nil {
		return nil, err
	}
	w.Norm = toTensor(norm, []int{d}, dtype)
	if _, ok := set.Info("lm_head.weight"); ok && !cfg.TieWordEmbeddings {
		head, err := load("lm_head.weight", cfg.VocabSize, d)
		if err != nil {
			return nil, err
		}
		w.Head = groupHead(head, cfg.VocabSize, d, dtype)
	} else if !cfg.TieWordEmbeddings {
		return nil, fmt.Errorf("%s: weight \"lm_head.weight\" is missing and tie_word_embeddings is false", dir)
	} else {
		w.Head = groupHead(embed, cfg.VocabSize, d, dtype)
	}
	return w, nil
}

// toTensor converts float32 data to a tensor of dtype.
func toTensor(data []float32, shape []int, dtype dtypes.DType) *tensors.Tensor {
	switch dtype {
	case dtypes.Float32:
		return tensors.FromFlatDataAndDimensions(slices.Clone(data), shape...)
	case dtypes.BFloat16:
		return tensors.FromFlatDataAndDimensions(ToBF16(data), shape...)
	case dtypes.Float16:
		out := make([]float16.Float16, len(data))
		for i, v := range data {
			out[i] = float16.Fromfloat32(v)
		}
		return tensors.FromFlatDataAndDimensions(out, shape...)
	}
	panic(fmt.Sprintf("model: unsupported compute dtype %s", dtype))
}

// ToBF16 rounds float32 values to bfloat16 (round to nearest even).
func ToBF16(data []float32) []bfloat16.BFloat16 {
	out := make([]bfloat16.BFloat16, len(data))
	for i, v := range data {
		out[i] = bfloat16.FromFloat32(v)
	}
	return out
}
