package eval

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/namm"
)

// TestPolicyInfoFingerprintsNAMM: results record a NAMM by the content of
// its file, so that a file replaced at the same path is told apart.
func TestPolicyInfoFingerprintsNAMM(t *testing.T) {
	f := &namm.File{Params: make([]float32, namm.NumParams)}
	for i := range f.Params {
		f.Params[i] = float32(i%5) * 0.02
	}
	for i := range f.Norm.Var {
		f.Norm.Var[i] = 1
	}
	path := filepath.Join(t.TempDir(), "a.namm")
	if err := namm.Save(path, f); err != nil {
		t.Fatal(err)
	}
	p, err := namm.New(f, namm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := policyInfo([]Variant{{Policy: "full"}, {Policy: "namm:" + path}})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].Fingerprint != "" || infos[1].Fingerprint != p.Fingerprint() || infos[1].Name != "namm:"+path {
		t.Errorf("policies %+v, want the NAMM's fingerprint %s", infos, p.Fingerprint())
	}
	f.Params[0] = 1
	if err := namm.Save(path, f); err != nil {
		t.Fatal(err)
	}
	again, err := policyInfo([]Variant{{Policy: "namm:" + path}})
	if err != nil || again[0].Fingerprint == infos[1].Fingerprint {
		t.Errorf("replaced NAMM file kept fingerprint %s (%v)", again[0].Fingerprint, err)
	}
}

// TestResumeRefusesChangedNAMM: results journalled with one NAMM file are
// not resumed once another NAMM is at that path.
func TestResumeRefusesChangedNAMM(t *testing.T) {
	e, tok := tiny(t)
	f := &namm.File{Params: make([]float32, namm.NumParams)}
	for i := range f.Norm.Var {
		f.Norm.Var[i] = 1
	}
	path := filepath.Join(t.TempDir(), "a.namm")
	if err := namm.Save(path, f); err != nil {
		t.Fatal(err)
	}
	tasks, err := LoadTasks([]string{"niah_single:len=256:n=1"}, tok, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Scorer: &Scorer{Engine: e, Tokenizer: tok, MaxLength: 300}, Tasks: tasks, NoPlots: true, OutDir: t.TempDir(),
		Variants: []Variant{{Policy: "namm:" + path}}}
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	// A new policy joins the directory; the same NAMM resumes.
	cfg.Variants = append(cfg.Variants, Variant{Policy: "full"})
	if rep, err := Run(t.Context(), cfg); err != nil || rep.Resumed != 1 || rep.Ran != 1 {
		t.Fatalf("same NAMM plus the full cache: %+v, %v", rep, err)
	}
	f.Params[7] = 0.5
	if err := namm.Save(path, f); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "its file now holds") {
		t.Errorf("a replaced NAMM file resumed: %v", err)
	}
}
