package engine

import (
	"errors"
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

// TestSessionRefusesPastPositions: a prompt, or a decoded token, beyond
// max_position_embeddings is refused instead of run at extrapolated
// positions.
func TestSessionRefusesPastPositions(t *testing.T) {
	e, err := Load("../testdata/models/tiny-llama", Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Config.MaxPositionEmbeddings = 40 // this test loaded its own config
	s, err := e.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, 41)
	for i := range ids {
		ids[i] = 100 + i
	}
	if _, err := s.Prefill(ids); !errors.Is(err, ErrPastPositions) || !strings.Contains(err.Error(), "41 tokens, the model has 40") {
		t.Fatalf("41-token prompt: %v", err)
	}
	s, _ = e.NewSession(nil)
	if _, err := s.Prefill(ids[:40]); err != nil {
		t.Fatalf("40-token prompt: %v", err)
	}
	if _, err := s.Decode(7); !errors.Is(err, ErrPastPositions) {
		t.Fatalf("decoding the 41st token: %v", err)
	}
}
