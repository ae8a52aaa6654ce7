package inspect

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/testmodel"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/tokenizer"
)

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	return testmodel.Load(t, "tiny-llama")
}

func randomPrompt(n, vocab int) []int {
	r := rand.New(rand.NewPCG(7, 3))
	ids := []int{1}
	for len(ids) < n {
		ids = append(ids, 3+r.IntN(vocab-3))
	}
	return ids
}

// run prefills prompt and decodes n tokens greedily under p, recording the
// trace; it returns the trace (round-tripped through its JSON) and the
// session.
func run(t *testing.T, e *engine.Engine, tok *tokenizer.Tokenizer, p policy.Policy, prompt []int, n int) (Trace, *engine.Session) {
	t.Helper()
	s, err := e.NewSession(p)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(NewHeader("tiny-llama", e, p.Name(), tok, prompt), nil)
	s.SetObserver(rec.Observe)
	logits, err := s.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		id := int(engine.Argmax(logits))
		rec.AddGenerated(tok, id)
		if logits, err = s.Decode(id); err != nil {
			t.Fatal(err)
		}
	}
	data, err := json.Marshal(rec.Finish("", "length"))
	if err != nil {
		t.Fatal(err)
	}
	var tr Trace
	if err := json.Unmarshal(data, &tr); err != nil {
		t.Fatal(err)
	}
	return tr, s
}

// checkAgainstCache compares the trace's kept positions per layer and head
// with the cache's own positions buffer, and its KV figures with the
// session's statistics.
func checkAgainstCache(t *testing.T, tr Trace, s *engine.Session) {
	t.Helper()
	cached := s.CachedPositions()
	kept := tr.Kept()
	for l := range cached {
		for k := range cached[l] {
			got := slices.Clone(cached[l][k])
			slices.Sort(got)
			if got == nil {
				got = []int32{}
			}
			if !slices.Equal(kept[l][k], got) {
				t.Fatalf("layer %d head %d: trace keeps %v, the cache holds %v", l, k, kept[l][k], got)
			}
		}
	}
	st := s.Stats()
	if len(tr.Steps) != st.Passes {
		t.Fatalf("%d steps, the session ran %d passes", len(tr.Steps), st.Passes)
	}
	if got, want := tr.Summary.KVMean, st.MeanKVTokens(); math.Abs(got-want) > 1e-9 {
		t.Fatalf("kv_mean %v, the session's %v", got, want)
	}
	if got, want := tr.Summary.KVPeak, float64(st.PeakKVTokens)/float64(tr.Layers); got != want {
		t.Fatalf("kv_peak %v, the session's %v", got, want)
	}
	if tr.Summary.Processed != len(s.Tokens()) {
		t.Fatalf("processed %d, the session processed %d", tr.Summary.Processed, len(s.Tokens()))
	}
	last := tr.Steps[len(tr.Steps)-1].KV
	if !slices.Equal(last, s.CacheTokens()) {
		t.Fatalf("last step's kv %v, the cache holds %v", last, s.CacheTokens())
	}
}

