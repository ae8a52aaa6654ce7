package namm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/namm-dev/namm/safetensors"
)

// FormatVersion is the only NAMM file format this package reads and writes.
const FormatVersion = "namm/1"

// ErrBadFile is wrapped by every error about the content of a NAMM file.
var ErrBadFile = errors.New("bad NAMM file")

// File is a trained NAMM: the BAM parameters and the frozen normalisation,
// stored as safetensors with tensors "params" [4172], "norm_mean" [17],
// "norm_var" [17] and metadata format, n_fft, hop, ema_gamma, step_every,
// base_model, generation, fitness.
type File struct {
	Path       string    // where it was loaded from; empty when built in memory
	Params     []float32 // [NumParams], reference flat order
	Norm       Norm
	BaseModel  string  // the model it was evolved on
	Generation int     // CMA-ES generation of the mean it holds
	Fitness    float64 // the fitness recorded with it
}

// Fingerprint identifies the NAMM by content: "sha256:" and the first 16
// hex digits of SHA-256 over its parameters and normalisation (float32
// bits, little endian), not its path or metadata.
func (f *File) Fingerprint() string { return fingerprint(f.Params, f.Norm) }

func fingerprint(params []float32, norm Norm) string {
	h := sha256.New()
	var b [4]byte
	for _, vs := range [][]float32{params, norm.Mean[:], norm.Var[:]} {
		for _, v := range vs {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:8])
}

// settings are the metadata values a file must carry, as written by Save.
func settings() map[string]string {
	return map[string]string{
		"format":     FormatVersion,
		"n_fft":      strconv.Itoa(NFFT),
		"hop":        strconv.Itoa(Hop),
		"ema_gamma":  strconv.FormatFloat(EMAGamma, 'g', -1, 64),
		"step_every": strconv.Itoa(StepEvery),
	}
}

// Save writes f to path atomically.
func Save(path string, f *File) error {
	if err := f.check(path); err != nil {
		return err
	}
	md := settings()
	md["base_model"] = f.BaseModel
	md["generation"] = strconv.Itoa(f.Generation)
	md["fitness"] = strconv.FormatFloat(f.Fitness, 'g', -1, 64)
	ts := []safetensors.Tensor{
		safetensors.F32("params", []int{NumParams}, f.Params),
		safetensors.F32("norm_mean", []int{Bins}, f.Norm.Mean[:]),
		safetensors.F32("norm_var", []int{Bins}, f.Norm.Var[:]),
	}
	if err := safetensors.Write(path, ts, md); err != nil {
		return fmt.Errorf("namm: save %s: %w", path, err)
	}
	return nil
}

// check validates the values of f; path names the file in errors.
func (f *File) check(path string) error {
	if len(f.Params) != NumParams {
		return fmt.Errorf("namm: %s: %w: params has %d values, want %d", path, ErrBadFile, len(f.Params), NumParams)
	}
	if i := firstNonFinite(f.Params); i >= 0 {
		return fmt.Errorf("namm: %s: %w: params[%d] is %v", path, ErrBadFile, i, f.Params[i])
	}
	if i := firstNonFinite(f.Norm.Mean[:]); i >= 0 {
		return fmt.Errorf("namm: %s: %w: norm_mean[%d] is %v", path, ErrBadFile, i, f.Norm.Mean[i])
	}
	if i := firstNonFinite(f.Norm.Var[:]); i >= 0 {
		return fmt.Errorf("namm: %s: %w: norm_var[%d] is %v", path, ErrBadFile, i, f.Norm.Var[i])
	}
	for i, v := range f.Norm.Var {
		if v < 0 {
			return fmt.Errorf("namm: %s: %w: norm_var[%d] is negative (%v)", path, ErrBadFile, i, v)
		}
	}
	return nil
}

func firstNonFinite(xs []float32) int {
	for i, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return i
		}
	}
	return -1
}

// Load reads and validates a NAMM file.
func Load(path string) (*File, error) {
	st, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("namm: %w", err)
	}
	defer st.Close()
	md := st.Metadata
	if md["format"] != FormatVersion {
		if md["format"] == "" {
			return nil, fmt.Errorf("namm: %s: %w: metadata has no \"format\" (want %q)", path, ErrBadFile, FormatVersion)
		}
		return nil, fmt.Errorf("namm: %s: %w: unknown format %q (this build reads %q)", path, ErrBadFile, md["format"], FormatVersion)
	}
	for _, key := range []string{"n_fft", "hop", "ema_gamma", "step_every"} {
		want := settings()[key]
		got, ok := md[key]
		if !ok {
			return nil, fmt.Errorf("namm: %s: %w: metadata has no %q (want %s)", path, ErrBadFile, key, want)
		}
		if !sameNumber(got, want) {
			return nil, fmt.Errorf("namm: %s: %w: metadata %s = %q, only %s is supported", path, ErrBadFile, key, got, want)
		}
	}
	f := &File{Path: path, BaseModel: md["base_model"]}
	if s, ok := md["generation"]; ok && s != "" {
		if f.Generation, err = strconv.Atoi(s); err != nil {
			return nil, fmt.Errorf("namm: %s: %w: metadata generation %q is not an integer", path, ErrBadFile, s)
		}
	}
	if s, ok := md["fitness"]; ok && s != "" {
		if f.Fitness, err = strconv.ParseFloat(s, 64); err != nil {
			return nil, fmt.Errorf("namm: %s: %w: metadata fitness %q is not a number", path, ErrBadFile, s)
		}
	}
	read := func(name string, n int) ([]float32, error) {
		data, shape, err := st.Float32(name)
		if err != nil {
			return nil, fmt.Errorf("namm: %s: %w: tensor %q: %v", path, ErrBadFile, name, err)
		}
		if len(data) != n || len(shape) != 1 {
			return nil, fmt.Errorf("namm: %s: %w: tensor %q has shape %v, want [%d]", path, ErrBadFile, name, shape, n)
		}
		return data, nil
	}
	if f.Params, err = read("params", NumParams); err != nil {
		return nil, err
	}
	mean, err := read("norm_mean", Bins)
	if err != nil {
		return nil, err
	}
	v, err := read("norm_var", Bins)
	if err != nil {
		return nil, err
	}
	copy(f.Norm.Mean[:], mean)
	copy(f.Norm.Var[:], v)
	if err := f.check(path); err != nil {
		return nil, err
	}
	return f, nil
}

// LoadBytes parses a NAMM file held in memory (an embedded default) via a
// temporary file.
func LoadBytes(name string, b []byte) (*File, error) {
	dir, err := os.MkdirTemp("", "namm-")
	if err != nil {
		return nil, fmt.Errorf("namm: %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "default.namm")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("namm: %s: %w", name, err)
	}
	f, err := Load(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f.Path = name
	return f, nil
}

func sameNumber(a, b string) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && x == y
}
