package safetensors

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawFile assembles a safetensors file from a header string and data, by hand.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGoldenHandWrittenFile(t *testing.T) {
	header := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]},` +
		`"h":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},` +
		`"d":{"dtype":"F64","shape":[],"data_offsets":[16,24]},` +
		`"i":{"dtype":"I64","shape":[1],"data_offsets":[24,32]},` +
		`"e":{"dtype":"F32","shape":[0,3],"data_offsets":[32,32]},` +
		`"__metadata__":{"format":"pt"}}`
	data := []byte{
		0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0, // f32 1.0, -2.5
		0x80, 0x3F, 0x20, 0xC0, // bf16 1.0, -2.5
		0x00, 0x3C, 0x01, 0x00, // f16 1.0, 2^-24
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xD0, 0x3F, // f64 0.25
		0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // i64 -2
	}
	f, err := Open(writeTemp(t, "golden.safetensors", rawFile(header, data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, want := f.Names(), []string{"b", "d", "e", "h", "i", "w"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("Metadata = %v", f.Metadata)
	}
	want := map[string]struct {
		vals  []float32
		shape []int
	}{
		"w": {[]float32{1, -2.5}, []int{2}},
		"b": {[]float32{1, -2.5}, []int{1, 2}},
		"h": {[]float32{1, float32(math.Ldexp(1, -24))}, []int{2}},
		"d": {[]float32{0.25}, []int{}},
		"e": {[]float32{}, []int{0, 3}},
	}
	for name, w := range want {
		vals, shape, err := f.Float32(name)
		if err != nil {
			t.Fatalf("Float32(%q): %v", name, err)
		}
		if !reflect.DeepEqual(vals, w.vals) || !reflect.DeepEqual(shape, w.shape) {
			t.Errorf("Float32(%q) = %v %v, want %v %v", name, vals, shape, w.vals, w.shape)
		}
	}
	info, ok := f.Info("i")
	if !ok || info.DType != DTypeI64 || info.Begin != 24 || info.End != 32 || !reflect.DeepEqual(info.Shape, []int{1}) {
		t.Errorf("Info(i) = %+v, %v", info, ok)
	}
	raw, err := f.Raw("i")
	if err != nil || int64(binary.LittleEndian.Uint64(raw)) != -2 {
		t.Errorf("Raw(i) = %v, %v", raw, err)
	}
	if _, _, err := f.Float32("i"); err == nil || !strings.Contains(err.Error(), `"i"`) {
		t.Errorf("Float32 of an I64 tensor: err = %v, want an error naming the tensor", err)
	}
	if _, err := f.Raw("nope"); err == nil {
		t.Error("Raw of a missing tensor succeeded")
	}
	f.Close()
	if _, err := f.Raw("w"); err == nil {
		t.Error("Raw after Close succeeded")
	}
}

// The writer's bytes match the Python library's layout: compact JSON, the
// dtype/shape/data_offsets order, space padding to 8 bytes.
func TestEncodeGoldenBytes(t *testing.T) {
	got, err := Encode([]Tensor{F32("a", []int{2}, []float32{0, 1})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}` // 54 bytes
	header += strings.Repeat(" ", 2)
	want := rawFile(header, []byte{0, 0, 0, 0, 0, 0, 0x80, 0x3F})
	if string(got) != string(want) {
		t.Fatalf("Encode =\n%q\nwant\n%q", got, want)
	}
}

