// Package model reads a Hugging Face decoder model directory (config.json,
// generation_config.json, tokenizer_config.json, safetensors weights) and
// defines its forward pass as GoMLX graph functions. One definition serves the
// Llama, Mistral and Qwen2 families: they differ only in QKV bias, sliding
// window and RoPE scaling.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// ErrConfig is wrapped by every config error.
var ErrConfig = errors.New("model config")

// RopeScaling describes config.json's rope_scaling.
type RopeScaling struct {
	Type   string  // "", "linear", "llama3", "ntk" (static NTK, namm-reference §4), "dynamic" (refused)
	Factor float64 // s
	// llama3 only.
	LowFreqFactor, HighFreqFactor float64
	OriginalMaxPositionEmbeddings int
	// ntk only: alpha in theta' = theta * (alpha*s - (alpha-1))^(d/(d-2)).
	Alpha float64
}

// Config is the subset of a Hugging Face config.json the engine needs.
type Config struct {
	ModelType             string // llama, mistral, qwen2
	HiddenSize            int    // D
	IntermediateSize      int
	NumLayers             int // L
	NumHeads              int // N
	NumKVHeads            int // K
	HeadDim               int // H
	VocabSize             int
	RMSNormEps            float64
	RopeTheta             float64
	RopeScaling           RopeScaling
	MaxPositionEmbeddings int
	TieWordEmbeddings     bool
	AttentionBias         bool // q, k, v projections have a bias (qwen2; llama's attention_bias)
	SlidingWindow         int  // 0 = none
	HiddenAct             string
	TorchDType            string
	BOS, EOS              []int // from config.json, generation_config.json, tokenizer_config.json
}

// GroupSize is the number of query heads per KV head (G).
func (c *Config) GroupSize() int { return c.NumHeads / c.NumKVHeads }

// NumParameters counts the weights of the model.
func (c *Config) NumParameters() int {
	d, h := c.HiddenSize, c.HeadDim
	attn := d*c.NumHeads*h*2 + d*c.NumKVHeads*h*2
	if c.AttentionBias {
		attn += c.NumHeads*h + 2*c.NumKVHeads*h
	}
	layer := attn + 3*d*c.IntermediateSize + 2*d
	n := c.NumLayers*layer + c.VocabSize*d + d
	if !c.TieWordEmbeddings {
		n += c.VocabSize * d
	}
	return n
}

// rawConfig mirrors config.json; pointers tell missing from zero.
type rawConfig struct {
	ModelType             *string          `json:"model_type"`
	HiddenSize            *int             `json:"hidden_size"`
	IntermediateSize      *int             `json:"intermediate_size"`
	NumHiddenLayers       *int             `json:"num_hidden_layers"`
	NumAttentionHeads     *int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int             `json:"num_key_value_heads"`
	HeadDim               *int             `json:"head_dim"`
	VocabSize             *int             `json:"vocab_size"`
	RMSNormEps            *float64         `json:"rms_norm_eps"`
	RopeTheta             *float64         `json:"rope_theta"`
	RopeScaling           map[string]any   `json:"rope_scaling"`
	RopeParameters        map[string]any   `json:"rope_parameters"`
	MaxPositionEmbeddings *int             `json:"max_position_embeddings"`
	TieWordEmbeddings     *bool            `json:"tie_word_embeddings"`
	AttentionBias         *bool            `json:"attention_bias"`
	SlidingWindow         *json.RawMessage `json:"sliding_window"`
	UseSlidingWindow      *bool            `json:"use_sliding_window"`
	HiddenAct             *string          `json:"hidden_act"`
	TorchDType            *string          `json:"torch_dtype"`
	DType                 *string          `json:"dtype"`
	BOSTokenID            json.RawMessage  `json:"bos_token_id"`
	EOSTokenID            json.RawMessage  `json:"eos_token_id"`
}

// LoadConfig reads dir/config.json and the token ids of
// dir/generation_config.json (optional).
func LoadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c, err := ParseConfig(data, path)
	if err != nil {
		return nil, err
	}
	gpath := filepath.Join(dir, "generation_config.json")
	if g, err := os.ReadFile(gpath); err == nil {
		var raw struct {
			BOS json.RawMessage `json:"bos_token_id"`
			EOS json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(g, &raw); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, gpath, err)
		}
		if ids, err := tokenIDs(raw.BOS, gpath, "bos_token_id"); err != nil {
			return nil, err
		} else if len(ids) > 0 {
			c.BOS = ids
		}
		if ids, err := tokenIDs(raw.EOS, gpath, "eos_token_id"); err != nil {
			return nil, err
		} else if len(ids) > 0 {
			c.EOS = ids
		}
	}
	return c, nil
}

