package main

import (
	"strings"
	"testing"
)

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:80": true, "[::1]:8080": true, "127.0.0.5:1": true,
		"0.0.0.0:8080": false, ":8080": false, "[::]:8080": false, "10.0.0.1:8080": false, "example.com:80": false, "bad": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Listening beyond loopback without a key is refused before any model loads.
func TestServeNeedsKeyBeyondLoopback(t *testing.T) {
	t.Setenv("NAMM_API_KEY", "")
	cmd := rootCmd()
	cmd.SetArgs([]string{"serve", "--addr", "0.0.0.0:0", "--model", "../../testdata/models/tiny-llama"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("got %v, want a refusal naming --api-key", err)
	}
}

func TestModelID(t *testing.T) {
	for flag, want := range map[string]string{"": "namm-model-a", "Qwen/Qwen2-0.5B-Instruct": "Qwen/Qwen2-0.5B-Instruct",
		"../../testdata/models/tiny-llama": "tiny-llama", "/models/llama/": "llama"} {
		if got := modelID(flag); got != want {
			t.Errorf("modelID(%q) = %q, want %q", flag, got, want)
		}
	}
}
