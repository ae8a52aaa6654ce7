package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/namm-dev/namm/eval"
)

// runEval runs `namm eval ARGS` in-process and returns stdout and the error.
func runEval(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := rootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"eval", "--model", "../../testdata/models/tiny-llama", "--quiet"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestEvalCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	// --budget with only the full cache: accepted, and the table says it was ignored.
	out, err := runEval(t, "--tasks", "niah_single:len=256:n=1", "--memory", "full", "--budget", "64", "--out", dir, "--max-length", "300")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"niah_single:len=256:seed=1", "full", "budgets ignored", "results.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{eval.ResultsFile, eval.JournalFile, eval.ScorePlotFile, eval.LayerPlotFile, eval.SummaryCSVFile, eval.SamplesCSVFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// --json prints results.json's content; the same --out resumes.
	out, err = runEval(t, "--tasks", "niah_single:len=256:n=1", "--memory", "full", "--out", dir, "--max-length", "300", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res eval.Results
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(res.Samples) != 1 || res.Samples[0].Policy != "full" || res.MaxLength != 300 {
		t.Errorf("--json results %+v", res)
	}
	// A different --max-length into the same --out is refused.
	if _, err := runEval(t, "--tasks", "niah_single:len=256:n=1", "--out", dir); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Errorf("changed max length resumed: %v", err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tasks", "nope"}, "valid tasks"},
		{[]string{"--tasks", "niah_single:len=256:n=1", "--memory", "h2o"}, "needs a budget"},
		{[]string{"--tasks", "niah_single:len=256:n=1", "--memory", "bogus", "--budget", "8"}, "valid: "},
		{[]string{"--tasks", "niah_single:len=256:n=1", "--memory", "h2o", "--budget", "8", "--budgets", "16,32"}, "not both"},
		{[]string{"--tasks", "niah_single:len=256:n=1", "--memory", "h2o", "--budgets", "16,x"}, "budget \"x\""},
		{[]string{"--memory", "full"}, "give --tasks"},
	} {
		if _, err := runEval(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("eval %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// TestEvalResumeIdentifiesModelByContent: run.json identifies the model by
// its content, so the embedded model resumes from another working directory
// and a copy of a model directory resumes the original's results, while
// changed weights at the same path do not.
func TestEvalResumeIdentifiesModelByContent(t *testing.T) {
	orig, err := filepath.Abs("../../testdata/models/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"eval", "--quiet", "--no-plots", "--tasks", "niah_single:len=256:n=1", "--memory", "full", "--max-length", "300", "--out", out}
	for i := range 2 {
		t.Chdir(t.TempDir()) // a new working directory each time
		stdout, _, err := runCmd(t, args...)
		if err != nil {
			t.Fatalf("embedded model, run %d: %v", i+1, err)
		}
		if i == 1 && !strings.Contains(stdout, "0 samples run now, 1 taken from") {
			t.Errorf("the embedded model from another directory did not resume:\n%s", stdout)
		}
	}
	var run struct {
		Run struct {
			Model struct{ Name, Hash string }
		}
	}
	data, err := os.ReadFile(filepath.Join(out, eval.MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &run); err != nil || run.Run.Model.Name != "embedded:model-a" || !strings.HasPrefix(run.Run.Model.Hash, "sha256:") {
		t.Errorf("run.json model %+v (%v), want embedded:model-a and a hash", run.Run.Model, err)
	}

	// A copy of tiny-llama elsewhere resumes the original's results; the
	// copy with other weights is refused.
	out2 := filepath.Join(t.TempDir(), "out")
	args2 := []string{"eval", "--quiet", "--no-plots", "--tasks", "niah_single:len=256:n=1", "--memory", "full", "--max-length", "300", "--out", out2}
	if _, _, err := runCmd(t, append(args2, "--model", orig)...); err != nil {
		t.Fatal(err)
	}
	cp := t.TempDir()
	for _, f := range []string{"config.json", "tokenizer.json", "model.safetensors", "generation_config.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(orig, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cp, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdout, _, err := runCmd(t, append(args2, "--model", cp)...)
	if err != nil || !strings.Contains(stdout, "0 samples run now, 1 taken from") {
		t.Errorf("a copy of the model did not resume: %v\n%s", err, stdout)
	}
	w := filepath.Join(cp, "model.safetensors")
	data, err = os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(w, data, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(w, later, later)
	if _, _, err := runCmd(t, append(args2, "--model", cp)...); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Errorf("changed weights resumed: %v", err)
	}
}
