package defaultnamm

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/namm-dev/namm/defaultmodel"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
)

// onDisk returns the default NAMM as committed in the package directory, nil
// when there is none: the independent reference for what the build embeds.
func onDisk(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(FileName)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEmbeddedMatchesDirectory checks that the binary ships exactly the file
// of the directory (nothing when absent or with -tags noembednamm) and that
// init handed it to package namm.
func TestEmbeddedMatchesDirectory(t *testing.T) {
	disk := onDisk(t)
	want := disk
	if !embedded {
		want = nil
	}
	if !bytes.Equal(namm.DefaultFile, want) {
		t.Fatalf("namm.DefaultFile has %d bytes, want %d (file on disk: %v, embedding: %v)",
			len(namm.DefaultFile), len(want), disk != nil, embedded)
	}
	if Shipped() != (want != nil) {
		t.Fatalf("Shipped() = %v, want %v", Shipped(), want != nil)
	}
}

// baseModelName matches the base_model metadata namm evolve writes for model
// A: the directory's name, "model-a" for --model .../model-a, or
// "model-a-<16 hex>" for the embedded model's extraction directory.
var baseModelName = regexp.MustCompile(`^` + regexp.QuoteMeta(defaultmodel.Name) + `(-[0-9a-f]{16})?$`)

// TestDefaultNAMM loads the shipped NAMM and checks its metadata, or, when
// none is shipped, that "--memory namm" says so clearly.
func TestDefaultNAMM(t *testing.T) {
	if !Shipped() {
		_, err := policy.New("namm", policy.Budget{})
		if err == nil {
			t.Fatal(`policy "namm" without a path and without a default NAMM: no error`)
		}
		if !strings.Contains(err.Error(), "no default NAMM") || !strings.Contains(err.Error(), "namm:PATH") {
			t.Fatalf("error %q does not say that no default NAMM is shipped and how to give one", err)
		}
		t.Logf("no default NAMM shipped (file on disk: %v): %v", onDisk(t) != nil, err)
		return
	}
	f, err := namm.LoadBytes("default NAMM", namm.DefaultFile)
	if err != nil {
		t.Fatal(err)
	}
	if !baseModelName.MatchString(f.BaseModel) {
		t.Errorf("default NAMM's base_model is %q, want model A (%s)", f.BaseModel, baseModelName)
	}
	if len(f.Params) != namm.NumParams {
		t.Errorf("default NAMM has %d parameters, want %d", len(f.Params), namm.NumParams)
	}
	if f.Generation < 1 {
		t.Errorf("default NAMM is from generation %d: an evolved NAMM has at least one generation", f.Generation)
	}
	if !(f.Fitness > 0) {
		t.Errorf("default NAMM's recorded fitness is %v, want > 0", f.Fitness)
	}
	// The same parameters as the file read from its path (independent of the
	// embedding and of LoadBytes' temporary file).
	g, err := namm.Load(FileName)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Params {
		if f.Params[i] != g.Params[i] {
			t.Fatalf("param %d: embedded %v, on disk %v", i, f.Params[i], g.Params[i])
		}
	}
	p, err := policy.New("namm", policy.Budget{})
	if err != nil {
		t.Fatalf(`policy "namm" with the default NAMM: %v`, err)
	}
	if !strings.HasPrefix(p.Name(), "namm") {
		t.Fatalf("policy name %q", p.Name())
	}
}
