package textgen

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/tokenizer"
)

const dir = "../testdata/models/tiny-llama"

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	t.Helper()
	e, err := engine.Load(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return e, tok
}

func TestRunMatchesGreedyAndStops(t *testing.T) {
	e, tok := load(t)
	prompt := tok.Encode("Once upon a time", true)
	want, err := e.Greedy(prompt, 24, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(ids []int) string { return tok.Decode(ids, true) }
	run := func(req Request, onEvent func(Event) error) Result {
		t.Helper()
		s, err := e.NewSession(nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), s, decode, req, onEvent)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var streamed strings.Builder
	res := run(Request{Prompt: prompt, MaxTokens: 24}, func(ev Event) error { streamed.WriteString(ev.Text); return nil })
	if !slices.Equal(res.Tokens, want) || res.FinishReason != FinishLength {
		t.Fatalf("greedy Run: %v (%s), engine.Greedy: %v", res.Tokens, res.FinishReason, want)
	}
	if full := decode(want); res.Text != full || streamed.String() != full {
		t.Fatalf("text %q, streamed %q, want %q", res.Text, streamed.String(), full)
	}
	if res.MeanKVTokens <= 0 || res.PeakKVTokens < res.MeanKVTokens {
		t.Fatalf("KV mean %v, peak %v", res.MeanKVTokens, res.PeakKVTokens)
	}

	// A stop token: generation ends with it, its text is not output.
	res = run(Request{Prompt: prompt, MaxTokens: 24, StopTokens: []int{want[5]}}, nil)
	first := slices.Index(want, want[5])
	if !slices.Equal(res.Tokens, want[:first+1]) || res.FinishReason != FinishStop || res.Text != decode(want[:first]) {
		t.Fatalf("stop token: %v %q %s", res.Tokens, res.Text, res.FinishReason)
	}

	// A stop string from the middle of the greedy text.
	full := decode(want)
	stop := full[len(full)/2 : len(full)/2+3]
	res = run(Request{Prompt: prompt, MaxTokens: 24, StopStrings: []string{stop}}, nil)
	if res.Text != full[:strings.Index(full, stop)] || res.FinishReason != FinishStop {
		t.Fatalf("stop string %q: got %q (%s), want %q", stop, res.Text, res.FinishReason, full[:strings.Index(full, stop)])
	}

	// Sampling with a seed is reproducible.
	seed := uint64(11)
	req := Request{Prompt: prompt, MaxTokens: 16, Sampling: sample.Params{Temperature: 1, Seed: &seed}}
	if a, b := run(req, nil), run(req, nil); !slices.Equal(a.Tokens, b.Tokens) {
		t.Fatalf("seeded runs differ: %v vs %v", a.Tokens, b.Tokens)
	}
}

func TestRunCancelled(t *testing.T) {
	e, tok := load(t)
	s, err := e.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := Run(ctx, s, func(ids []int) string { return tok.Decode(ids, true) },
		Request{Prompt: tok.Encode("Hello", true), MaxTokens: 100}, func(Event) error {
			n++
			if n == 3 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) || len(res.Tokens) != 3 {
		t.Fatalf("got %d tokens, %v; want 3 and context.Canceled", len(res.Tokens), err)
	}
}
