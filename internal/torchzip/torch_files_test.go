package torchzip

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRealTorchFiles reads checkpoints that torch.save wrote (torch 1.13:
// scripts/torchzip_fixtures.py) and compares every value with what the
// script recorded in the JSON next to each file: tensors of every storage
// type, views sharing a storage (strides and offsets), a parameter, a
// module's state dict, a nested checkpoint shaped like evo-memory's, and the
// same tensors pickled at protocol 4.
func TestRealTorchFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/torch/*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("fixtures: %v, %v", files, err)
	}
	for _, js := range files {
		name := strings.TrimSuffix(filepath.Base(js), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(js)
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				Object any `json:"object"`
			}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.UseNumber() // int64 values beyond 2^53
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			got, err := Load(strings.TrimSuffix(js, ".json") + ".pt")
			if err != nil {
				t.Fatal(err)
			}
			if err := compareRecorded(got, want.Object); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// compareRecorded compares a loaded value with the script's description of
// it ({"dict": ...}, {"tensor": ...}, ...), naming the path of a mismatch.
func compareRecorded(got, want any) error {
	w, ok := want.(map[string]any)
	if !ok || len(w) != 1 {
		return fmt.Errorf("bad description %v", want)
	}
	for kind, v := range w {
		switch kind {
		case "dict":
			g, ok := got.(map[string]any)
			wm := v.(map[string]any)
			if !ok || len(g) != len(wm) {
				return fmt.Errorf("got %s, want a dict of %d keys", describeValue(got), len(wm))
			}
			for k, wv := range wm {
				if err := compareRecorded(g[k], wv); err != nil {
					return fmt.Errorf("[%q]: %w", k, err)
				}
			}
		case "list":
			g, ok := got.([]any)
			wl := v.([]any)
			if !ok || len(g) != len(wl) {
				return fmt.Errorf("got %s, want a list of %d", describeValue(got), len(wl))
			}
			for i := range wl {
				if err := compareRecorded(g[i], wl[i]); err != nil {
					return fmt.Errorf("[%d]: %w", i, err)
				}
			}
		case "int":
			n, _ := new(big.Int).SetString(string(v.(json.Number)), 10)
			switch g := got.(type) {
			case int64:
				if !n.IsInt64() || n.Int64() != g {
					return fmt.Errorf("got %d, want %s", g, n)
				}
			case *big.Int:
				if g.Cmp(n) != 0 {
					return fmt.Errorf("got %s, want %s", g, n)
				}
			default:
				return fmt.Errorf("got %s, want int %s", describeValue(got), n)
			}
		case "float":
			f, _ := v.(json.Number).Float64()
			if g, ok := got.(float64); !ok || g != f {
				return fmt.Errorf("got %s, want float %g", describeValue(got), f)
			}
		case "str":
			if got != v {
				return fmt.Errorf("got %s, want %q", describeValue(got), v)
			}
		case "bool":
			if got != v {
				return fmt.Errorf("got %s, want %v", describeValue(got), v)
			}
		case "none":
			if got != nil {
				return fmt.Errorf("got %s, want None", describeValue(got))
			}
		case "tensor":
			g, ok := got.(*Tensor)
			if !ok {
				return fmt.Errorf("got %s, want a tensor", describeValue(got))
			}
			return compareTensor(g, v.(map[string]any))
		default:
			return fmt.Errorf("unknown kind %q", kind)
		}
	}
	return nil
}

func compareTensor(g *Tensor, w map[string]any) error {
	ints := func(key string) []int {
		out := []int{}
		for _, x := range w[key].([]any) {
			n, _ := x.(json.Number).Int64()
			out = append(out, int(n))
		}
		return out
	}
	offset, _ := w["offset"].(json.Number).Int64()
	shape, stride := ints("shape"), ints("stride")
	if len(g.Shape) == 0 {
		g.Shape = []int{}
	}
	if len(g.Stride) == 0 {
		g.Stride = []int{}
	}
	if g.DType != w["dtype"] || !reflect.DeepEqual(g.Shape, shape) || !reflect.DeepEqual(g.Stride, stride) ||
		g.StorageOffset != int(offset) || g.RequiresGrad != w["requires_grad"] || g.Device != "cpu" {
		return fmt.Errorf("tensor %s %v stride %v offset %d grad %v on %s, want %v %v stride %v offset %d grad %v",
			g.DType, g.Shape, g.Stride, g.StorageOffset, g.RequiresGrad, g.Device, w["dtype"], shape, stride, offset, w["requires_grad"])
	}
	values := w["values"].([]any)
	if len(g.Float32) != len(values) {
		return fmt.Errorf("tensor of %d values, want %d", len(g.Float32), len(values))
	}
	integer := g.DType != "float32" && g.DType != "float64" && g.DType != "float16" && g.DType != "bfloat16"
	if g.IsInteger() != integer {
		return fmt.Errorf("%s tensor: IsInteger %v", g.DType, g.IsInteger())
	}
	for i, x := range values {
		num := x.(json.Number)
		if integer {
			n, err := num.Int64()
			if err != nil || g.Int64[i] != n || g.Float32[i] != float32(n) {
				return fmt.Errorf("value %d: %d (%g), want %s", i, g.Int64[i], g.Float32[i], num)
			}
			continue
		}
		f, _ := num.Float64()
		if want := float32(f); g.Float32[i] != want && !(math.IsNaN(float64(want)) && math.IsNaN(float64(g.Float32[i]))) {
			return fmt.Errorf("value %d: %g, want %g", i, g.Float32[i], want)
		}
		if f == 0 && math.Signbit(f) != math.Signbit(float64(g.Float32[i])) {
			return fmt.Errorf("value %d: %g, want %g (the sign of zero)", i, g.Float32[i], f)
		}
	}
	return nil
}

// TestRealLegacyTorchFileRefused: a checkpoint in torch's format before 1.6
// (a raw pickle) is refused with a message that says how to convert it.
func TestRealLegacyTorchFileRefused(t *testing.T) {
	_, err := Load("testdata/torch/legacy.pt")
	if err == nil || !strings.Contains(err.Error(), "legacy") || !strings.Contains(err.Error(), "re-save") {
		t.Fatalf("legacy checkpoint: %v", err)
	}
}
