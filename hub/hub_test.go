package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCacheDirs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	got := CacheDirs(env(map[string]string{"HF_HUB_CACHE": "/a", "HF_HOME": "/h", "XDG_CACHE_HOME": "/x"}), "/home/u")
	want := []string{"/a", "/h/hub", "/home/u/.cache/huggingface/hub"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
	got = CacheDirs(env(map[string]string{"XDG_CACHE_HOME": "/x"}), "/home/u")
	want = []string{"/x/huggingface/hub", "/home/u/.cache/huggingface/hub"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

// mkSnapshot lays out a model as huggingface_hub does.
func mkSnapshot(t *testing.T, cache, repo, commit string, refs ...string) string {
	t.Helper()
	dir := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	snap := filepath.Join(dir, "snapshots", commit)
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snap, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		p := filepath.Join(dir, "refs", r)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(commit+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

func TestResolve(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mainSnap := mkSnapshot(t, b, "org/model", "abc123", "main")
	v1 := mkSnapshot(t, b, "org/model", "def456", "v1")
	single := mkSnapshot(t, a, "org/other", "0001")
	cases := map[string]string{
		"org/model":        mainSnap,
		"org/model@v1":     v1,
		"org/model@def456": v1,
		"org/other":        single,
	}
	for id, want := range cases {
		got, err := Resolve(id, []string{a, b})
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	_, err := Resolve("org/missing", []string{a, b})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), filepath.Join(a, "models--org--missing")) ||
		!strings.Contains(err.Error(), filepath.Join(b, "models--org--missing")) {
		t.Errorf("missing model: %v", err)
	}
	if _, err := Resolve("org/model@v9", []string{b}); err == nil || !strings.Contains(err.Error(), "v9") {
		t.Errorf("missing revision: %v", err)
	}
	for _, bad := range []string{"../x", "org/../x", "/abs/path", "a/b/c", "org/model@../../x"} {
		if IsID(bad) {
			t.Errorf("IsID(%q) = true", bad)
		}
	}
}
