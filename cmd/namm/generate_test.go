package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/tokenizer"
)

// runGenerate runs `namm generate --json ARGS` in-process.
func runGenerate(t *testing.T, args ...string) map[string]any {
	t.Helper()
	root := rootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"generate", "--model", tinyLlama, "--json", "--prompt", "Once upon a time"}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("generate %v: %v", args, err)
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("generate %v: %q", args, out.String())
	}
	return res
}

func TestGenerateSampling(t *testing.T) {
	// Greedy by default: the engine's greedy decoding.
	e, err := engine.Load(tinyLlama, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(tinyLlama)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := e.Greedy(tok.Encode("Once upon a time", true), 12, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	greedy := tok.Decode(ids, true)
	if got := runGenerate(t, "--max-new-tokens", "12")["text"]; got != greedy {
		t.Fatalf("default generate %q, greedy %q", got, greedy)
	}
	a := runGenerate(t, "--max-new-tokens", "12", "--temperature", "1", "--seed", "9")["text"]
	b := runGenerate(t, "--max-new-tokens", "12", "--temperature", "1", "--seed", "9")["text"]
	if a != b || a == greedy {
		t.Fatalf("seeded sampling: %q and %q (greedy %q)", a, b, greedy)
	}
	stop := greedy[len(greedy)/2 : len(greedy)/2+2]
	res := runGenerate(t, "--max-new-tokens", "12", "--stop", stop, "--top-logprobs", "2")
	if res["text"] != greedy[:strings.Index(greedy, stop)] || res["finish_reason"] != "stop" {
		t.Fatalf("--stop %q: %v", stop, res)
	}
	if lp := res["logprobs"].([]any); len(lp) == 0 || len(lp[0].(map[string]any)["top_logprobs"].([]any)) != 2 {
		t.Fatalf("logprobs %v", res["logprobs"])
	}
	root := rootCmd()
	root.SetArgs([]string{"generate", "--model", tinyLlama, "--prompt", "x", "--top-p", "2"})
	root.SetOut(&bytes.Buffer{})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--top-p") {
		t.Fatalf("--top-p 2: %v", err)
	}
}
