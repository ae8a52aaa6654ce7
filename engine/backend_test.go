package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenBackendRefusesParallelScheduler: GoMLX v0.26's parallel
// scheduler deadlocks on graphs with several large matmuls ready at once
// (it hung namm's state-update test on a 2-core machine), so the engine
// refuses it with a message that says what to use instead.
func TestOpenBackendRefusesParallelScheduler(t *testing.T) {
	if _, err := OpenBackend("go:ops_parallel"); err == nil || !strings.Contains(err.Error(), "use go") {
		t.Fatalf("go:ops_parallel: err = %v, want a refusal naming the alternative", err)
	}
	for _, spec := range []string{"", "go", "go:ops_sequential"} {
		if _, err := OpenBackend(spec); err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
	}
}

// TestOpenBackendXLAErrors: a missing or broken plugin is named once, with
// no doubled separators from GoMLX's own prefix.
func TestOpenBackendXLAErrors(t *testing.T) {
	if !xlaBuilt {
		t.Skip("built with -tags noxla")
	}
	notPlugin := filepath.Join(t.TempDir(), "not_a_plugin.so")
	if err := os.WriteFile(notPlugin, []byte("text"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.so")
	for _, path := range []string{missing, notPlugin} {
		_, err := OpenBackend("xla:" + path)
		if err == nil {
			t.Fatalf("xla:%s opened", path)
		}
		msg := err.Error()
		if strings.Contains(msg, "::") || strings.Count(msg, path) < 1 || strings.Count(msg, `backend "xla`) > 1 {
			t.Errorf("xla:%s: %q: want the plugin named, the backend once, no '::'", path, msg)
		}
	}
}
