package runner

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/testmodel"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/tokenizer"
)

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	return testmodel.Load(t, "tiny-llama")
}

func prompt(seed uint64, n, vocab int) []int {
	r := rand.New(rand.NewPCG(seed, 3))
	ids := []int{1}
	for len(ids) < n {
		ids = append(ids, 3+r.IntN(vocab-3))
	}
	return ids
}

// TestConcurrentRequestsMatchAlone: requests submitted at once from several
// goroutines share batches of 3 and each streams and returns exactly the
// tokens of its own sequence generated alone (Session.Generate), with its
// own policy; a request without a prompt fails alone.
func TestConcurrentRequestsMatchAlone(t *testing.T) {
	e, tok := load(t)
	r := New(e, tok, 3)
	specs := []string{"full", "h2o", "tova", "streaming", "full", "l2"}
	newPolicy := func(spec string) (policy.Policy, error) {
		if spec == "full" {
			return policy.New(spec, policy.Budget{})
		}
		return policy.New(spec, policy.Budget{Tokens: 64})
	}
	lengths := []int{260, 90, 400, 130, 20, 333}
	type outcome struct {
		streamed []int
		res      Result
		err      error
	}
	got := make([]outcome, len(specs))
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := newPolicy(specs[i])
			if err != nil {
				got[i].err = err
				return
			}
			h := r.Submit(context.Background(), Request{Prompt: prompt(uint64(i), lengths[i], e.Config.VocabSize), MaxNew: 5, Policy: p})
			for c := range h.Tokens() {
				got[i].streamed = append(got[i].streamed, c.ID)
			}
			got[i].res, got[i].err = h.Wait()
		}()
	}
	bad := r.Submit(context.Background(), Request{Prompt: nil, MaxNew: 5})
	wg.Wait()
	if _, err := bad.Wait(); !errors.Is(err, engine.ErrEmptyPrompt) {
		t.Errorf("empty prompt: error %v, want %v", err, engine.ErrEmptyPrompt)
	}
	for i, g := range got {
		if g.err != nil {
			t.Fatalf("request %d: %v", i, g.err)
		}
		p, err := newPolicy(specs[i])
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.NewSession(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetModelInfo(tok.SpecialIDs(), tok.IsPunctuation); err != nil {
			t.Fatal(err)
		}
		want, err := s.Generate(prompt(uint64(i), lengths[i], e.Config.VocabSize), 5, r.StopIDs(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g.res.Tokens, want) || !slices.Equal(g.streamed, want) {
			t.Errorf("request %d (%s): result %v, streamed %v, alone %v", i, specs[i], g.res.Tokens, g.streamed, want)
		}
		if a, b := g.res.CacheTokens, s.CacheTokens(); !slices.Equal(a, b) {
			t.Errorf("request %d (%s): cache tokens %v, alone %v", i, specs[i], a, b)
		}
		if a, b := g.res.Stats.PeakBytes, s.Stats().PeakBytes; a != b {
			t.Errorf("request %d (%s): peak KV bytes %d, alone %d", i, specs[i], a, b)
		}
	}
}

// TestCancelLeavesTheOthers: a request whose context is cancelled while it
// runs ends with the context's error; the other request of its batch
// finishes with all its tokens.
func TestCancelLeavesTheOthers(t *testing.T) {
	e, tok := load(t)
	r := New(e, tok, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	long := r.Submit(ctx, Request{Prompt: prompt(1, 300, e.Config.VocabSize), MaxNew: 50, Stop: []int{}})
	other := r.Submit(context.Background(), Request{Prompt: prompt(2, 200, e.Config.VocabSize), MaxNew: 8, Stop: []int{}})
	n := 0
	for range long.Tokens() {
		n++
		if n == 2 {
			cancel()
		}
	}
	if _, err := long.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: error %v", err)
	}
	if n >= 50 {
		t.Errorf("cancelled request streamed all %d tokens", n)
	}
	res, err := other.Wait()
	if err != nil || len(res.Tokens) != 8 {
		t.Errorf("the other request: %d tokens, error %v", len(res.Tokens), err)
	}
}

// TestSampledRequestsMatchAlone: seeded sampled requests batched together
// draw exactly the tokens, and report the log probabilities, of a hand-run
// loop over one session with a sampler of the same settings; the load is
// empty once they are done.
func TestSampledRequestsMatchAlone(t *testing.T) {
	e, tok := load(t)
	r := New(e, tok, 3)
	seed := func(n uint64) *uint64 { return &n }
	settings := []sample.Params{
		{Temperature: 1, Seed: seed(1)},
		{Temperature: 0.7, TopP: 0.9, Seed: seed(2), TopLogprobs: 3},
		{Temperature: 1.3, TopK: 20, MinP: 0.01, Seed: seed(3)},
		{Temperature: 0.9, FrequencyPenalty: 1, PresencePenalty: 0.5, Seed: seed(4), Logprobs: true},
		{TopLogprobs: 2}, // greedy, with log probabilities
	}
	lengths := []int{150, 40, 270, 90, 130}
	const maxNew = 12
	got := make([][]sample.Choice, len(settings))
	errs := make([]error, len(settings))
	var wg sync.WaitGroup
	for i, sp := range settings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r.Submit(context.Background(), Request{Prompt: prompt(uint64(10+i), lengths[i], e.Config.VocabSize), MaxNew: maxNew, Stop: []int{}, Sampling: sp})
			for c := range h.Tokens() {
				got[i] = append(got[i], c)
			}
			_, errs[i] = h.Wait()
		}()
	}
	wg.Wait()
	for i, sp := range settings {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		s, err := e.NewSession(nil)
		if err != nil {
			t.Fatal(err)
		}
		logits, err := s.Prefill(prompt(uint64(10+i), lengths[i], e.Config.VocabSize))
		if err != nil {
			t.Fatal(err)
		}
		sampler := sample.New(sp)
		var want []sample.Choice
		for len(want) < maxNew {
			c := sampler.Next(logits)
			want = append(want, c)
			if logits, err = s.Decode(c.ID); err != nil {
				t.Fatal(err)
			}
		}
		if len(got[i]) != len(want) {
			t.Fatalf("request %d: %d tokens, alone %d", i, len(got[i]), len(want))
		}
		for j := range want {
			g, w := got[i][j], want[j]
			if g.ID != w.ID || g.Logprob != w.Logprob || !slices.Equal(g.Top, w.Top) {
				t.Fatalf("request %d token %d: batched %+v, alone %+v", i, j, g, w)
			}
		}
		if sp.TopLogprobs > 0 && len(got[i][0].Top) != sp.TopLogprobs {
			t.Errorf("request %d: %d top log probabilities, asked for %d", i, len(got[i][0].Top), sp.TopLogprobs)
		}
	}
	if l := r.Load(); l != (Load{}) {
		t.Errorf("load after every request ended: %+v", l)
	}
}

