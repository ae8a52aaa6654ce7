package main

import (
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:80": true, "[::1]:8080": true, "127.0.0.5:1": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "10.0.0.1:8080": false, "example.com:80": false, "bad": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Listening beyond loopback without a key is refused before any model loads.
func TestServeNeedsKeyBeyondLoopback(t *testing.T) {
	t.Setenv("NAMM_API_KEY", "")
	cmd := rootCmd()
	cmd.SetArgs([]string{"serve", "--addr", "0.0.0.0:0", "--model", "../../testdata/models/tiny-llama"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("got %v, want a refusal naming --api-key", err)
	}
}

func TestModelID(t *testing.T) {
	for flag, want := range map[string]string{"": "namm-model-a", "Qwen/Qwen2-0.5B-Instruct": "Qwen/Qwen2-0.5B-Instruct",
		"../../testdata/models/tiny-llama": "tiny-llama", "/models/llama/": "llama"} {
		if got := modelID(flag); got != want {
			t.Errorf("modelID(%q) = %q, want %q", flag, got, want)
		}
	}
}

// bench-serve's --shape serves random weights through a tokenizer that must
// fit the shape's vocabulary; --shape, --model and --tokenizer are checked
// against each other before anything loads.
func TestLoadServedShape(t *testing.T) {
	e, tok, id, err := loadServed(&modelFlags{backend: "go", chunk: 128}, "llama15m", "../../testdata/tokenizers/mistral-7b")
	if err != nil {
		t.Fatal(err)
	}
	if id != "shape:llama15m" || e.Config.VocabSize != 32000 || tok.VocabSize() != 32000 {
		t.Errorf("got id %q, vocabularies %d (model) and %d (tokenizer)", id, e.Config.VocabSize, tok.VocabSize())
	}
	for _, c := range []struct {
		mf          modelFlags
		shape, tok  string
		errContains string
	}{
		{modelFlags{backend: "go", chunk: 128, model: "../../testdata/models/tiny-llama"}, "llama15m", "", "exclude"},
		{modelFlags{backend: "go", chunk: 128, model: "../../testdata/models/tiny-llama"}, "", "../../testdata/tokenizers/mistral-7b", "--tokenizer goes with --shape"},
		{modelFlags{backend: "go", chunk: 128}, "llama15m", "../../testdata/tokenizers/gpt2", "more than the 32000"},
		{modelFlags{backend: "go", chunk: 128}, "llama15m", "/nonexistent", "--tokenizer"},
		{modelFlags{backend: "go", chunk: 128}, "llama70b", "../../testdata/tokenizers/mistral-7b", "llama70b"},
	} {
		_, _, _, err := loadServed(&c.mf, c.shape, c.tok)
		if err == nil || !strings.Contains(err.Error(), c.errContains) {
			t.Errorf("shape %q tokenizer %q: got %v, want an error containing %q", c.shape, c.tok, err, c.errContains)
		}
	}
}
