package main

import (
	"bytes"
	"encoding/json"
	stdpng "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/inspect"
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

// TestGenerateTraceAndPlot: generate --trace writes a trace whose last
// step holds the KV tokens generate reports, and trace-plot draws it as a
// PNG of the requested size.
func TestGenerateTraceAndPlot(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.json")
	res := runGenerate(t, "--max-new-tokens", "6", "--memory", "streaming", "--budget", "5", "--trace", trace)
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var tr inspect.Trace
	if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Format != inspect.Format || len(tr.Steps) == 0 || len(tr.Generated) != 6 {
		t.Fatalf("trace: format %q, %d steps, %d generated", tr.Format, len(tr.Steps), len(tr.Generated))
	}
	last := tr.Steps[len(tr.Steps)-1].KV
	for l, n := range res["kv_tokens_per_layer"].([]any) {
		if int(n.(float64)) != last[l] {
			t.Fatalf("layer %d: trace's last step holds %d, generate reports %v", l, last[l], n)
		}
	}
	if tr.Summary.Evicted == 0 || tr.Summary.Text != res["text"] {
		t.Fatalf("summary %+v, text %q", tr.Summary, res["text"])
	}
	png := filepath.Join(dir, "heat.png")
	root := rootCmd()
	root.SetArgs([]string{"trace-plot", "--trace", trace, "--out", png})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(png)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := stdpng.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 100 {
		t.Fatalf("heatmap of %v", b)
	}
}
