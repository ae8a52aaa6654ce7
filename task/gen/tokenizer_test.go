package gen

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/namm-dev/namm/tokenizer"
)

// With the real tokenizers of testdata/tokenizers (Mistral's SentencePiece-style BPE, GPT-2's
// and Llama 3's byte-level BPE, Qwen2's), every task reaches its length within 2%; 32k-token
// samples are timed (GEN_LONG=1 runs every task at 32k with every tokenizer).
func TestRealTokenizers(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/tokenizers/*/tokenizer.json")
	if len(dirs) == 0 {
		t.Skip("no tokenizers in testdata/tokenizers")
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		tok, err := tokenizer.LoadDir(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		name := filepath.Base(dir)
		lengths := []int{4096}
		if name == "mistral-7b" || os.Getenv("GEN_LONG") != "" {
			lengths = append(lengths, 32768)
		}
		for _, target := range lengths {
			specs := allTaskSpecs
			if target > 4096 && os.Getenv("GEN_LONG") == "" {
				specs = []string{"niah_single", "qa", "cwe", "passage_count"}
			}
			for _, s := range specs {
				spec, err := ParseSpec(s)
				if err != nil {
					t.Fatal(err)
				}
				spec.Length, spec.N = target, 2
				begin := time.Now()
				xs, err := Generate(spec, tok)
				if err != nil {
					t.Errorf("%s %s: %v", name, spec, err)
					continue
				}
				perSample := time.Since(begin) / time.Duration(spec.N)
				for _, x := range xs {
					n := len(tok.Encode(x.Prompt, true))
					if n != x.Length || n > target || float64(n) < 0.98*float64(target) {
						t.Errorf("%s %s: %d tokens (Length %d), want within 2%% below %d", name, x.ID, n, x.Length, target)
					}
				}
				if target == 32768 {
					t.Logf("%s %s: %v per sample", name, spec, perSample)
					// Two or three whole-prompt tokenizations: this bounds the tokenizer's speed too.
					if perSample > 3*time.Second {
						t.Errorf("%s %s: %v per sample", name, spec, perSample)
					}
				}
			}
		}
	}
}
