package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	for _, f := range []string{eval.ResultsFile, eval.JournalFile, eval.ScorePlotFile, eval.LayerPlotFile} {
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
