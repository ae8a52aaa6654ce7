package engine

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
)

// aloneRun is a sequence run by itself: its tokens, the logits each was
// chosen from, and its session afterwards.
type aloneRun struct {
	out    []int
	logits [][]float32
	s      *Session
}

func runAlone(t *testing.T, e *Engine, p policy.Policy, prompt []int, maxNew int) aloneRun {
	t.Helper()
	s, err := e.NewSession(p)
	if err != nil {
		t.Fatal(err)
	}
	r := aloneRun{s: s}
	logits, err := s.Prefill(prompt)
	if err != nil {
		t.Fatal(err)
	}
	for {
		r.logits = append(r.logits, logits)
		next := Argmax(logits)
		r.out = append(r.out, next)
		if len(r.out) == maxNew {
			return r
		}
		if logits, err = s.Decode(next); err != nil {
			t.Fatal(err)
		}
	}
}

// relDiff is the largest difference of a and b relative to b's largest
// magnitude.
func relDiff(a, b []float32) float64 {
	scale := 0.0
	for _, v := range b {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	return maxDiff(a, b) / math.Max(scale, 1e-30)
}

// batchPolicies are the policies every batch test runs: for sequence i of
// a batch, a fresh instance (a NAMM with parameters of its own per
// sequence, as the members of a CMA-ES population).
func batchPolicies() map[string]func(i int) (policy.Policy, error) {
	budget := policy.Budget{Tokens: 150}
	out := map[string]func(int) (policy.Policy, error){}
	for _, name := range []string{"full", "streaming", "h2o", "l2", "tova", "snapkv", "fastgen", "random"} {
		out[name] = func(int) (policy.Policy, error) {
			switch name {
			case "full":
				return policy.New(name, policy.Budget{})
			case "fastgen":
				// A low recovery threshold: the default evicts nothing here.
				return policy.New("fastgen:threshold=0.5", policy.Budget{})
			}
			return policy.New(name, budget)
		}
	}
	out["namm"] = func(i int) (policy.Policy, error) { return batchNAMM(i, namm.Config{}) }
	return out
}

// batchNAMM is sequence i's NAMM: random parameters of its own, or for odd
// i one that evicts tokens older than 100+50i.
func batchNAMM(i int, cfg namm.Config) (policy.Policy, error) {
	f := randomNAMM()
	r := rand.New(rand.NewPCG(uint64(i), 9))
	for j := range f.Params {
		f.Params[j] += float32(0.05 * r.NormFloat64())
	}
	if i%2 == 1 {
		f = nammFile(recencyParams(100 + 50*i))
	}
	return namm.New(f, cfg)
}

// TestBatchMatchesAlone: every sequence of a batch (prompts of different
// lengths, two of them joining mid-way; beside them a sequence with a token
// outside the vocabulary and one whose policy fails mid-prefill, both
// failing alone with their reason) gives exactly the
// tokens, the logits (1e-5 relative) and the kept tokens of the same
// sequence run alone, for the full cache, every baseline and NAMMs with
// parameters of their own; the KV bytes and tokens reported are its own.
func TestBatchMatchesAlone(t *testing.T) {
	testBatchMatchesAlone(t, loadTiny(t), batchPolicies(), 1e-5, defaultLayout)
}

// TestBatchMatchesAloneGraph is TestBatchMatchesAlone on the layer graphs
// (model.LayerBatch: one graph per layer for every sequence, as on a GPU
// with --no-fuse), run by the pure-Go backend, with a NAMM whose features
// are device state updated inside the graph.
func TestBatchMatchesAloneGraph(t *testing.T) {
	e := loadTiny(t)
	e.graphLayers = true
	all := batchPolicies()
	pols := map[string]func(int) (policy.Policy, error){}
	for _, name := range []string{"full", "h2o", "tova", "l2"} {
		pols[name] = all[name]
	}
	pols["namm-graph"] = func(i int) (policy.Policy, error) {
		f := randomNAMM()
		r := rand.New(rand.NewPCG(uint64(i), 9))
		for j := range f.Params {
			f.Params[j] += float32(0.05 * r.NormFloat64())
		}
		return namm.New(f, namm.Config{Features: namm.FeaturesGraph})
	}
	testBatchMatchesAlone(t, e, pols, 1e-5, defaultLayout)
}

// TestBatchMatchesAloneFused is TestBatchMatchesAlone on fused pass graphs
// (a GPU's default), run by the pure-Go backend with the cache kept as on
// a device: the passes of sequences of one width and capacity run as one
// graph (forwardFusedBatch), the others' alone. Its NAMMs read the
// attention rows the graph returns. In "mixed", sequences of one capacity
// under the full cache, baselines returning each statistic a pass can
// return (column sums, last rows, rows, key norms) and a NAMM whose
// features are device state updated inside the graph (the same state as
// alone, checked value by value) run in the same graphs, four at a time.
func TestBatchMatchesAloneFused(t *testing.T) {
	e := loadTiny(t)
	e.deviceCache = true
	all := batchPolicies()
	pols := map[string]func(int) (policy.Policy, error){"full": all["full"], "h2o": all["h2o"],
		// In-graph features are slow on the pure-Go backend; "mixed" runs them.
		"namm": func(i int) (policy.Policy, error) { return batchNAMM(i, namm.Config{Features: namm.FeaturesHost}) }}
	testBatchMatchesAlone(t, e, pols, 1e-5, defaultLayout)
	checkBatchedGraphs(t, e, 2, 1)

	mixed := loadTiny(t)
	mixed.deviceCache = true
	kinds := []string{"full", "h2o", "namm", "l2", "tova", "snapkv"}
	testBatchMatchesAlone(t, mixed, map[string]func(int) (policy.Policy, error){"mixed": func(i int) (policy.Policy, error) { return all[kinds[i]](i) }},
		1e-5, mixedLayout)
	checkBatchedGraphs(t, mixed, 4, 3)
}

// TestBatchMatchesAloneFusedPrefix is TestBatchMatchesAloneFused with
// prefix graphs (Options.PrefixGraphs), under StreamingLLM keeping 700
// tokens: two prompts in one capacity of 2,048 slots, whose passes attend
// to different quarters of it and run together attending to the larger;
// their prefills evict within that capacity and give it back at their end,
// in the batch as alone.
func TestBatchMatchesAloneFusedPrefix(t *testing.T) {
	e, err := Load(fixtureDir("tiny-llama"), Options{PrefixGraphs: true})
	if err != nil {
		t.Fatal(err)
	}
	e.deviceCache = true
	streaming := func(int) (policy.Policy, error) { return policy.New("streaming", policy.Budget{Tokens: 700}) }
	testBatchMatchesAlone(t, e, map[string]func(int) (policy.Policy, error){"streaming": streaming},
		1e-5, batchLayout{lengths: []int{1700, 1800, 300}, joinAt: []int{0, 3, 0}})
	checkBatchedGraphs(t, e, 2, 1)
	quarters := map[string]bool{}
	for key := range e.compiled {
		if rest, ok := strings.CutPrefix(key, "passes/"); ok && strings.Contains(rest, "/c2048/") {
			quarters[strings.Split(rest, "/")[3]] = true
		}
	}
	if len(quarters) < 2 {
		t.Errorf("batched passes over 2,048 slots attended to %v of them", quarters)
	}
}

// mixedLayout's prompts all take a cache of 512 slots.
var mixedLayout = batchLayout{lengths: []int{200, 210, 290, 220, 205, 180}, joinAt: []int{0, 0, 0, 0, 1, 1}}

// checkBatchedGraphs fails unless some pass ran batched over at least
// seqs sequences of at least kinds kinds, and unless each batched graph
// ran a power-of-two number of sequences of one width and capacity.
func checkBatchedGraphs(t *testing.T, e *Engine, seqs, kinds int) {
	t.Helper()
	found := false
	for key := range e.compiled {
		rest, ok := strings.CutPrefix(key, "passes/")
		if !ok {
			continue
		}
		parts := strings.Split(rest, ";")
		shapes, kindSet := map[string]bool{}, map[string]bool{}
		for _, part := range parts {
			// mask/t<width>/c<capacity>/q<quarters>[/state.../w<ctl>]
			f := strings.Split(part, "/")
			shapes[f[1]+"/"+f[2]] = true
			kindSet[strings.Join(append([]string{f[0]}, f[4:]...), "/")] = true
		}
		if n := len(parts); n < 2 || n&(n-1) != 0 || len(shapes) != 1 {
			t.Errorf("graph %s: %d sequences of shapes %v", key, n, shapes)
		}
		found = found || len(parts) >= seqs && len(kindSet) >= kinds
	}
	if !found {
		t.Errorf("no batched fused pass of %d sequences and %d kinds ran", seqs, kinds)
	}
}

// batchLayout is a batch test's prompts: their lengths, and the step
// before which each sequence joins. The third prompt must be longer than
// 256 tokens (failingPolicy's sequence runs it).
type batchLayout struct{ lengths, joinAt []int }

var defaultLayout = batchLayout{lengths: []int{300, 170, 520, 45}, joinAt: []int{0, 0, 2, 5}}

func testBatchMatchesAlone(t *testing.T, e *Engine, policies map[string]func(int) (policy.Policy, error), tol float64, layout batchLayout) {
	lengths, joinAt := layout.lengths, layout.joinAt
	const maxNew = 6
	prompts := make([][]int, len(lengths))
	for i, n := range lengths {
		prompts[i] = randomPrompt(n+i, e.Config.VocabSize)[i:]
	}
	for name, newPolicy := range policies {
		t.Run(name, func(t *testing.T) {
			want := make([]aloneRun, len(prompts))
			for i, pr := range prompts {
				p, err := newPolicy(i)
				if err != nil {
					t.Fatal(err)
				}
				want[i] = runAlone(t, e, p, pr, maxNew)
			}
			b := e.NewBatch()
			seqs := make([]*Seq, len(prompts))
			got := make([][][]float32, len(prompts))
			for i, pr := range prompts {
				p, err := newPolicy(i)
				if err != nil {
					t.Fatal(err)
				}
				s, err := e.NewSession(p)
				if err != nil {
					t.Fatal(err)
				}
				seqs[i] = &Seq{Session: s, Prompt: pr, MaxNew: maxNew,
					OnLogits: func(l []float32) { got[i] = append(got[i], slices.Clone(l)) }}
			}
			bad, err := e.NewSession(nil)
			if err != nil {
				t.Fatal(err)
			}
			// A token outside the vocabulary fails its sequence at its first pass.
			broken := &Seq{Session: bad, Prompt: []int{1, 5, e.Config.VocabSize + 3}, MaxNew: 2}
			b.Add(broken)
			// A policy that fails mid-prefill fails its sequence alone.
			fs, err := e.NewSession(failingPolicy{})
			if err != nil {
				t.Fatal(err)
			}
			failing := &Seq{Session: fs, Prompt: prompts[2], MaxNew: maxNew}
			b.Add(failing)
			// One that panics mid-prefill (as GoMLX reports a device's
			// failure) fails alone too.
			ps, err := e.NewSession(panickingPolicy{})
			if err != nil {
				t.Fatal(err)
			}
			panicking := &Seq{Session: ps, Prompt: prompts[2], MaxNew: maxNew}
			b.Add(panicking)
			for step := 0; step < 200; step++ {
				for i, at := range joinAt {
					if at == step {
						b.Add(seqs[i])
					}
				}
				if step > slices.Max(joinAt) && b.Len() == 0 {
					break
				}
				b.Step()
			}
			if broken.Err == nil || !broken.Done {
				t.Errorf("a sequence with token id %d did not fail", e.Config.VocabSize+3)
			}
			if failing.Err == nil || !strings.Contains(failing.Err.Error(), errPolicyFails.Error()) || len(failing.Out) != 0 {
				t.Errorf("the sequence whose policy fails: error %v, %d tokens", failing.Err, len(failing.Out))
			}
			if panicking.Err == nil || !strings.Contains(panicking.Err.Error(), errPolicyPanics) || len(panicking.Out) != 0 {
				t.Errorf("the sequence whose policy panics: error %v, %d tokens", panicking.Err, len(panicking.Out))
			}
			for i, sq := range seqs {
				w := want[i]
				if sq.Err != nil || !sq.Done {
					t.Fatalf("sequence %d: done %v, error %v", i, sq.Done, sq.Err)
				}
				if !slices.Equal(sq.Out, w.out) {
					t.Fatalf("sequence %d: batch generated %v, alone %v", i, sq.Out, w.out)
				}
				for j := range w.logits {
					if d := relDiff(got[i][j], w.logits[j]); d > tol {
						t.Fatalf("sequence %d token %d: logits differ by %.2g (relative)", i, j, d)
					}
				}
				gs, ws := sq.Session, w.s
				for l := range ws.cache.Layers {
					for k := range ws.cache.Layers[l].Heads {
						if a, b := gs.cache.Layers[l].Heads[k].Pos, ws.cache.Layers[l].Heads[k].Pos; !slices.Equal(a, b) {
							t.Fatalf("sequence %d layer %d head %d: batch keeps %d tokens %v..., alone %d %v...",
								i, l, k, len(a), a[:min(8, len(a))], len(b), b[:min(8, len(b))])
						}
					}
				}
				for l := range ws.cache.Layers {
					if a, b := keptState(gs, l), keptState(ws, l); b != nil {
						if d := relDiff(a, b); d > tol {
							t.Fatalf("sequence %d layer %d: policy state differs by %.2g (relative)", i, l, d)
						}
					}
				}
				// The bytes reported are the sequence's own buffers. On fused
				// graphs a batched sequence's cache keeps its capacity through
				// evictions until half of it is free (Session.holdsCapacity):
				// the same tokens in more slots than alone.
				if a, own := gs.CacheBytes(), bufferBytes(gs); a != own {
					t.Errorf("sequence %d: %d KV bytes reported in the batch, its buffers hold %d", i, a, own)
				}
				as, bs := gs.Stats(), ws.Stats()
				moreRoom := e.fuses() && gs.CacheBytes() >= ws.CacheBytes() && as.PeakBytes >= bs.PeakBytes
				if !moreRoom && (gs.CacheBytes() != ws.CacheBytes() || as.PeakBytes != bs.PeakBytes) {
					t.Errorf("sequence %d: %d KV bytes (peak %d) in the batch, %d (peak %d) alone", i, gs.CacheBytes(), as.PeakBytes, ws.CacheBytes(), bs.PeakBytes)
				}
				if as.PeakKVTokens != bs.PeakKVTokens || as.Passes != bs.Passes || as.Evictions != bs.Evictions {
					t.Errorf("sequence %d: stats %+v in the batch, %+v alone", i, as, bs)
				}
			}
			if name != "full" {
				evicted := false
				for i := range seqs {
					evicted = evicted || want[i].s.Stats().Evictions > 0
				}
				if !evicted {
					t.Errorf("%s evicted nothing: the test would not see eviction", name)
				}
			}
		})
	}
}

// TestBatchRefusesBadSequences: sequences that cannot run fail alone at
// Add, with their reason, and never join.
func TestBatchRefusesBadSequences(t *testing.T) {
	e := loadTiny(t)
	b := e.NewBatch()
	fresh := func() *Session {
		s, err := e.NewSession(nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []*Seq{
		{Session: fresh(), Prompt: nil, MaxNew: 3},
		{Session: fresh(), Prompt: make([]int, e.Config.MaxPositionEmbeddings), MaxNew: 3},
		{Session: fresh(), Prompt: []int{1, 2}, MaxNew: 0},
		{Session: nil, Prompt: []int{1, 2}, MaxNew: 3},
	}
	for i, c := range cases {
		b.Add(c)
		if c.Err == nil || !c.Done {
			t.Errorf("case %d: accepted", i)
		} else {
			t.Log(c.Err)
		}
	}
	if b.Len() != 0 {
		t.Errorf("batch holds %d sequences after only bad ones", b.Len())
	}
}

// TestCheckBatchRefusesWhatDoesNotFit: a batch is refused when its
// sequences' estimated memory exceeds what is available, with the size it
// needs; the estimate grows with the tokens held.
func TestCheckBatchRefusesWhatDoesNotFit(t *testing.T) {
	e := loadTiny(t)
	per := e.SequenceBytes(1000, 0)
	if small := e.SequenceBytes(100, 0); small >= per {
		t.Fatalf("100 tokens need %d bytes, 1,000 need %d", small, per)
	}
	// K, V and positions of every layer at 1,000 tokens at least.
	cfg := e.Config
	if floor := int64(cfg.NumLayers) * 1000 * int64(cfg.NumKVHeads) * (2*int64(cfg.HeadDim)*4 + 4); per < floor {
		t.Fatalf("estimate %d bytes below the cache's own %d", per, floor)
	}
	if err := e.CheckBatch(4, 1000, 0, 4*per); err != nil {
		t.Errorf("a batch that fits was refused: %v", err)
	}
	err := e.CheckBatch(4, 1000, 0, 4*per-1)
	if err == nil {
		t.Fatal("a batch that does not fit was accepted")
	}
	need := fmt.Sprintf("%.1f MiB", float64(4*per)/(1<<20))
	if !strings.Contains(err.Error(), need) || !strings.Contains(err.Error(), "at most 3 fit") {
		t.Errorf("error %q does not give the size needed (%s) and the batch that fits", err, need)
	}
}

var errPolicyFails = errors.New("this policy fails once 256 tokens are in")

// failingPolicy keeps everything until its Update fails, once 256 tokens
// are processed.
type failingPolicy struct{}

func (failingPolicy) Name() string                      { return "failing" }
func (failingPolicy) Reset(policy.ModelInfo) error      { return nil }
func (failingPolicy) NeedsFor(policy.Pass) policy.Needs { return policy.Needs{ColSums: true} }
func (failingPolicy) Update(v *policy.LayerView) ([][]int, error) {
	if v.Pass.Processed() >= 256 {
		return nil, errPolicyFails
	}
	return nil, nil
}

const errPolicyPanics = "this policy panics once 256 tokens are in"

// panickingPolicy keeps everything until its Update panics, once 256 tokens
// are processed: a stand-in for the backend's failures, which GoMLX
// reports by panicking.
type panickingPolicy struct{ failingPolicy }

func (panickingPolicy) Update(v *policy.LayerView) ([][]int, error) {
	if v.Pass.Processed() >= 256 {
		panic(errPolicyPanics)
	}
	return nil, nil
}

// TestSessionSurvivesAPanickingPass: a pass that panics returns an error,
// and the session refuses every later pass with it (its cache may be
// half-updated) instead of crashing the process.
func TestSessionSurvivesAPanickingPass(t *testing.T) {
	e := loadTiny(t)
	s, err := e.NewSession(panickingPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	prompt := make([]int, 400)
	for i := range prompt {
		prompt[i] = 3 + i%50
	}
	if _, err := s.Prefill(prompt); err == nil || !strings.Contains(err.Error(), errPolicyPanics) {
		t.Fatalf("prefill past 256 tokens: error %v, want the panic's", err)
	}
	if _, err := s.Decode(5); err == nil || !strings.Contains(err.Error(), "cannot go on") {
		t.Fatalf("decode after a failed pass: error %v", err)
	}
	// A sequence of that session in a batch fails at once.
	b := e.NewBatch()
	sq := &Seq{Session: s, Prompt: []int{4, 5}, MaxNew: 2}
	b.Add(sq)
	b.Run()
	if sq.Err == nil || !sq.Done {
		t.Fatalf("a broken session's sequence: done %v, error %v", sq.Done, sq.Err)
	}
}

// keptState is layer l's policy state of the tokens its cache holds, per
// KV head in chronological order (nil without state): the same whatever
// slots hold them.
func keptState(s *Session, l int) []float32 {
	lc := s.cache.Layers[l]
	if lc.Feat == nil {
		return nil
	}
	dims := lc.Feat.Shape().Dimensions // [K, C, W]
	c, w := dims[1], dims[2]
	all := tensors.MustCopyFlatData[float32](lc.Feat)
	var out []float32
	for k, h := range lc.Heads {
		for _, slot := range h.Slot {
			out = append(out, all[(k*c+slot)*w:(k*c+slot+1)*w]...)
		}
	}
	return out
}

// bufferBytes is the memory of a session's K, V and positions buffers, read
// from the buffers' shapes.
func bufferBytes(s *Session) int64 {
	var n int64
	for _, lc := range s.cache.Layers {
		for _, b := range []*tensors.Tensor{lc.K, lc.V, lc.Pos} {
			n += int64(b.Shape().Memory())
		}
	}
	return n
}

// TestBatchHoldsCapacity: on fused graphs, two sequences whose policies
// keep different numbers of tokens (StreamingLLM at 700 and 900) shrink
// to different capacities alone, but in a batch both keep the prompt's
// capacity (their tokens need more than half of it), so their decoding
// steps run as one batched graph; they generate what they do alone.
func TestBatchHoldsCapacity(t *testing.T) {
	e := loadTiny(t)
	e.deviceCache = true
	r := rand.New(rand.NewPCG(4, 4))
	prompt := make([]int, 1500)
	for i := range prompt {
		prompt[i] = 3 + r.IntN(200)
	}
	budgets := []int{700, 900}
	streaming := func(n int) policy.Policy {
		p, err := policy.New("streaming", policy.Budget{Tokens: n})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var aloneCaps []int
	var want [][]int
	for _, n := range budgets {
		a := runAlone(t, e, streaming(n), prompt, 4)
		aloneCaps = append(aloneCaps, a.s.cache.Layers[0].Capacity)
		want = append(want, a.out)
	}
	if aloneCaps[0] == aloneCaps[1] {
		t.Fatalf("alone, both sequences end at capacity %d: the test needs two", aloneCaps[0])
	}
	b := e.NewBatch()
	var seqs []*Seq
	for _, n := range budgets {
		s, err := e.NewSession(streaming(n))
		if err != nil {
			t.Fatal(err)
		}
		sq := &Seq{Session: s, Prompt: prompt, MaxNew: 4}
		seqs = append(seqs, sq)
		b.Add(sq)
	}
	b.Run()
	c0, c1 := seqs[0].Session.cache.Layers[0].Capacity, seqs[1].Session.cache.Layers[0].Capacity
	if c0 != c1 || c0 <= max(aloneCaps[0], aloneCaps[1]) {
		t.Errorf("in a batch the sequences end at capacities %d and %d (alone %v)", c0, c1, aloneCaps)
	}
	for i, sq := range seqs {
		if sq.Err != nil || !slices.Equal(sq.Out, want[i]) {
			t.Errorf("sequence %d: batch generated %v (error %v), alone %v", i, sq.Out, sq.Err, want[i])
		}
	}
	decodeKey := fmt.Sprintf("/t1/c%d/", c0)
	found := false
	for key := range e.compiled {
		rest, ok := strings.CutPrefix(key, "passes/")
		found = found || ok && len(strings.Split(rest, ";")) == 2 && strings.Count(rest, decodeKey) == 2
	}
	if !found {
		t.Errorf("no decoding step ran both sequences as one graph at capacity %d", c0)
	}
}
