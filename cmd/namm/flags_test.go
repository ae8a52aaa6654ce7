package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs `namm ARGS` in-process and returns stdout, stderr and the error.
func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := rootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

const tinyLlama = "../../testdata/models/tiny-llama" // 2 layers, 4,096 positions

// TestBadFlagsRefused: values that used to be accepted silently (a chunk of
// 0, fewer per-layer budgets than layers, an empty prompt, a max length past
// the model's positions) are refused with the flag named.
func TestBadFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--model", tinyLlama, "--prompt", "hi", "--chunk", "0"}, "--chunk must be > 0"},
		{[]string{"generate", "--model", tinyLlama, "--prompt", "hi", "--chunk", "-3"}, "--chunk must be > 0"},
		{[]string{"generate", "--model", tinyLlama, "--prompt", "hi", "--memory", "h2o", "--layer-budgets", "8"}, "1 per-layer budgets for a model of 2 layers"},
		{[]string{"generate", "--model", tinyLlama, "--prompt", ""}, "--prompt is empty"},
		{[]string{"generate", "--model", tinyLlama}, "give --prompt"},
		{[]string{"eval", "--model", tinyLlama, "--quiet", "--tasks", "niah_single:len=256:n=1", "--memory", "h2o", "--layer-budgets", "8,8,8"}, "3 per-layer budgets for a model of 2 layers"},
		{[]string{"eval", "--model", tinyLlama, "--quiet", "--tasks", "niah_single:len=256:n=1", "--max-length", "100000"}, "4096 positions"},
		{[]string{"bench", "--model", tinyLlama, "--context", "16", "--chunk", "0"}, "--chunk must be > 0"},
	} {
		if _, _, err := runCmd(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("namm %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// TestGenerateRefusesPromptPastPositions: a prompt longer than the model's
// positions is refused, naming the limit; with --truncate its middle is
// dropped, with a note, and the model sees no more than it can place.
func TestGenerateRefusesPromptPastPositions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "long.txt")
	if err := os.WriteFile(file, []byte(strings.Repeat("The cat sat on the mat. ", 1200)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd(t, "generate", "--model", tinyLlama, "--prompt-file", file, "--max-new-tokens", "4")
	if err == nil || !strings.Contains(err.Error(), "4096 positions") || !strings.Contains(err.Error(), "--truncate") {
		t.Fatalf("long prompt: error %v, want a refusal naming the 4096 positions and --truncate", err)
	}
	out, stderr, err := runCmd(t, "generate", "--model", tinyLlama, "--prompt-file", file, "--max-new-tokens", "4", "--truncate", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		PromptTokens int `json:"prompt_tokens"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.PromptTokens > 4096-4 || res.PromptTokens < 4000 {
		t.Errorf("truncated prompt has %d tokens, want at most 4092 and close to it", res.PromptTokens)
	}
	if !strings.Contains(stderr, "note: prompt truncated") {
		t.Errorf("no truncation note on stderr: %q", stderr)
	}
}

// TestNoProgressBarInLogs: with stderr not a terminal (a pipe, a log file)
// no progress bar is drawn: no carriage returns in the log.
func TestNoProgressBarInLogs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	_, stderr, err := runCmd(t, "eval", "--model", tinyLlama, "--tasks", "niah_single:len=256:n=2", "--memory", "full",
		"--max-length", "300", "--no-plots", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "eval") {
		t.Errorf("progress bar drawn into a non-terminal: %q", stderr)
	}
}
