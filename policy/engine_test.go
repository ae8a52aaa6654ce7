package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// fakeEngine drives a policy as the real engine does, over random attention:
// prefill chunks, then decode steps, applying keep indices to its cache of
// positions. Statistics are provided only when asked for, so a policy that
// reads a statistic it did not ask for fails.
type fakeEngine struct {
	t        *testing.T
	rng      *rand.Rand
	info     ModelInfo
	tokens   []int
	pos      [][][]int32   // [L][K][S] original positions of the cached tokens
	payload  [][][]float32 // [L][K][S] a per-token value the engine compacts with keep
	promptN  int
	chunk    int
	evicted  int // tokens evicted over the run, all heads and layers
	maxHeld  int
	policy   Policy
	policyID string
}

func newFakeEngine(t *testing.T, p Policy, id string, seed uint64) *fakeEngine {
	info := ModelInfo{
		NumLayers: 2, NumKVHeads: 3, NumHeads: 6, HeadDim: 8,
		SpecialTokens: map[int]bool{1: true},
		Punctuation:   func(id int) bool { return id%7 == 0 },
	}
	e := &fakeEngine{t: t, rng: rand.New(rand.NewPCG(seed, 7)), info: info, policy: p, policyID: id, chunk: 128}
	e.pos = make([][][]int32, info.NumLayers)
	e.payload = make([][][]float32, info.NumLayers)
	for l := range e.pos {
		e.pos[l] = make([][]int32, info.NumKVHeads)
		e.payload[l] = make([][]float32, info.NumKVHeads)
	}
	if err := p.Reset(info); err != nil {
		t.Fatalf("%s: Reset: %v", id, err)
	}
	return e
}

// run processes a prompt of promptN tokens then decodeN decoded tokens.
func (e *fakeEngine) run(promptN, decodeN int) {
	e.promptN = promptN
	for start := 0; start < promptN; start += e.chunk {
		n := min(e.chunk, promptN-start)
		e.pass(Pass{Phase: Prefill, Start: start, NewTokens: n, LastPrefill: start+n == promptN, PromptLen: promptN})
	}
	for i := range decodeN {
		e.pass(Pass{Phase: Decode, Start: promptN + i, NewTokens: 1, PromptLen: promptN})
	}
}

func payloadOf(layer, head int, pos int32) float32 {
	return float32(layer*1_000_000 + head*100_000 + int(pos))
}

func (e *fakeEngine) pass(p Pass) {
	t, id := e.t, e.policyID
	for range p.NewTokens {
		e.tokens = append(e.tokens, e.rng.IntN(50))
	}
	needs := e.policy.NeedsFor(p)
	for l := range e.info.NumLayers {
		v := &LayerView{Layer: l, Pass: p, Tokens: e.tokens, Positions: e.pos[l]}
		for k := range e.pos[l] {
			for i := range p.NewTokens {
				q := int32(p.Start + i)
				e.pos[l][k] = append(e.pos[l][k], q)
				e.payload[l][k] = append(e.payload[l][k], payloadOf(l, k, q))
			}
		}
		v.Positions = e.pos[l]
		K := len(v.Positions)
		rows := make([][][]float32, K)
		for k, pos := range v.Positions {
			rows[k] = make([][]float32, p.NewTokens)
			for tq := range p.NewTokens {
				q := int32(p.Start + tq)
				row := make([]float32, len(pos))
				var sum float64
				for i, kp := range pos {
					if kp <= q {
						row[i] = float32(math.Exp(2 * e.rng.NormFloat64()))
						sum += float64(row[i])
					}
				}
				for i := range row {
					row[i] = float32(float64(row[i]) / sum)
				}
				rows[k][tq] = row
			}
		}
		if needs.Rows {
			v.Rows = rows
		}
		if needs.LastRow {
			v.LastRow = make([][]float32, K)
			for k := range rows {
				v.LastRow[k] = rows[k][p.NewTokens-1]
			}
		}
		if needs.ColSums {
			v.ColSums = make([][]float32, K)
			for k, pos := range v.Positions {
				v.ColSums[k] = make([]float32, len(pos))
				for _, row := range rows[k] {
					for i, a := range row {
						v.ColSums[k][i] += a
					}
				}
			}
		}
		if needs.KeyNorms {
			v.KeyNorms = make([][]float32, K)
			for k := range v.KeyNorms {
				v.KeyNorms[k] = make([]float32, p.NewTokens)
				for i := range v.KeyNorms[k] {
					v.KeyNorms[k][i] = float32(1 + e.rng.Float64()*10)
				}
			}
		}
		lens := viewLens(v)
		keep, err := e.policy.Update(v)
		if err != nil {
			t.Fatalf("%s: layer %d %s pass at %d: Update: %v", id, l, p.Phase, p.Start, err)
		}
		if err := checkKeep(keep, lens); err != nil {
			t.Fatalf("%s: layer %d %s pass at %d: %v", id, l, p.Phase, p.Start, err)
		}
		for k := range e.pos[l] {
			if keep != nil && keep[k] != nil {
				e.evicted += len(e.pos[l][k]) - len(keep[k])
			}
		}
		CompactHeads(e.pos[l], keep)
		CompactHeads(e.payload[l], keep)
		e.check(l, p)
	}
}

