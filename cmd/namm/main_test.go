package main

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/namm-dev/namm/internal/provenance"
)

func TestErrorLineNamesNammOnce(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("namm: safetensors: open x.namm: %w", errors.New("no such file")), "namm: safetensors: open x.namm: no such file"},
		{errors.New("give --tasks"), "namm: give --tasks"},
	} {
		if got := errorLine(c.err); got != c.want {
			t.Errorf("errorLine(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestVersionLine(t *testing.T) {
	got := versionLine(provenance.Build{Version: "(devel)", Commit: "abc123", Modified: true, Go: "go1.26.8"})
	if got != "(devel) commit abc123 (modified) go1.26.8" {
		t.Errorf("versionLine = %q", got)
	}
	if got := versionLine(provenance.Build{Version: "v1.2.0", Go: "go1.26.8"}); got != "v1.2.0 go1.26.8" {
		t.Errorf("versionLine without a commit = %q", got)
	}
}

// TestMain gives the package's tests one cache directory for the embedded
// model and the weight hashes (the model is extracted once per process, so
// a directory of one test's own would vanish under the next).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "namm-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("NAMM_CACHE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
