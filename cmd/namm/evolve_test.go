package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/namm-dev/namm/evolve"
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

// TestEvolveNoise: --noise on the tiny model prints one line per pair and
// writes the same numbers to --out/noise.json; without a checkpoint or
// --noise-namm it says what to give; --draw answerable refuses a pool the
// full cache answers nowhere (the random-weight model scores 0), naming the
// task and the counts, before any checkpoint.
func TestEvolveNoise(t *testing.T) {
	out := t.TempDir()
	base := []string{"evolve", "--model", tinyLlama, "--stage", "niah_single:len=300:n=4", "--samples", "2", "--max-new", "2", "--quiet", "--out", out}
	stdout, _, err := runCmd(t, append(base, "--noise", "3", "--noise-namm", "../../defaultnamm/file/default.namm")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep evolve.NoiseReport
	data, err := os.ReadFile(filepath.Join(out, evolve.NoiseFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Pairs) != 3 || len(rep.Draws) != 3 || rep.Samples != 2 || !strings.HasSuffix(rep.Member, "default.namm") {
		t.Fatalf("noise.json: %s", data)
	}
	for i, p := range rep.Pairs {
		line := fmt.Sprintf("pair %d: %.6g %.6g  |difference| %.6g\n", i+1, p[0], p[1], math.Abs(p[0]-p[1]))
		if !strings.Contains(stdout, line) {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}
	if !strings.Contains(stdout, fmt.Sprintf("standard deviation %.6g", rep.Std)) {
		t.Errorf("stdout lacks the standard deviation:\n%s", stdout)
	}
	_, _, err = runCmd(t, append(base, "--noise", "2")...)
	if err == nil || !strings.Contains(err.Error(), "no checkpoint in") {
		t.Errorf("--noise without checkpoint: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--noise", "-1"}, "--noise must be >= 0"},
		{[]string{"--noise-namm", "x.namm"}, "--noise-namm needs --noise N"},
		{[]string{"--noise", "2", "--noise-namm", filepath.Join(out, "missing.namm")}, "--noise-namm:"},
	} {
		if _, _, err := runCmd(t, append(base, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("evolve %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}

	ans := t.TempDir()
	_, _, err = runCmd(t, "evolve", "--model", tinyLlama, "--stage", "niah_single:len=300:n=4", "--samples", "2", "--max-new", "2", "--quiet", "--out", ans, "--draw", "answerable")
	if err == nil || !strings.Contains(err.Error(), "task niah_single:len=300:n=4:seed=1:split=train: the full cache scores > 0 on 0 of the pool's 4 prompts, fewer than --samples 2") {
		t.Errorf("--draw answerable on an unanswerable pool: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(ans, "checkpoint-*")); len(m) != 0 {
		t.Errorf("checkpoints %v written before the refusal", m)
	}
}
