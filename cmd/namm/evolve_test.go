package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEvolveFlagsRefused: values that used to be replaced silently
// (population 0 became 32) or checked only after the normalisation
// statistics (sigma0) are refused before any model work.
func TestEvolveFlagsRefused(t *testing.T) {
	base := []string{"evolve", "--model", tinyLlama, "--stage", "niah_single:len=600:n=8", "--out", t.TempDir(), "--quiet"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--population", "0"}, "--population must be >= 2, got 0"},
		{[]string{"--sigma0", "-1"}, "--sigma0 must be finite and > 0"},
		{[]string{"--workers", "0"}, "--workers must be >= 1 without --nats"},
		{[]string{"--cma", "diag"}, "want full or sep"},
		{[]string{"--eigen-every", "-2"}, "--eigen-every must be >= 0"},
		{[]string{"--draw", "all"}, `--draw "all": want any or answerable`},
	} {
		if _, _, err := runCmd(t, append(base, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("evolve %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

func TestLocalWorkers(t *testing.T) {
	def := defaultLocalWorkers("go")
	for _, c := range []struct {
		flag    int
		given   bool
		nats    string
		want    int
		wantErr bool
	}{
		{0, false, "", def, false},
		{3, true, "", 3, false},
		{0, true, "", 0, true},
		{-1, true, "embedded", 0, true},
		{0, false, "embedded", def, false},
		{0, true, "embedded", 0, false}, // the in-process server only: remote workers join it
		{0, false, "nats://h:4222", 0, false},
		{2, true, "nats://h:4222", 2, false},
	} {
		got, err := localWorkers(c.flag, c.given, c.nats, "go")
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("localWorkers(%d, %v, %q) = %d, %v; want %d (error %v)", c.flag, c.given, c.nats, got, err, c.want, c.wantErr)
		}
	}
}

// TestWorkerHelpModelOptional: --model defaults to the embedded model, and
// the usage line says so.
func TestWorkerHelpModelOptional(t *testing.T) {
	out, _, err := runCmd(t, "worker", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "worker --nats URL [--model DIR]") || !strings.Contains(out, "--exit-idle") {
		t.Errorf("worker --help:\n%s", out)
	}
}

// TestInterruptSaysHowToResume: an interrupted evolve or eval (Ctrl-C
// cancels the command's context) says what was kept and how to resume. The
// interruption comes once the run has saved something (a first checkpoint,
// a first journal line).
func TestInterruptSaysHowToResume(t *testing.T) {
	for _, c := range []struct {
		args  []string
		saved string // file whose content means the run has saved work
		want  string
	}{
		{[]string{"evolve", "--model", tinyLlama, "--stage", "niah_single:len=600:n=8", "--generations", "1000", "--population", "4",
			"--samples", "2", "--norm-samples", "1", "--max-new", "2"}, "checkpoint-00000000.ckpt", "run the same command again to resume"},
		{[]string{"eval", "--model", tinyLlama, "--tasks", "niah_single:len=600:n=100", "--memory", "full", "--max-length", "700"}, "journal.jsonl", "interrupted"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		go func() {
			for ctx.Err() == nil {
				if fi, err := os.Stat(filepath.Join(out, c.saved)); err == nil && fi.Size() > 0 {
					cancel() // Ctrl-C
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		root := rootCmd()
		var stdout, stderr bytes.Buffer
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		root.SetArgs(append(c.args, "--out", out))
		err := root.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s interrupted: error %v, want one saying %q\n%s", c.args[0], err, c.want, stderr.String())
		}
		if c.args[0] == "eval" && !strings.Contains(stderr.String(), "run the same command again to resume") {
			t.Errorf("eval interrupted: no resume hint in %q", stderr.String())
		}
	}
}
