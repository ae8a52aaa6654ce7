package model

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Shapes are named model shapes for benchmarks with random weights.
var Shapes = map[string]Config{
	// The llama2.c "stories15M"-like shape of the CPU benchmark.
	"llama15m": {ModelType: "llama", HiddenSize: 256, IntermediateSize: 688, NumLayers: 6, NumHeads: 8, NumKVHeads: 2,
		HeadDim: 32, VocabSize: 32000, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 32768, HiddenAct: "silu"},
	// Llama-3-8B, the GPU benchmark.
	"llama3-8b": {ModelType: "llama", HiddenSize: 4096, IntermediateSize: 14336, NumLayers: 32, NumHeads: 32, NumKVHeads: 8,
		HeadDim: 128, VocabSize: 128256, RMSNormEps: 1e-5, RopeTheta: 500000, MaxPositionEmbeddings: 32768, HiddenAct: "silu"},
}

// ShapeNames lists the named shapes.
func ShapeNames() []string { return []string{"llama15m", "llama3-8b"} }

// RandomWeights makes weights for cfg with values uniform in +-scale/sqrt(fan-in)
// (norm weights 1), deterministic by seed. It is for benchmarks: the numbers
// are meaningless but have realistic magnitudes.
func RandomWeights(cfg *Config, dtype dtypes.DType, seed uint64) *Weights {
	d, hd := cfg.HiddenSize, cfg.HeadDim
	nq, nkv := cfg.NumHeads*hd, cfg.NumKVHeads*hd
	next := seed
	mk := func(fanIn int, shape ...int) []float32 {
		next++
		return randomFloats(prod(shape), 1/math.Sqrt(float64(fanIn)), next)
	}
	ones := func(n int) *tensors.Tensor {
		x := make([]float32, n)
		for i := range x {
			x[i] = 1
		}
		return toTensor(x, []int{n}, dtype)
	}
	w := &Weights{DType: dtype, Embed: randomFloats(cfg.VocabSize*d, 1, seed)}
	for range cfg.NumLayers {
		l := LayerTensors{AttnNorm: ones(d), MLPNorm: ones(d)}
		q, k, v, o := mk(d, nq, d), mk(d, nkv, d), mk(d, nkv, d), mk(nq, d, nq)
		gate, up, down := mk(d, cfg.IntermediateSize, d), mk(d, cfg.IntermediateSize, d), mk(cfg.IntermediateSize, d, cfg.IntermediateSize)
		l.Wqkv, l.Wo, l.Wgu, l.Wdown = layerTensors(cfg, q, k, v, o, gate, up, down, dtype)
		if cfg.AttentionBias {
			l.Bq, l.Bk, l.Bv = toTensor(mk(1, nq), []int{nq}, dtype), toTensor(mk(1, nkv), []int{nkv}, dtype), toTensor(mk(1, nkv), []int{nkv}, dtype)
		}
		w.Layers = append(w.Layers, l)
	}
	w.Norm = ones(d)
	next++
	w.Head = groupHead(randomFloats(cfg.VocabSize*d, 1/math.Sqrt(float64(d)), next), cfg.VocabSize, d, dtype)
	return w
}

func prod(xs []int) int {
	n := 1
	for _, x := range xs {
		n *= x
	}
	return n
}

// randomFloats fills n values uniform in [-scale, scale) with a splitmix64
// stream per block, in parallel (an 8B model has 8e9 of them).
func randomFloats(n int, scale float64, seed uint64) []float32 {
	out := make([]float32, n)
	const block = 1 << 20
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for start := 0; start < n; start += block {
		wg.Add(1)
		sem <- struct{}{}
		go func(start int) {
			defer func() { <-sem; wg.Done() }()
			x := seed*0x9E3779B97F4A7C15 + uint64(start)
			for i := start; i < min(start+block, n); i++ {
				x += 0x9E3779B97F4A7C15
				z := x
				z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
				z = (z ^ (z >> 27)) * 0x94D049BB133111EB
				z ^= z >> 31
				out[i] = float32((float64(z>>11)/(1<<53)*2 - 1) * scale)
			}
		}(start)
	}
	wg.Wait()
	return out
}

// ShapeConfig returns a copy of a named shape.
func ShapeConfig(name string) (*Config, error) {
	c, ok := Shapes[name]
	if !ok {
		return nil, fmt.Errorf("unknown model shape %q (valid: %v)", name, ShapeNames())
	}
	return &c, nil
}