// check verifies the invariants of layer l after pass p.
func (e *fakeEngine) check(l int, p Pass) {
	t, id := e.t, e.policyID
	where := fmt.Sprintf("%s: layer %d after %s pass at %d", id, l, p.Phase, p.Start)
	limit, bounded := 0, false
	if b, ok := e.policy.(Bounded); ok {
		limit, bounded = b.BoundAfter(l, p)
	}
	for k, pos := range e.pos[l] {
		e.maxHeld = max(e.maxHeld, len(pos))
		if bounded && len(pos) > limit {
			t.Fatalf("%s: head %d holds %d tokens, over the budget %d", where, k, len(pos), limit)
		}
		if len(pos) == 0 || int(pos[len(pos)-1]) != p.Processed()-1 {
			t.Fatalf("%s: head %d lost the newest token", where, k)
		}
		for i, q := range pos {
			if i > 0 && q <= pos[i-1] {
				t.Fatalf("%s: head %d positions not chronological: %v", where, k, pos)
			}
			if e.payload[l][k][i] != payloadOf(l, k, q) {
				t.Fatalf("%s: head %d token %d: position %d no longer matches its cached data", where, k, i, q)
			}
		}
	}
	if s, ok := e.policy.(stateLener); ok {
		if lens := s.stateLens(l); lens != nil {
			for k, n := range lens {
				if n != len(e.pos[l][k]) {
					t.Fatalf("%s: head %d: policy state has %d tokens, cache %d", where, k, n, len(e.pos[l][k]))
				}
			}
		}
	}
}

// invariantCases are the specs and budgets each registered policy is run
// with; a policy without an entry is tried with a token budget, then without.
var invariantCases = map[string][]struct {
	spec   string
	budget Budget
}{
	"h2o":       {{"h2o", Budget{Tokens: 40}}, {"h2o:recent=3", Budget{Ratio: 0.3}}, {"h2o", Budget{PerLayer: []int{30, 50}}}},
	"streaming": {{"streaming", Budget{Tokens: 40}}, {"streaming:sinks=0", Budget{Ratio: 0.5}}, {"streaming", Budget{Tokens: 3}}},
	"snapkv":    {{"snapkv", Budget{Tokens: 40}}, {"snapkv:decode=1,window=140", Budget{Tokens: 200}}, {"snapkv:window=8,kernel=1", Budget{Ratio: 0.2}}},
	"fastgen":   {{"fastgen", Budget{}}, {"fastgen:threshold=0.5", Budget{}}, {"fastgen:threshold=0.2,local=0.1,frequent=0.05", Budget{}}},
	"tova":      {{"tova", Budget{Tokens: 40}}, {"tova", Budget{Tokens: 1}}},
	"random":    {{"random:seed=3", Budget{Tokens: 40}}, {"random", Budget{Ratio: 0.1}}},
	// The NAMM ships no default file yet; its statistics mode runs the same
	// policy code with zero parameters. This fake engine hands out attention
	// rows, so the host features (the in-graph ones need the real engine).
	"namm": {{"namm:stats=1,features=host", Budget{}}},
}

