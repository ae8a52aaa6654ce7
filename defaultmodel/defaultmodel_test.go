package defaultmodel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/tokenizer"
)

// TestEmbeddedModelExtractsAndLoads extracts the embedded model once, loads
// it, and finds the same directory the second time. (Its logits are checked
// against transformers in engine.TestLogitsMatchTransformers.)
func TestEmbeddedModelExtractsAndLoads(t *testing.T) {
	t.Setenv("NAMM_CACHE_DIR", t.TempDir())
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tokenizer.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Load(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Config.NumLayers != 8 || e.Config.VocabSize != 32000 {
		t.Fatalf("unexpected embedded model shape: %+v", e.Config)
	}
	again, err := extract()
	if err != nil || again != dir {
		t.Fatalf("second extraction: %q, %v (want the same directory %q)", again, err, dir)
	}
}
