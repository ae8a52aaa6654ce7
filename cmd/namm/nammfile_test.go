package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/namm"
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

// TestNammFileInitParams: --params keeps another file's parameters and metadata and takes the
// normalisation this model gives on the tasks, the same as a plain init computes.
func TestNammFileInitParams(t *testing.T) {
	dir := t.TempDir()
	src, zero, recal := filepath.Join(dir, "src.namm"), filepath.Join(dir, "zero.namm"), filepath.Join(dir, "recal.namm")
	f := &namm.File{Params: make([]float32, namm.NumParams), BaseModel: "elsewhere", Generation: 7, Fitness: 0.5}
	for i := range f.Params {
		f.Params[i] = float32(i%13) / 100
	}
	for i := range f.Norm.Var {
		f.Norm.Mean[i], f.Norm.Var[i] = 3, 9
	}
	if err := namm.Save(src, f); err != nil {
		t.Fatal(err)
	}
	tasks := "niah_single:len=600:n=1"
	if _, _, err := runCmd(t, "namm-file", "init", "--quiet", "--tasks", tasks, "--out", zero); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, "namm-file", "init", "--quiet", "--tasks", tasks, "--params", src, "--out", recal); err != nil {
		t.Fatal(err)
	}
	z, err := namm.Load(zero)
	if err != nil {
		t.Fatal(err)
	}
	r, err := namm.Load(recal)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Params, f.Params) || r.BaseModel != "elsewhere" || r.Generation != 7 || r.Fitness != 0.5 {
		t.Errorf("parameters or metadata not kept: base %q generation %d fitness %v", r.BaseModel, r.Generation, r.Fitness)
	}
	if r.Norm != z.Norm || r.Norm == f.Norm {
		t.Errorf("normalisation %v, want this model's %v", r.Norm, z.Norm)
	}
	if _, _, err := runCmd(t, "namm-file", "init", "--zero", "--params", src, "--out", recal); err == nil {
		t.Error("--zero with --params: no error")
	}
}