// TestStopEndsWithAResult: a request stopped by its caller ends at the next
// step without error, its tokens a prefix of its full generation; one with
// sampling settings out of range fails naming the field.
func TestStopEndsWithAResult(t *testing.T) {
	e, tok := load(t)
	r := New(e, tok, 2)
	ids := prompt(5, 100, e.Config.VocabSize)
	full, err := r.Generate(context.Background(), Request{Prompt: ids, MaxNew: 40, Stop: []int{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Submit(context.Background(), Request{Prompt: ids, MaxNew: 40, Stop: []int{}})
	n := 0
	for range h.Tokens() {
		if n++; n == 3 {
			h.Stop()
		}
	}
	res, err := h.Wait()
	if err != nil || len(res.Tokens) < 3 || len(res.Tokens) >= 40 || !slices.Equal(res.Tokens, full.Tokens[:len(res.Tokens)]) {
		t.Fatalf("stopped after 3 tokens: %v, error %v; full generation %v", res.Tokens, err, full.Tokens)
	}
	if res.Processed != len(ids)+len(res.Tokens)-1 || res.EvictedTokens() != 0 {
		t.Errorf("processed %d tokens, evicted %d; want %d and 0 (full cache)", res.Processed, res.EvictedTokens(), len(ids)+len(res.Tokens)-1)
	}
	_, err = r.Generate(context.Background(), Request{Prompt: ids, MaxNew: 4, Sampling: sample.Params{Temperature: 3}}, nil)
	if err == nil || !strings.Contains(err.Error(), "temperature") {
		t.Errorf("temperature 3: error %v, want one naming temperature", err)
	}
}
