package main

import (
	"os"
	"strings"
	"testing"
)

// TestGPUFlagRefused: --gpu with the pure-Go backend or a negative index is
// refused with the flag named, before the model is read or NATS reached
// (the model path and the NATS address here do not exist).
func TestGPUFlagRefused(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "unchanged")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--model", "/nonexistent", "--gpu", "1"}, `--gpu 1 needs --backend xla:PATH (the "go" backend runs on the CPU)`},
		{[]string{"worker", "--nats", "nats://127.0.0.1:1", "--model", "/nonexistent", "--backend", "xla:/nonexistent.so", "--gpu", "-1"}, "--gpu must be a GPU index >= 0, got -1"},
		{[]string{"evolve", "--model", "/nonexistent", "--stage", "niah_single:len=256:n=2", "--out", t.TempDir(), "--gpu", "0"}, "--gpu 0 needs --backend xla:PATH"},
		{[]string{"evolve", "--model", "/nonexistent", "--stage", "niah_single:len=256:n=2", "--out", t.TempDir(), "--backend", "xla:/nonexistent.so", "--gpu", "-2"}, "--gpu must be a GPU index >= 0, got -2"},
	} {
		_, _, err := runCmd(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("namm %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	if v := os.Getenv("CUDA_VISIBLE_DEVICES"); v != "unchanged" {
		t.Errorf("a refused --gpu set CUDA_VISIBLE_DEVICES to %q", v)
	}
}

// TestGPUPinnedBeforeBackend: load sets CUDA_VISIBLE_DEVICES to --gpu before
// it opens the backend: the plugin path here does not exist, so opening the
// backend fails, and by then the variable is set. Without --gpu it is left
// as it was.
func TestGPUPinnedBeforeBackend(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
	mf := modelFlags{model: tinyLlama, backend: "xla:/nonexistent/xla_cuda_plugin.so", chunk: 128}
	if _, _, err := mf.load(); err == nil || !strings.Contains(err.Error(), "backend") {
		t.Fatalf("load without --gpu: error %v, want the backend's", err)
	}
	if v := os.Getenv("CUDA_VISIBLE_DEVICES"); v != "0,1,2,3" {
		t.Fatalf("without --gpu, CUDA_VISIBLE_DEVICES became %q", v)
	}
	mf.gpu, mf.gpuGiven = 2, true
	_, _, err := mf.load()
	if err == nil || !strings.Contains(err.Error(), "backend") {
		t.Fatalf("load: error %v, want the backend's (the plugin does not exist)", err)
	}
	if v := os.Getenv("CUDA_VISIBLE_DEVICES"); v != "2" {
		t.Fatalf("CUDA_VISIBLE_DEVICES = %q when the backend was opened, want 2", v)
	}
}