// TestTraceMatchesCache: for an evicting policy (StreamingLLM, whose kept
// set is known by hand: 4 sinks and the most recent tokens), H2O (layers
// that differ) and the full cache (no evictions), the positions the trace
// says each layer keeps are those the cache's positions buffer holds.
func TestTraceMatchesCache(t *testing.T) {
	e, tok := load(t)
	prompt := randomPrompt(300, e.Config.VocabSize)
	const decode, budget = 12, 64

	p, err := policy.New("streaming", policy.Budget{Tokens: budget})
	if err != nil {
		t.Fatal(err)
	}
	tr, s := run(t, e, tok, p, prompt, decode)
	checkAgainstCache(t, tr, s)
	processed := len(prompt) + decode
	want := []int32{0, 1, 2, 3}
	for pos := processed - (budget - 4); pos < processed; pos++ {
		want = append(want, int32(pos))
	}
	for l, heads := range tr.Kept() {
		for k, h := range heads {
			if !slices.Equal(h, want) {
				t.Fatalf("streaming: layer %d head %d keeps %v, want sinks 0-3 and the last %d: %v", l, k, h, budget-4, want)
			}
		}
	}
	if tr.Summary.Evicted != tr.Layers*(processed-budget) {
		t.Fatalf("streaming: %d evicted, want %d", tr.Summary.Evicted, tr.Layers*(processed-budget))
	}
	if len(tr.Summary.Kept) != tr.Layers || tr.Summary.Kept[0].Head != nil || !slices.Equal(tr.Summary.Kept[0].Positions, want) {
		t.Fatalf("streaming: summary kept %+v", tr.Summary.Kept)
	}
	at := tr.EvictedAt(processed)
	if at[0][4] < 0 || at[0][0] != -1 || at[0][processed-1] != -1 {
		t.Fatalf("streaming: evicted-at of positions 0, 4, last: %d %d %d", at[0][0], at[0][4], at[0][processed-1])
	}

	p, err = policy.New("h2o", policy.Budget{Tokens: budget})
	if err != nil {
		t.Fatal(err)
	}
	tr, s = run(t, e, tok, p, prompt, decode)
	checkAgainstCache(t, tr, s)
	if tr.Summary.Evicted == 0 {
		t.Fatal("h2o: no evictions recorded")
	}

	p, err = policy.New("full", policy.Budget{})
	if err != nil {
		t.Fatal(err)
	}
	tr, s = run(t, e, tok, p, prompt, decode)
	checkAgainstCache(t, tr, s)
	for _, st := range tr.Steps {
		if len(st.Evicted) > 0 {
			t.Fatalf("full cache: step %d evicted %+v", st.Step, st.Evicted)
		}
	}
	if tr.Summary.Evicted != 0 || tr.Summary.KVMean != tr.Summary.FullKVMean || tr.Summary.KVPeak != float64(processed) {
		t.Fatalf("full cache: summary %+v", tr.Summary)
	}
	if len(tr.Prompt) != len(prompt) || tr.Prompt[5].ID != prompt[5] || len(tr.Generated) != decode || tr.Generated[0].Pos != len(prompt) {
		t.Fatalf("tokens: %d prompt, %d generated", len(tr.Prompt), len(tr.Generated))
	}
}

// TestEvictionsPerHead: heads that evict different positions are listed
// one by one; heads that agree as one entry for the layer.
func TestEvictionsPerHead(t *testing.T) {
	got := evictions([][][]int32{nil, {{1, 2}, {1, 2}}, {{3}, {}}, {{}, {}}})
	if len(got) != 2 || got[0].Layer != 1 || got[0].Head != nil || !slices.Equal(got[0].Positions, []int32{1, 2}) ||
		got[1].Layer != 2 || got[1].Head == nil || *got[1].Head != 0 || !slices.Equal(got[1].Positions, []int32{3}) {
		t.Fatalf("evictions: %+v", got)
	}
	tr := Trace{Header: Header{Layers: 1, KVHeads: 2}, Steps: []Step{
		{Step: 0, Start: 0, Tokens: 4, Evicted: []Positions{{Layer: 0, Head: new(int), Positions: []int32{1}}}},
		{Step: 1, Start: 4, Tokens: 1, Evicted: []Positions{{Layer: 0, Positions: []int32{2}}}},
	}}
	one := 1
	tr.Steps = append(tr.Steps, Step{Step: 2, Start: 5, Tokens: 1, Evicted: []Positions{{Layer: 0, Head: &one, Positions: []int32{1}}}})
	kept := tr.Kept()
	if !slices.Equal(kept[0][0], []int32{0, 3, 4, 5}) || !slices.Equal(kept[0][1], []int32{0, 3, 4, 5}) {
		t.Fatalf("kept %v", kept)
	}
	at := tr.EvictedAt(6)
	if !slices.Equal(at[0], []int{-1, 2, 1, -1, -1, -1}) {
		t.Fatalf("evicted at %v", at[0])
	}
}