func TestRoundTripAllFloatDTypes(t *testing.T) {
	vals := []float32{0, 1, -2.5, 3.140625, 1e-3, -65504, 1e-7, 7}
	f64 := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(f64[8*i:], math.Float64bits(float64(v)))
	}
	tensors := []Tensor{
		F32("layers.0.f32", []int{2, 4}, vals),
		BF16("layers.0.bf16", []int{8}, vals),
		F16("f16", []int{4, 2}, vals),
		{Name: "f64", DType: DTypeF64, Shape: []int{8}, Data: f64},
		{Name: "scalar", DType: DTypeU8, Shape: nil, Data: []byte{9}},
		F32("empty", []int{0}, nil),
	}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	meta := map[string]string{"format": "pt", "note": "round trip"}
	if err := Write(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Write, want only the file", len(entries))
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Errorf("Metadata = %v, want %v", f.Metadata, meta)
	}
	// Tensors are laid out in the given order, back to back, from offset 0.
	var off int64
	for _, tn := range tensors {
		info, ok := f.Info(tn.Name)
		if !ok || info.Begin != off || info.End != off+int64(len(tn.Data)) || info.DType != tn.DType {
			t.Errorf("Info(%q) = %+v, want begin %d", tn.Name, info, off)
		}
		off += int64(len(tn.Data))
		raw, err := f.Raw(tn.Name)
		if err != nil || string(raw) != string(tn.Data) {
			t.Errorf("Raw(%q) = %v, %v; want %v", tn.Name, raw, err, tn.Data)
		}
	}
	// Conversions: exact for f32/f64; within half an ulp of the 16-bit formats.
	for name, relTol := range map[string]float64{"layers.0.f32": 0, "f64": 0, "layers.0.bf16": 1.0 / 256, "f16": 1.0 / 2048} {
		got, _, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			tol := relTol * math.Abs(float64(v))
			if name == "f16" && math.Abs(float64(v)) < 6.1e-5 {
				tol = math.Ldexp(1, -25) // subnormal range: half the smallest step
			}
			if d := math.Abs(float64(got[i]) - float64(v)); d > tol {
				t.Errorf("%s[%d] = %v, want %v (±%g)", name, i, got[i], v, tol)
			}
		}
	}
}

func TestWriteRejectsBadTensors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]Tensor{
		"duplicate": {F32("a", []int{1}, []float32{1}), F32("a", []int{1}, []float32{1})},
		"size":      {F32("a", []int{3}, []float32{1})},
		"dtype":     {{Name: "a", DType: "F8", Shape: []int{1}, Data: []byte{1}}},
		"negative":  {{Name: "a", DType: DTypeU8, Shape: []int{-1}, Data: nil}},
		"name":      {F32("", []int{1}, []float32{1})},
	}
	for name, ts := range cases {
		path := filepath.Join(dir, name+".safetensors")
		if err := Write(path, ts, nil); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s: a file was left behind", name)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	f32 := func(name, shape, offs string) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	data8 := make([]byte, 8)
	cases := []struct {
		name string
		file []byte
		want string // substring of the error
	}{
		{"short", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"header too long", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "larger than the file"},
		{"header absurd", binary.LittleEndian.AppendUint64(nil, 1<<62), "exceeds"},
		{"invalid json", rawFile(`{"a":`, nil), "not valid JSON"},
		{"not an object", rawFile(`[1,2]`, nil), "not a JSON object"},
		{"trailing", rawFile(`{} {}`, nil), "trailing"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}`, data8), `tensor "a": unknown dtype "F7"`},
		{"missing dtype", rawFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, data8), `tensor "a": missing field "dtype"`},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, data8), `missing field "shape"`},
		{"missing offsets", rawFile(`{"a":{"dtype":"F32","shape":[2]}}`, data8), `missing field "data_offsets"`},
		{"size mismatch", rawFile("{"+f32("a", "[3]", "[0,8]")+"}", data8), `tensor "a": shape [3] of F32 needs 3 elements but data_offsets span 8 bytes`},
		{"out of range", rawFile("{"+f32("a", "[4]", "[0,16]")+"}", data8), `tensor "a": data_offsets end 16 beyond the data buffer (8 bytes`},
		{"truncated data", rawFile("{"+f32("a", "[2]", "[0,8]")+"}", data8[:5]), `tensor "a": data_offsets end 8 beyond`},
		{"begin > end", rawFile("{"+f32("a", "[0]", "[8,4]")+"}", data8), "begin 8 > end 4"},
		{"negative offset", rawFile("{"+f32("a", "[1]", "[-4,0]")+"}", data8), "negative data_offsets"},
		{"three offsets", rawFile("{"+f32("a", "[1]", "[0,4,8]")+"}", data8), "must have 2 entries"},
		{"negative dim", rawFile("{"+f32("a", "[-2]", "[0,8]")+"}", data8), `tensor "a": shape [-2]: dimension 0 is negative`},
		{"huge dims", rawFile("{"+f32("a", "[4294967296,4294967296]", "[0,8]")+"}", data8), "overflows"},
		{"overlap", rawFile("{"+f32("a", "[2]", "[0,8]")+","+f32("b", "[1]", "[4,8]")+"}", data8), `tensors "a" [0,8) and "b" [4,8) overlap`},
		{"duplicate", rawFile("{"+f32("a", "[1]", "[0,4]")+","+f32("a", "[1]", "[4,8]")+"}", data8), `duplicate tensor "a"`},
		{"bad metadata", rawFile(`{"__metadata__":{"k":1}}`, nil), "__metadata__ must map strings to strings"},
		{"float dim", rawFile("{"+f32("a", "[1.5]", "[0,4]")+"}", data8), `tensor "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad.safetensors", c.file)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file and contain %q", err, c.want)
			}
			if c.name != "short" && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "missing.safetensors")
	if _, err := Open(missing); err == nil {
		t.Error("Open of a missing file succeeded")
	} else if !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), missing) != 1 {
		t.Errorf("error %q: want fs.ErrNotExist, naming %s once", err, missing)
	}
	// Gaps between tensors, empty tensors sharing an offset and a missing
	// "__metadata__" are all fine.
	ok := rawFile("{"+f32("a", "[1]", "[4,8]")+","+f32("z", "[0]", "[4,4]")+","+f32("y", "[0]", "[4,4]")+"}", data8)
	f, err := Open(writeTemp(t, "ok.safetensors", ok))
	if err != nil {
		t.Fatalf("valid file with a gap: %v", err)
	}
	f.Close()
}

