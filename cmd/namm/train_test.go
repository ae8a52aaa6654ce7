package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/tokenizer"
)

// train-data --config refuses a tokenizer that does not fit the model, naming both files.
func TestCheckTokenizerFits(t *testing.T) {
	gpt2Dir := filepath.Join("..", "..", "testdata", "tokenizers", "gpt2")
	mistralDir := filepath.Join("..", "..", "testdata", "tokenizers", "mistral-7b")
	gpt2, err := tokenizer.LoadDir(gpt2Dir)
	if err != nil {
		t.Fatal(err)
	}
	mistral, err := tokenizer.LoadDir(mistralDir)
	if err != nil {
		t.Fatal(err)
	}
	c := filepath.Join("..", "..", "configs", "model-c.json")
	if err := checkTokenizerFits(c, mistralDir, mistral, 16384); err != nil {
		t.Fatalf("model C with its own tokenizer: %v", err)
	}
	for name, err := range map[string]error{
		"vocab":   checkTokenizerFits(c, gpt2Dir, gpt2, 1024),
		"seq-len": checkTokenizerFits(c, mistralDir, mistral, 65536),
		"bos":     checkTokenizerFits(filepath.Join("..", "..", "configs", "model-b.json"), mistralDir, mistral, 1024),
		"missing": checkTokenizerFits("no-such-config.json", mistralDir, mistral, 1024),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		want := map[string]string{"vocab": gpt2Dir, "seq-len": "max_position_embeddings", "bos": "bos_token_id", "missing": "no-such-config.json"}[name]
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v does not name %s", name, err, want)
		}
	}
}
