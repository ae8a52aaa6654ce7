package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNammFileRecordsBaseModel: a NAMM file made with the embedded model
// names it (it said "." before), and show prints it.
func TestNammFileRecordsBaseModel(t *testing.T) {
	out := filepath.Join(t.TempDir(), "zero.namm")
	if _, _, err := runCmd(t, "namm-file", "init", "--quiet", "--tasks", "niah_single:len=600:n=1", "--out", out); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCmd(t, "namm-file", "show", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "base_model") {
			if !strings.Contains(line, "embedded:model-a@sha256:") {
				t.Errorf("show: %q, want the embedded model with its hash", line)
			}
			return
		}
	}
	t.Errorf("show printed no base_model:\n%s", stdout)
}
