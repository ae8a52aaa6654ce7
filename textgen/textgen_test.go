package textgen

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/testmodel"
	"github.com/namm-dev/namm/runner"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/tokenizer"
)

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	return testmodel.Load(t, "tiny-llama")
}

func TestRunMatchesGreedyAndStops(t *testing.T) {
	e, tok := load(t)
	prompt := tok.Encode("Once upon a time", true)
	want, err := e.Greedy(prompt, 24, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(ids []int) string { return tok.Decode(ids, true) }
	r := runner.New(e, tok, 2)
	run := func(req Request, onEvent func(Event) error) Result {
		t.Helper()
		res, err := Run(context.Background(), r, req, onEvent)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	var streamed strings.Builder
	res := run(Request{Prompt: prompt, MaxTokens: 24, StopTokens: []int{}}, func(ev Event) error { streamed.WriteString(ev.Text); return nil })
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
	res = run(Request{Prompt: prompt, MaxTokens: 24, StopTokens: []int{}, StopStrings: []string{stop}}, nil)
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
	r := runner.New(e, tok, 1)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := Run(ctx, r, Request{Prompt: tok.Encode("Hello", true), MaxTokens: 100, StopTokens: []int{}}, func(Event) error {
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

// TestSlowReaderHoldsBackNoOne: while one request's reader is blocked, the
// other request of its batch runs to its end with the text it gets alone;
// an error from the blocked reader then ends its request and frees the
// batch.
func TestSlowReaderHoldsBackNoOne(t *testing.T) {
	e, tok := load(t)
	r := runner.New(e, tok, 2)
	alone, err := Run(context.Background(), runner.New(e, tok, 1), Request{Prompt: tok.Encode("Two birds", true), MaxTokens: 20, StopTokens: []int{}, StopStrings: []string{"zz"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), r, Request{Prompt: tok.Encode("Hello", true), MaxTokens: 50, StopTokens: []int{}}, func(Event) error {
			<-release
			return errors.New("the client went away")
		})
		blocked <- err
	}()
	res, err := Run(context.Background(), r, Request{Prompt: tok.Encode("Two birds", true), MaxTokens: 20, StopTokens: []int{}, StopStrings: []string{"zz"}}, nil)
	if err != nil || res.Text != alone.Text || !slices.Equal(res.Tokens, alone.Tokens) {
		t.Fatalf("beside a blocked reader: %q %v (%v); alone %q", res.Text, res.Tokens, err, alone.Text)
	}
	close(release)
	if err := <-blocked; err == nil || err.Error() != "the client went away" {
		t.Fatalf("the blocked reader's request: %v", err)
	}
	if l := r.Load(); l.Active != 0 || l.Queued != 0 {
		t.Fatalf("load after both ended: %+v", l)
	}
}