// ParseConfig parses config.json bytes; path names the file in errors.
func ParseConfig(data []byte, path string) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: invalid JSON: %v", ErrConfig, path, err)
	}
	fail := func(format string, a ...any) (*Config, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrConfig, path, fmt.Sprintf(format, a...))
	}
	if r.ModelType == nil {
		return fail("missing field model_type")
	}
	c := &Config{ModelType: *r.ModelType}
	switch c.ModelType {
	case "llama", "mistral", "qwen2":
	default:
		return fail("model_type %q is not supported (supported: llama, mistral, qwen2)", c.ModelType)
	}
	ints := []struct {
		name string
		p    *int
		dst  *int
	}{
		{"hidden_size", r.HiddenSize, &c.HiddenSize},
		{"intermediate_size", r.IntermediateSize, &c.IntermediateSize},
		{"num_hidden_layers", r.NumHiddenLayers, &c.NumLayers},
		{"num_attention_heads", r.NumAttentionHeads, &c.NumHeads},
		{"vocab_size", r.VocabSize, &c.VocabSize},
	}
	for _, f := range ints {
		if f.p == nil {
			return fail("missing field %s", f.name)
		}
		if *f.p <= 0 {
			return fail("field %s must be > 0, got %d", f.name, *f.p)
		}
		*f.dst = *f.p
	}
	c.NumKVHeads = c.NumHeads
	if r.NumKeyValueHeads != nil {
		c.NumKVHeads = *r.NumKeyValueHeads
	}
	if c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 {
		return fail("num_key_value_heads %d must divide num_attention_heads %d", c.NumKVHeads, c.NumHeads)
	}
	c.HeadDim = c.HiddenSize / c.NumHeads
	if r.HeadDim != nil && *r.HeadDim > 0 {
		c.HeadDim = *r.HeadDim
	} else if c.HiddenSize%c.NumHeads != 0 {
		return fail("hidden_size %d is not a multiple of num_attention_heads %d and head_dim is not given", c.HiddenSize, c.NumHeads)
	}
	if c.HeadDim%2 != 0 {
		return fail("head_dim %d must be even for RoPE", c.HeadDim)
	}
	c.RMSNormEps = 1e-6
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	if c.RMSNormEps <= 0 || math.IsNaN(c.RMSNormEps) {
		return fail("rms_norm_eps must be > 0, got %g", c.RMSNormEps)
	}
	c.RopeTheta = 10000
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	scaling := r.RopeScaling
	if scaling == nil && r.RopeParameters != nil {
		// transformers >= 5 writes rope_parameters {rope_type, rope_theta, ...}.
		scaling = r.RopeParameters
		if t, ok := scaling["rope_theta"].(float64); ok {
			c.RopeTheta = t
		}
	}
	if c.RopeTheta <= 0 {
		return fail("rope_theta must be > 0, got %g", c.RopeTheta)
	}
	if err := parseRopeScaling(scaling, &c.RopeScaling); err != nil {
		return fail("%v", err)
	}
	if c.RopeScaling.Type == "ntk" && c.HeadDim <= 2 {
		// theta' = theta * base^(d/(d-2)) needs d > 2.
		return fail("rope_scaling type ntk needs head_dim > 2, got %d", c.HeadDim)
	}
	c.MaxPositionEmbeddings = 2048
	if r.MaxPositionEmbeddings != nil {
		c.MaxPositionEmbeddings = *r.MaxPositionEmbeddings
	}
	if c.MaxPositionEmbeddings <= 0 {
		return fail("max_position_embeddings must be > 0, got %d", c.MaxPositionEmbeddings)
	}
	if r.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *r.TieWordEmbeddings
	}
	c.AttentionBias = c.ModelType == "qwen2"
	if r.AttentionBias != nil {
		c.AttentionBias = *r.AttentionBias
	}
	if r.SlidingWindow != nil && string(*r.SlidingWindow) != "null" {
		var w int
		if err := json.Unmarshal(*r.SlidingWindow, &w); err != nil {
			return fail("sliding_window must be an integer or null: %v", err)
		}
		// Qwen2 configs carry a sliding_window that is only used when
		// use_sliding_window is true.
		use := c.ModelType == "mistral"
		if r.UseSlidingWindow != nil {
			use = *r.UseSlidingWindow
		}
		if use && w > 0 {
			c.SlidingWindow = w
		}
	}
	c.HiddenAct = "silu"
	if r.HiddenAct != nil {
		c.HiddenAct = *r.HiddenAct
	}
	if c.HiddenAct != "silu" {
		return fail("hidden_act %q is not supported (supported: silu)", c.HiddenAct)
	}
	if r.TorchDType != nil {
		c.TorchDType = *r.TorchDType
	} else if r.DType != nil {
		c.TorchDType = *r.DType
	}
	var err error
	if c.BOS, err = tokenIDs(r.BOSTokenID, path, "bos_token_id"); err != nil {
		return nil, err
	}
	if c.EOS, err = tokenIDs(r.EOSTokenID, path, "eos_token_id"); err != nil {
		return nil, err
	}
	return c, nil
}

