package namm

import (
	"math"
	"path/filepath"
	"testing"
)

// testdata/reference_ckpt.pt is made by testdata/make_reference_ckpt.py.
func TestImportReference(t *testing.T) {
	f, err := ImportReference("testdata/reference_ckpt.pt")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f.Params {
		if v != float32(math.Sin(float64(i))/10) {
			t.Fatalf("params[%d] = %v, want sin(%d)/10", i, v, i)
		}
	}
	for b := range Bins {
		if f.Norm.Mean[b] != float32(b)/8 || f.Norm.Var[b] != float32(1+b) {
			t.Fatalf("bin %d: norm %v %v (picked a decoy buffer?)", b, f.Norm.Mean[b], f.Norm.Var[b])
		}
	}
	if f.Generation != 37 {
		t.Fatalf("generation %d", f.Generation)
	}
	out := filepath.Join(t.TempDir(), "imported.namm")
	if err := Save(out, f); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(out); err != nil {
		t.Fatal(err)
	}
	if _, err := ImportReference("testdata/make_reference_ckpt.py"); err == nil {
		t.Fatal("a non-checkpoint was imported")
	}
}