func writeShards(t *testing.T, dir string, index string) {
	t.Helper()
	if err := Write(filepath.Join(dir, "model-00001-of-00002.safetensors"),
		[]Tensor{F32("a", []int{2}, []float32{1, 2}), BF16("b", []int{1}, []float32{3})}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "model-00002-of-00002.safetensors"),
		[]Tensor{F16("c", []int{1, 1}, []float32{-4})}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDirSharded(t *testing.T) {
	dir := t.TempDir()
	writeShards(t, dir, `{"metadata":{"total_size":14},"weight_map":{
		"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",
		"c":"model-00002-of-00002.safetensors"}}`)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Names(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("Names = %v", got)
	}
	for name, want := range map[string][]float32{"a": {1, 2}, "b": {3}, "c": {-4}} {
		got, _, err := s.Float32(name)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Float32(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	raw, dt, shape, err := s.Raw("c")
	if err != nil || dt != DTypeF16 || !reflect.DeepEqual(shape, []int{1, 1}) || binary.LittleEndian.Uint16(raw) != 0xC400 {
		t.Errorf("Raw(c) = %x %s %v %v", raw, dt, shape, err)
	}
	if info, ok := s.Info("b"); !ok || info.DType != DTypeBF16 {
		t.Errorf("Info(b) = %+v %v", info, ok)
	}
	if s.Metadata()["format"] != "pt" {
		t.Errorf("Metadata = %v", s.Metadata())
	}
	if _, _, err := s.Float32("zz"); err == nil {
		t.Error("Float32 of a missing tensor succeeded")
	}
}

func TestOpenDirSingleFile(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, SingleFileName), []Tensor{F32("x", []int{1}, []float32{5})}, nil); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _, err := s.Float32("x"); err != nil || got[0] != 5 {
		t.Errorf("Float32(x) = %v, %v", got, err)
	}
}

func TestOpenDirErrors(t *testing.T) {
	cases := map[string]struct{ index, want string }{
		"missing shard":  {`{"weight_map":{"a":"model-00003-of-00002.safetensors"}}`, `shard "model-00003-of-00002.safetensors" of tensor "a"`},
		"missing tensor": {`{"weight_map":{"a":"model-00001-of-00002.safetensors","q":"model-00002-of-00002.safetensors"}}`, `tensor "q" is listed in shard "model-00002-of-00002.safetensors" but missing from it`},
		"bad json":       {`{"weight_map":`, IndexFileName},
		"empty map":      {`{"weight_map":{}}`, `empty "weight_map"`},
		"path escape":    {`{"weight_map":{"a":"../x.safetensors"}}`, "not a file name"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		writeShards(t, dir, c.index)
		s, err := OpenDir(dir)
		if err == nil {
			s.Close()
			t.Errorf("%s: OpenDir succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", name, err, c.want)
		}
	}
	if _, err := OpenDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), SingleFileName) {
		t.Errorf("empty dir: err = %v", err)
	}
}
