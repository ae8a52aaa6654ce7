package model

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A minimal Llama config.json; tests edit its fields.
const minimalLlama = `{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
 "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}`

// TestParseConfigDefaults: what a config leaves out takes transformers'
// defaults for the family, checked by hand.
func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(minimalLlama), "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.NumKVHeads != 4 || c.HeadDim != 16 || c.GroupSize() != 1 {
		t.Fatalf("heads: kv %d head_dim %d group %d, want 4 16 1", c.NumKVHeads, c.HeadDim, c.GroupSize())
	}
	if c.RopeTheta != 10000 || c.RMSNormEps != 1e-6 || c.MaxPositionEmbeddings != 2048 || c.HiddenAct != "silu" {
		t.Fatalf("defaults: theta %g eps %g max_pos %d act %q", c.RopeTheta, c.RMSNormEps, c.MaxPositionEmbeddings, c.HiddenAct)
	}
	if c.AttentionBias || c.SlidingWindow != 0 || c.TieWordEmbeddings {
		t.Fatalf("llama: bias %v window %d tied %v, want none", c.AttentionBias, c.SlidingWindow, c.TieWordEmbeddings)
	}
	// Qwen2 has q/k/v biases and ignores sliding_window unless use_sliding_window.
	q, err := ParseConfig([]byte(strings.Replace(minimalLlama, `"llama"`, `"qwen2"`, 1)[:len(minimalLlama)-1]+`, "sliding_window": 32}`), "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if !q.AttentionBias || q.SlidingWindow != 0 {
		t.Fatalf("qwen2: bias %v window %d, want true 0", q.AttentionBias, q.SlidingWindow)
	}
	// Mistral uses its window.
	m, err := ParseConfig([]byte(strings.Replace(minimalLlama, `"llama"`, `"mistral"`, 1)[:len(minimalLlama)-1]+`, "sliding_window": 32}`), "config.json")
	if err != nil {
		t.Fatal(err)
	}
	if m.SlidingWindow != 32 {
		t.Fatalf("mistral: window %d, want 32", m.SlidingWindow)
	}
	// head_dim 16, theta 10000: inv[i] = 10000^(-2i/16); linear scaling divides by the factor.
	inv := c.InvFrequencies()
	if len(inv) != 8 || inv[0] != 1 || math.Abs(inv[1]-math.Pow(10000, -2.0/16)) > 1e-15 {
		t.Fatalf("inverse frequencies %v", inv)
	}
}

// TestParseConfigRejects: each bad config is refused with an error that
// names the file and the field.
func TestParseConfigRejects(t *testing.T) {
	with := func(extra string) string { return minimalLlama[:len(minimalLlama)-1] + ", " + extra + "}" }
	cases := []struct{ name, json, field string }{
		{"not JSON", `{"model_type": `, "invalid JSON"},
		{"no model_type", `{"hidden_size": 64}`, "model_type"},
		{"other family", strings.Replace(minimalLlama, `"llama"`, `"gpt2"`, 1), "model_type"},
		{"no hidden_size", strings.Replace(minimalLlama, `"hidden_size": 64, `, "", 1), "hidden_size"},
		{"zero layers", strings.Replace(minimalLlama, `"num_hidden_layers": 2`, `"num_hidden_layers": 0`, 1), "num_hidden_layers"},
		{"string vocab", strings.Replace(minimalLlama, `"vocab_size": 100`, `"vocab_size": "100"`, 1), "invalid JSON"},
		{"kv heads", with(`"num_key_value_heads": 3`), "num_key_value_heads"},
		{"odd head_dim", with(`"head_dim": 15`), "head_dim"},
		{"eps", with(`"rms_norm_eps": 0`), "rms_norm_eps"},
		{"theta", with(`"rope_theta": -1`), "rope_theta"},
		{"max positions", with(`"max_position_embeddings": 0`), "max_position_embeddings"},
		{"activation", with(`"hidden_act": "gelu"`), "hidden_act"},
		{"window", with(`"sliding_window": "wide"`), "sliding_window"},
		{"eos", with(`"eos_token_id": "</s>"`), "eos_token_id"},
		{"dynamic rope", with(`"rope_scaling": {"type": "dynamic", "factor": 2}`), "dynamic"},
		{"rope factor", with(`"rope_scaling": {"type": "linear", "factor": 0}`), "factor"},
		{"llama3 factors", with(`"rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1}`), "high_freq_factor"},
		{"ntk base", with(`"rope_scaling": {"type": "ntk", "factor": 0.25, "alpha": 2}`), "alpha"},
		{"ntk head_dim 2", `{"model_type": "llama", "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
			"num_attention_heads": 4, "vocab_size": 10, "rope_scaling": {"type": "ntk", "factor": 2, "alpha": 2}}`, "head_dim"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(c.json), "dir/config.json")
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "dir/config.json") || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q is not ErrConfig naming the file and %q", c.name, err, c.field)
		}
	}
}

// TestLoadConfigGenerationConfig: generation_config.json's token ids win
// over config.json's; a broken one is refused naming it.
func TestLoadConfigGenerationConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.json", minimalLlama[:len(minimalLlama)-1]+`, "bos_token_id": 1, "eos_token_id": 2}`)
	write("generation_config.json", `{"eos_token_id": [2, 7]}`)
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.BOS) != 1 || c.BOS[0] != 1 || len(c.EOS) != 2 || c.EOS[1] != 7 {
		t.Fatalf("BOS %v EOS %v, want [1] [2 7]", c.BOS, c.EOS)
	}
	write("generation_config.json", `{"eos_token_id": [2, `)
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "generation_config.json") {
		t.Fatalf("broken generation_config.json: %v", err)
	}
}

// FuzzParseConfig: any bytes give a config or an ErrConfig, never a panic;
// an accepted config has the shape the engine relies on (positive sizes,
// heads that group, an even head dimension, finite positive RoPE
// frequencies).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimalLlama))
	f.Add([]byte(`{"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
		"num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "rope_theta": 1000000.0,
		"sliding_window": 32768, "use_sliding_window": false, "tie_word_embeddings": true, "eos_token_id": 151643}`))
	f.Add([]byte(`{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "head_dim": 32,
		"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
		"original_max_position_embeddings": 8192}, "eos_token_id": [1, 2]}`))
	f.Add([]byte(`{"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "vocab_size": 100, "rope_parameters": {"rope_type": "ntk", "factor": 4, "alpha": 2, "rope_theta": 500000}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "config.json")
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		if c.HiddenSize <= 0 || c.IntermediateSize <= 0 || c.NumLayers <= 0 || c.VocabSize <= 0 || c.MaxPositionEmbeddings <= 0 {
			t.Fatalf("accepted a non-positive size: %+v", c)
		}
		if c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 || c.HeadDim <= 0 || c.HeadDim%2 != 0 {
			t.Fatalf("accepted heads %d/%d of dimension %d", c.NumHeads, c.NumKVHeads, c.HeadDim)
		}
		if !(c.RMSNormEps > 0) || !(c.RopeTheta > 0) {
			t.Fatalf("accepted eps %g theta %g", c.RMSNormEps, c.RopeTheta)
		}
		if c.HeadDim > 1<<16 {
			return // InvFrequencies would allocate what the config asks; sizes are checked against the weights
		}
		for i, v := range c.InvFrequencies() {
			if !(v > 0) || math.IsInf(v, 0) {
				t.Fatalf("inverse frequency %d is %g (%+v)", i, v, c.RopeScaling)
			}
		}
	})
}