func parseRopeScaling(m map[string]any, rs *RopeScaling) error {
	if m == nil {
		return nil
	}
	typ, _ := m["rope_type"].(string)
	if typ == "" {
		typ, _ = m["type"].(string)
	}
	num := func(key string, def float64) float64 {
		if v, ok := m[key].(float64); ok {
			return v
		}
		return def
	}
	rs.Factor = num("factor", 1)
	switch typ {
	case "", "default":
		rs.Type = ""
		return nil
	case "linear":
		rs.Type = "linear"
	case "llama3":
		rs.Type = "llama3"
		rs.LowFreqFactor = num("low_freq_factor", 1)
		rs.HighFreqFactor = num("high_freq_factor", 4)
		rs.OriginalMaxPositionEmbeddings = int(num("original_max_position_embeddings", 8192))
		if rs.HighFreqFactor <= rs.LowFreqFactor {
			return fmt.Errorf("rope_scaling: high_freq_factor must exceed low_freq_factor")
		}
	case "ntk":
		rs.Type = "ntk"
		rs.Alpha = num("alpha", 2)
		if b := rs.Alpha*rs.Factor - (rs.Alpha - 1); !(b > 0) {
			return fmt.Errorf("rope_scaling: alpha %g and factor %g make the NTK base alpha*factor - (alpha-1) = %g, not > 0", rs.Alpha, rs.Factor, b)
		}
	case "dynamic":
		return fmt.Errorf("rope_scaling type %q (dynamic NTK) is not supported: its frequencies change with the sequence length, which breaks a cache that keeps original positions; use {\"type\": \"ntk\", \"factor\": s, \"alpha\": a} for the static NTK scaling of the NAMM paper", typ)
	default:
		return fmt.Errorf("rope_scaling type %q is not supported (supported: linear, llama3, ntk)", typ)
	}
	if rs.Factor <= 0 {
		return fmt.Errorf("rope_scaling.factor must be > 0, got %g", rs.Factor)
	}
	return nil
}

func tokenIDs(raw json.RawMessage, path, field string) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("%w: %s: field %s must be an integer or a list of integers", ErrConfig, path, field)
	}
	return many, nil
}

// InvFrequencies returns RoPE's inverse frequencies [H/2] with the config's
// scaling applied, as transformers' rope initialisation functions compute them.
func (c *Config) InvFrequencies() []float64 {
	d := c.HeadDim
	theta := c.RopeTheta
	rs := c.RopeScaling
	if rs.Type == "ntk" {
		// Static NTK (namm-reference §4): theta' = theta * (alpha*s - (alpha-1))^(d/(d-2)).
		theta *= math.Pow(rs.Alpha*rs.Factor-(rs.Alpha-1), float64(d)/float64(d-2))
	}
	inv := make([]float64, d/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(theta, float64(2*i)/float64(d))
	}
	switch rs.Type {
	case "linear":
		for i := range inv {
			inv[i] /= rs.Factor
		}
	case "llama3":
		old := float64(rs.OriginalMaxPositionEmbeddings)
		lowWavelen := old / rs.LowFreqFactor
		highWavelen := old / rs.HighFreqFactor
		for i, f := range inv {
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				inv[i] = f / rs.Factor
			default:
				smooth := (old/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				inv[i] = (1-smooth)*f/rs.Factor + smooth*f
			}
		}
	}
	return inv
}