func TestInvariantsEveryPolicy(t *testing.T) {
	names := Names()
	if len(names) < 9 {
		t.Fatalf("only %d policies registered: %v", len(names), names)
	}
	for _, name := range names {
		cases := invariantCases[name]
		if cases == nil {
			b := Budget{Tokens: 40}
			if _, err := New(name, b); err != nil {
				b = Budget{}
			}
			cases = append(cases, struct {
				spec   string
				budget Budget
			}{name, b})
		}
		for ci, c := range cases {
			t.Run(fmt.Sprintf("%s/%d", name, ci), func(t *testing.T) {
				p, err := New(c.spec, c.budget)
				if err != nil {
					t.Fatalf("New(%q, %+v): %v", c.spec, c.budget, err)
				}
				e := newFakeEngine(t, p, p.Name(), uint64(ci+1))
				e.run(300, 25)
				// Reset starts over: a second sequence must run too.
				e2 := newFakeEngine(t, p, p.Name()+" (after Reset)", uint64(ci+11))
				e2.run(70, 5)
				if !c.budget.IsZero() && e.evicted == 0 {
					t.Errorf("%s: a budget of %+v over 325 tokens evicted nothing", p.Name(), c.budget)
				}
			})
		}
		// A budget above the length evicts nothing.
		p, err := New(name, Budget{Tokens: 100000})
		if err != nil {
			continue // policies without a budget
		}
		e := newFakeEngine(t, p, p.Name(), 99)
		e.run(300, 25)
		if e.evicted != 0 {
			t.Errorf("%s: evicted %d tokens with a budget above the length", p.Name(), e.evicted)
		}
	}
}

// checkKeep verifies that keep is a valid answer for a layer whose heads hold
// lens[k] tokens: one entry per head (or nil), indices ascending, in range,
// the newest token kept. (The engine checks with kvcache.Layer.KeptSlots.)
func checkKeep(keep [][]int, lens []int) error {
	if keep == nil {
		return nil
	}
	if len(keep) != len(lens) {
		return fmt.Errorf("policy: keep has %d heads, layer has %d", len(keep), len(lens))
	}
	for k, idx := range keep {
		if idx == nil {
			continue
		}
		n := lens[k]
		if len(idx) == 0 && n > 0 {
			return fmt.Errorf("policy: head %d keeps no token (the newest must be kept)", k)
		}
		for j, i := range idx {
			if i < 0 || i >= n {
				return fmt.Errorf("policy: head %d keep index %d out of range [0, %d)", k, i, n)
			}
			if j > 0 && i <= idx[j-1] {
				return fmt.Errorf("policy: head %d keep indices not ascending at %d (%d after %d)", k, j, i, idx[j-1])
			}
		}
		if n > 0 && idx[len(idx)-1] != n-1 {
			return fmt.Errorf("policy: head %d evicts the newest token", k)
		}
	}
	return nil
}

// stateLens reports the per-head lengths of a policy's per-token state, so
// the tests can check it follows the cache's compaction.
type stateLener interface {
	stateLens(layer int) []int
}

// viewLens are the per-head token counts of a view.
func viewLens(v *LayerView) []int {
	out := make([]int, len(v.Positions))
	for k, p := range v.Positions {
		out[k] = len(p)
	}
	return out
}
