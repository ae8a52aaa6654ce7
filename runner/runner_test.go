package runner

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/tokenizer"
)

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "models", "tiny-llama")
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
			for id := range h.Tokens() {
				got[i].streamed = append(got[i].streamed, id)
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

// TestTextStreamJoinsToTheDecoding: pieces handed out token by token never
// hold a partial character and join to the decoding of all the tokens,
// also for characters split over byte-fallback tokens.
func TestTextStreamJoinsToTheDecoding(t *testing.T) {
	e, tok := load(t)
	r := New(e, tok, 1)
	for _, text := range []string{"Hello there, world.", "naïve café 世界 𝔘𝔫𝔦 龘 done", "日本語"} {
		ids := tok.Encode(text, false)
		st := r.NewTextStream()
		var joined strings.Builder
		held := 0 // tokens after which nothing was ready
		for _, id := range ids {
			piece := st.Add(id)
			if piece == "" {
				held++
			}
			if strings.ContainsRune(piece, '\uFFFD') {
				t.Errorf("%q: a piece with a partial character: %q", text, piece)
			}
			joined.WriteString(piece)
		}
		joined.WriteString(st.Flush())
		if want := tok.Decode(ids, true); joined.String() != want {
			t.Errorf("stream of %q joined to %q, decoding %q", text, joined.String(), want)
		}
		if strings.Contains(text, "𝔘") && held == 0 {
			t.Errorf("%q: no token was held back: the rare characters were not split into bytes (%v)", text, ids)
		}
	}
}
