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

// LayerTensors hold one layer's weights, [out, in] as in the files.
type LayerTensors struct {
	AttnNorm, Wq, Wk, Wv, Bq, Bk, Bv, Wo, MLPNorm, Wgate, Wup, Wdown *tensors.Tensor
}

// List returns the layer's tensors in the order the layer graph takes them;
// absent biases are skipped.
func (l *LayerTensors) List() []*tensors.Tensor {
	out := []*tensors.Tensor{l.AttnNorm, l.Wq, l.Wk, l.Wv}
	if l.Bq != nil {
		out = append(out, l.Bq, l.Bk, l.Bv)
	}
	return append(out, l.Wo, l.MLPNorm, l.Wgate, l.Wup, l.Wdown)
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
	load := func(name string, shape ...int) (*tensors.Tensor, []float32, error) {
		data, got, err := set.Float32(name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: weight %q: %w", dir, name, err)
		}
		if !slices.Equal(got, shape) {
			return nil, nil, fmt.Errorf("%s: weight %q has shape %v, config.json implies %v", dir, name, got, shape)
		}
		return toTensor(data, shape, dtype), data, nil
	}
	w := &Weights{DType: dtype}
	var embed []float32
	var err2 error
	if _, embed, err2 = load("model.embed_tokens.weight", cfg.VocabSize, d); err2 != nil {
		return nil, err2
	}
	w.Embed = embed
	for i := range cfg.NumLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		var l LayerTensors
		specs := []struct {
			dst   **tensors.Tensor
			name  string
			shape []int
		}{
			{&l.AttnNorm, "input_layernorm.weight", []int{d}},
			{&l.Wq, "self_attn.q_proj.weight", []int{nq, d}},
			{&l.Wk, "self_attn.k_proj.weight", []int{nkv, d}},
			{&l.Wv, "self_attn.v_proj.weight", []int{nkv, d}},
			{&l.Wo, "self_attn.o_proj.weight", []int{d, nq}},
			{&l.MLPNorm, "post_attention_layernorm.weight", []int{d}},
			{&l.Wgate, "mlp.gate_proj.weight", []int{cfg.IntermediateSize, d}},
			{&l.Wup, "mlp.up_proj.weight", []int{cfg.IntermediateSize, d}},
			{&l.Wdown, "mlp.down_proj.weight", []int{d, cfg.IntermediateSize}},
		}
		if cfg.AttentionBias {
			specs = append(specs, []struct {
				dst   **tensors.Tensor
				name  string
				shape []int
			}{
				{&l.Bq, "self_attn.q_proj.bias", []int{nq}},
				{&l.Bk, "self_attn.k_proj.bias", []int{nkv}},
				{&l.Bv, "self_attn.v_proj.bias", []int{nkv}},
			}...)
		}
		for _, s := range specs {
			t, _, err := load(p+s.name, s.shape...)
			if err != nil {
				return nil, err
			}
			*s.dst = t
		}
		w.Layers = append(w.Layers, l)
	}
	var err3 error
	if w.Norm, _, err3 = load("model.norm.weight", d); err3 != nil {
		return nil, err3
	}
	if _, ok := set.Info("lm_head.weight"); ok && !cfg.TieWordEmbeddings {
		var head []float32
		if _, head, err3 = load("lm_head.weight", cfg.VocabSize, d); err3 != nil {
			return nil, err3
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
