//go:build !noxla

package engine

import (
	"os"
	"regexp"
	"testing"
)

// TestGoXLAPatchInPlace: the build uses the vendored go-xla
// (third_party/go-xla, NAMM_PATCH.md) and its first change is there: an
// execution passes no completion events, so it returns once enqueued
// instead of waiting for the GPU. Upstream's API has no option for this;
// without the patch passes get slower on a GPU (8k prefill 0.68 -> 1.02 s
// on an H200) but no CPU test would notice, so this test guards it.
func TestGoXLAPatchInPlace(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^replace github\.com/gomlx/go-xla => \./third_party/go-xla\s*$`).Match(mod) {
		t.Error("go.mod does not replace github.com/gomlx/go-xla by ./third_party/go-xla: the build would use upstream's, which waits for the device after every execution")
	}
	src, err := os.ReadFile("../third_party/go-xla/pkg/pjrt/loadedexecutables.go")
	if err != nil {
		t.Fatal(err)
	}
	// The events are cleared right before the call that would wait on them.
	patch := regexp.MustCompile(`(?m)^\s*args\.device_complete_events = nil\s*\n\s*\n?\s*err := toError\(e\.plugin, C\.ExecuteAndWait\(`)
	if !patch.Match(src) {
		t.Error("third_party/go-xla/pkg/pjrt/loadedexecutables.go lost the patch: 'args.device_complete_events = nil' before ExecuteAndWait (NAMM_PATCH.md)")
	}
}
