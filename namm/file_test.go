package namm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/safetensors"
)

func TestFileRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	f := testFile(randFlat(r, 1))
	f.BaseModel, f.Generation, f.Fitness = "llama-tiny", 42, 1.0625
	path := filepath.Join(t.TempDir(), "x.namm")
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Params, f.Params) || g.Norm != f.Norm || g.BaseModel != f.BaseModel ||
		g.Generation != f.Generation || g.Fitness != f.Fitness || g.Path != path {
		t.Fatalf("round trip changed the file: %+v", g)
	}
	st, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for k, v := range map[string]string{"format": "namm/1", "n_fft": "32", "hop": "16", "ema_gamma": "0.99", "step_every": "512"} {
		if st.Metadata[k] != v {
			t.Fatalf("metadata %s = %q, want %q", k, st.Metadata[k], v)
		}
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := testFile(make([]float64, NumParams))
	md := func(over map[string]string) map[string]string {
		m := settings()
		m["base_model"], m["generation"], m["fitness"] = "m", "1", "0.5"
		for k, v := range over {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	params := good.Params
	nan := slices.Clone(params)
	nan[7] = float32(math.NaN())
	inf := slices.Clone(params)
	inf[9] = float32(math.Inf(1))
	mean, v := good.Norm.Mean[:], good.Norm.Var[:]
	negVar := slices.Clone(v)
	negVar[3] = -1
	cases := []struct {
		name    string
		tensors []safetensors.Tensor
		meta    map[string]string
		want    string
	}{
		{"short params", []safetensors.Tensor{safetensors.F32("params", []int{100}, params[:100]), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(nil), "params"},
		{"missing norm_var", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean)}, md(nil), "norm_var"},
		{"missing params", []safetensors.Tensor{safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(nil), "params"},
		{"NaN param", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, nan), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(nil), "params[7]"},
		{"Inf param", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, inf), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(nil), "params[9]"},
		{"negative var", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, negVar)}, md(nil), "norm_var[3]"},
		{"format", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(map[string]string{"format": "namm/2"}), "namm/2"},
		{"no format", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(map[string]string{"format": ""}), "format"},
		{"n_fft", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(map[string]string{"n_fft": "64"}), "n_fft"},
		{"step_every", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(map[string]string{"step_every": "256"}), "step_every"},
		{"missing hop", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(map[string]string{"hop": ""}), "hop"},
		{"generation", []safetensors.Tensor{safetensors.F32("params", []int{NumParams}, params), safetensors.F32("norm_mean", []int{17}, mean), safetensors.F32("norm_var", []int{17}, v)}, md(map[string]string{"generation": "x"}), "generation"},
	}
	for i, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".namm")
		if err := safetensors.Write(path, c.tensors, c.meta); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil {
			t.Fatalf("case %d %s: accepted", i, c.name)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Fatalf("case %s: error %q does not name %q and the file", c.name, err, c.want)
		}
		if c.name != "missing params" && c.name != "missing norm_var" && !errors.Is(err, ErrBadFile) {
			t.Fatalf("case %s: %v is not ErrBadFile", c.name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "absent.namm")); err == nil {
		t.Fatal("missing file accepted")
	}
	bad := testFile(make([]float64, NumParams))
	bad.Params = bad.Params[:10]
	if err := Save(filepath.Join(dir, "bad.namm"), bad); err == nil {
		t.Fatal("Save accepted 10 parameters")
	}
}

func TestRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.namm")
	if err := Save(path, testFile(recencyFlat(100))); err != nil {
		t.Fatal(err)
	}
	p, err := policy.New("namm:"+path+",mode=perhead,cap=64", policy.Budget{})
	if err != nil {
		t.Fatal(err)
	}
	np := p.(*Policy)
	if np.cfg.Mode != PerHead || np.cfg.Cap != 64 || np.params.W[7] != 1 {
		t.Fatalf("options not applied: %+v", np.cfg)
	}
	if _, err := policy.New("namm", policy.Budget{}); err == nil || !strings.Contains(err.Error(), "no default NAMM shipped yet") {
		t.Fatalf("bare namm: %v", err)
	}
	for _, spec := range []string{"namm:" + path + ",budget=3", "namm:" + path + ",mode=fast", "namm:" + path + ",cap=-1", "namm:" + path + ",cap=x", "namm:stats=1,mode=perhead"} {
		if _, err := policy.New(spec, policy.Budget{}); err == nil {
			t.Fatalf("%s accepted", spec)
		}
	}
	sp, err := policy.New("namm:stats=1", policy.Budget{})
	if err != nil || sp.(*Policy).Stats() == nil {
		t.Fatalf("stats mode: %v", err)
	}
	b, err := func() ([]byte, error) { return readFile(path) }()
	if err != nil {
		t.Fatal(err)
	}
	DefaultFile = b
	defer func() { DefaultFile = nil }()
	d, err := policy.New("namm", policy.Budget{})
	if err != nil || d.(*Policy).params.W[7] != 1 {
		t.Fatalf("default NAMM: %v", err)
	}
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// TestFingerprint: the same parameters and normalisation give one
// fingerprint (the file's and its policy's), recomputed here over the float32 bits; a change of one
// parameter or of the normalisation gives another.
func TestFingerprint(t *testing.T) {
	f := &File{Params: make([]float32, NumParams)}
	for i := range f.Params {
		f.Params[i] = float32(i%7) * 0.01
	}
	f.Norm.Mean[3], f.Norm.Var[3] = 0.5, 2
	fp := func(f *File) string {
		p, err := New(f, Config{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Fingerprint()
	}
	h := sha256.New()
	for _, vs := range [][]float32{f.Params, f.Norm.Mean[:], f.Norm.Var[:]} {
		for _, v := range vs {
			h.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(v)))
		}
	}
	want := "sha256:" + hex.EncodeToString(h.Sum(nil)[:8])
	if got := fp(f); got != want {
		t.Fatalf("Fingerprint %s, want %s", got, want)
	}
	if got := f.Fingerprint(); got != want {
		t.Fatalf("the file's Fingerprint %s, the policy's %s", got, want)
	}
	g := *f
	g.Params = append([]float32(nil), f.Params...)
	g.Params[100] += 1e-6
	if fp(&g) == want {
		t.Error("a changed parameter kept the fingerprint")
	}
	g = *f
	g.Norm.Var[0] = 3
	if fp(&g) == want {
		t.Error("a changed normalisation kept the fingerprint")
	}
}
