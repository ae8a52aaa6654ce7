package modelid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyModel copies the files of a model directory into a new one.
func copyModel(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestIdentityFollowsContent: the same files in two places have one hash;
// weights replaced at the same path (same size) get another, even with the
// first hash cached.
func TestIdentityFollowsContent(t *testing.T) {
	t.Setenv("NAMM_CACHE_DIR", t.TempDir())
	a := copyModel(t, "../../testdata/models/tiny-llama")
	b := copyModel(t, "../../testdata/models/tiny-llama")
	idA, err := Of(a)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := Of(b)
	if err != nil {
		t.Fatal(err)
	}
	if idA.Hash != idB.Hash || idA.Name == idB.Name || idA.Name != a {
		t.Fatalf("copies: %v and %v, want one hash and each its own path", idA, idB)
	}
	if !strings.HasPrefix(idA.Hash, "sha256:") || len(idA.Hash) != len("sha256:")+16 {
		t.Errorf("hash %q, want sha256: and 16 hex digits", idA.Hash)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("NAMM_CACHE_DIR"), "weight-hashes.json")); err != nil {
		t.Errorf("no hash cache written: %v", err)
	}

	// Flip one byte of the weights' data, keeping the size.
	w := filepath.Join(b, "model.safetensors")
	data, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(w, data, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(w, later, later); err != nil {
		t.Fatal(err)
	}
	changed, err := Of(b)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Hash == idB.Hash {
		t.Fatalf("replaced weights kept the hash %s", changed.Hash)
	}
	// A changed config changes it too.
	if err := os.WriteFile(filepath.Join(a, "config.json"), []byte(`{"changed": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Of(a); err != nil || c.Hash == idA.Hash {
		t.Fatalf("changed config: %v, %v", c, err)
	}

	emb, err := Embedded("model-x", a)
	if err != nil || emb.Name != "embedded:model-x" || !strings.HasPrefix(emb.String(), "embedded:model-x@sha256:") {
		t.Errorf("Embedded: %v, %v", emb, err)
	}
	if _, err := Of(t.TempDir()); err == nil {
		t.Error("an empty directory has an identity")
	}
}
