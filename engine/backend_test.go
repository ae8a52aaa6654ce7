package engine

import (
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
