package torchzip

import (
	"bytes"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fixture = "testdata/torch_like.pt"

func mustLookup(t *testing.T, obj any, path ...string) any {
	t.Helper()
	v, err := Lookup(obj, path...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustTensor(t *testing.T, obj any, path ...string) *Tensor {
	t.Helper()
	v, err := LookupTensor(obj, path...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkTensor(t *testing.T, name string, got *Tensor, dtype string, shape, stride []int, want []float32) {
	t.Helper()
	if got.DType != dtype || !reflect.DeepEqual(got.Shape, shape) || !reflect.DeepEqual(got.Stride, stride) {
		t.Errorf("%s: %s %v stride %v, want %s %v stride %v", name, got.DType, got.Shape, got.Stride, dtype, shape, stride)
	}
	if !reflect.DeepEqual(got.Float32, want) {
		t.Errorf("%s: values %v, want %v", name, got.Float32, want)
	}
}

// The fixture was pickled by Python's own pickle module (see testdata/make_fixture.py).
func TestLoadPythonFixture(t *testing.T) {
	obj, err := Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	checkTensor(t, "mean", mustTensor(t, obj, "evolution_state", "mean"), "float32", []int{4}, []int{1}, []float32{0.5, -1.25, 3.0, 1e-3})
	if v := mustLookup(t, obj, "evolution_state", "sigma"); v != 0.3 {
		t.Errorf("sigma = %v", v)
	}
	if v := mustLookup(t, obj, "evolution_state", "generation"); v != int64(120) {
		t.Errorf("generation = %#v", v)
	}
	checkTensor(t, "C_diag", mustTensor(t, obj, "evolution_state", "C_diag"), "bfloat16", []int{2, 3}, []int{3, 1},
		[]float32{1.0, -2.5, 0.15625, 256.0, -0.0078125, 3.0})

	tokMean := mustTensor(t, obj, "state_dict", "token_embedding_0_output_mean")
	tokVar := mustTensor(t, obj, "state_dict", "token_embedding_0_output_var")
	wantMean, wantVar := make([]float32, 17), make([]float32, 17)
	for i := range wantMean {
		wantMean[i], wantVar[i] = float32(i)/8, float32(1+i)
	}
	checkTensor(t, "output_mean", tokMean, "float32", []int{1, 1, 1, 17}, []int{17, 17, 17, 1}, wantMean)
	checkTensor(t, "output_var", tokVar, "float32", []int{1, 1, 1, 17}, []int{17, 17, 17, 1}, wantVar)

	// Storage [1..8] seen as a transposed 3x2 matrix: element (i,j) = storage[i*1 + j*2].
	checkTensor(t, "transposed", mustTensor(t, obj, "state_dict", "scoring.weight"), "float32", []int{2, 3}, []int{1, 2},
		[]float32{1, 3, 5, 2, 4, 6})
	tail := mustTensor(t, obj, "views", "tail")
	checkTensor(t, "tail", tail, "float32", []int{3}, []int{1}, []float32{6, 7, 8})
	if tail.StorageOffset != 5 || tail.Device != "cpu" {
		t.Errorf("tail offset %d device %q", tail.StorageOffset, tail.Device)
	}
	if mustTensor(t, obj, "views", "same_tail") != tail {
		t.Error("a tensor pickled twice (memo) should be one *Tensor")
	}
	param := mustTensor(t, obj, "state_dict", "scoring.param")
	checkTensor(t, "param", param, "float32", []int{2}, []int{1}, []float32{9, 8})
	if !param.RequiresGrad {
		t.Error("parameter lost requires_grad")
	}

	checkTensor(t, "half", mustTensor(t, obj, "dtypes", "half"), "float16", []int{2, 2}, []int{2, 1},
		[]float32{1, float32(math.Ldexp(1, -24)), -2, 65504})
	checkTensor(t, "double", mustTensor(t, obj, "dtypes", "double"), "float64", []int{2}, []int{1}, []float32{0.1, -7.5})
	longs := mustTensor(t, obj, "dtypes", "long")
	if longs.DType != "int64" || !reflect.DeepEqual(longs.Int64, []int64{-3, 0, 1 << 40}) || longs.Float32[2] != float32(1<<40) {
		t.Errorf("long tensor = %+v", longs)
	}
	bools := mustTensor(t, obj, "dtypes", "bool")
	if bools.DType != "bool" || !reflect.DeepEqual(bools.Int64, []int64{1, 0, 1}) {
		t.Errorf("bool tensor = %+v", bools)
	}
	checkTensor(t, "scalar", mustTensor(t, obj, "dtypes", "scalar"), "float32", []int{}, []int{}, []float32{42})

	x := mustLookup(t, obj, "x").([]any)
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)
	want := []any{int64(1), 2.5, "s", nil, true, false, []any{int64(1), int64(2)}, big70,
		int64(-5), int64(300), int64(70000), int64(-1 << 31), []byte{0, 0xff, 'a', 'b'}, "é中"}
	if len(x) != len(want) {
		t.Fatalf("x has %d items, want %d: %#v", len(x), len(want), x)
	}
	for i := range want {
		if b, ok := want[i].(*big.Int); ok {
			if g, ok := x[i].(*big.Int); !ok || g.Cmp(b) != 0 {
				t.Errorf("x[%d] = %#v, want %v", i, x[i], b)
			}
			continue
		}
		if !reflect.DeepEqual(x[i], want[i]) {
			t.Errorf("x[%d] = %#v, want %#v", i, x[i], want[i])
		}
	}
	if v := mustLookup(t, obj, "3"); v != "int key" {
		t.Errorf(`obj["3"] = %v`, v)
	}
	if v := mustLookup(t, obj, "nested", "a", "b", "0", "c"); v != "deep" {
		t.Errorf("nested = %v", v)
	}
}

func TestLookupErrors(t *testing.T) {
	obj, err := Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lookup(obj, "evolution_state", "token_embedding_0_output_mean")
	if err == nil || !strings.Contains(err.Error(), `key "token_embedding_0_output_mean" under evolution_state`) ||
		!strings.Contains(err.Error(), `"C_diag", "generation", "mean", "sigma"`) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := Lookup(obj, "evolution_state", "mean", "x"); err == nil || !strings.Contains(err.Error(), "evolution_state.mean is a float32 tensor") {
		t.Errorf("lookup into a tensor: %v", err)
	}
	if _, err := Lookup(obj, "x", "99"); err == nil || !strings.Contains(err.Error(), "list of 14") {
		t.Errorf("bad index: %v", err)
	}
	if _, err := LookupTensor(obj, "evolution_state", "sigma"); err == nil {
		t.Error("LookupTensor of a float succeeded")
	}
	paths := Find(obj, "token_embedding_0_output_var")
	if !reflect.DeepEqual(paths, [][]string{{"state_dict", "token_embedding_0_output_var"}}) {
		t.Errorf("Find = %v", paths)
	}
	if got := Find(obj, "weight"); !reflect.DeepEqual(got, [][]string{{"state_dict", "scoring.weight"}}) {
		t.Errorf("Find(weight) = %v", got)
	}
}

// The committed fixture is exactly what the committed script produces.
func TestFixtureScriptReproducible(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not available")
	}
	out := filepath.Join(t.TempDir(), "f.pt")
	if msg, err := exec.Command("python3", "testdata/make_fixture.py", out).CombinedOutput(); err != nil {
		t.Fatalf("make_fixture.py: %v\n%s", err, msg)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(fixture)
	if !bytes.Equal(a, b) {
		t.Error("testdata/torch_like.pt is stale: rerun python3 testdata/make_fixture.py testdata/torch_like.pt")
	}
}
