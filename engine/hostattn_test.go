package engine

import (
	"slices"
	"testing"

	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
)

// TestHostAttentionMatchesGraph: the host path (projections and attention
// in Go) against model.Layer's graph on the same backend, with policies
// that read every kind of statistic (column sums, last rows, the rows of
// the last queries, key norms) and a NAMM that evicts, with host features
// and with device state (its features updated in stateExec's graph from
// the host's rows):
// prefill's and every decoding step's logits agree within 1e-4 relative,
// and both keep exactly the same tokens. Mistral's sliding window and
// Qwen2's biases are covered too (full cache).
func TestHostAttentionMatchesGraph(t *testing.T) {
	type run struct {
		fixture, policy string
	}
	runs := []run{
		{"tiny-llama", "full"}, {"tiny-mistral", "full"}, {"tiny-qwen2", "full"},
		{"tiny-llama", "h2o"}, {"tiny-llama", "tova"}, {"tiny-llama", "snapkv"},
		{"tiny-llama", "l2"}, {"tiny-llama", "namm"}, {"tiny-llama", "namm-graph"},
	}
	engines := map[string]*Engine{}
	for _, r := range runs {
		t.Run(r.fixture+"/"+r.policy, func(t *testing.T) {
			e := engines[r.fixture]
			if e == nil {
				var err error
				if e, err = Load(fixtureDir(r.fixture), Options{}); err != nil {
					t.Fatal(err)
				}
				engines[r.fixture] = e
			}
			if !e.hostProjections() {
				t.Fatal("the fixture does not take the host path")
			}
			newPolicy := func() policy.Policy {
				if r.policy == "namm" || r.policy == "namm-graph" {
					// namm-graph keeps its features as device state: the
					// host path updates it in stateExec's graph.
					cfg := namm.Config{}
					if r.policy == "namm-graph" {
						cfg.Features = namm.FeaturesGraph
					}
					p, err := namm.New(randomNAMM(), cfg)
					if err != nil {
						t.Fatal(err)
					}
					return p
				}
				b := policy.Budget{Tokens: 300}
				if r.policy == "full" {
					b = policy.Budget{}
				}
				p, err := policy.New(r.policy, b)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			prompt := randomPrompt(1000, e.Config.VocabSize)
			host, err := e.NewSession(newPolicy())
			if err != nil {
				t.Fatal(err)
			}
			e.graphLayers = true
			ref, err := e.NewSession(newPolicy())
			e.graphLayers = false
			if err != nil {
				t.Fatal(err)
			}
			step := lockstep(t, host, ref, &e.graphLayers, 1e-4, "the graph's")
			logits := step(func(s *Session) ([]float32, error) { return s.Prefill(prompt) }, "prefill")
			for range 40 { // past 1,024 tokens: a NAMM step while decoding
				id := Argmax(logits)
				logits = step(func(s *Session) ([]float32, error) { return s.Decode(id) }, "decode")
			}
			if d := keptDifference(host, ref); d != "" {
				t.Fatalf("host attention against the graph: %s", d)
			}
			if r.policy != "full" && host.Stats().Evictions == 0 {
				t.Fatal("nothing was evicted; the statistics were not compared")
			}
			if !slices.Equal(host.Tokens(), ref.Tokens()) {
				t.Fatal("the sessions saw different tokens")
			}
		})
	}
}

// TestHolesMatchGather: evictions that leave holes in the cache
// (punchHoles, compacted only when a pass finds no room) give the logits,
// greedy tokens and kept tokens of gathering the survivors at every
// eviction, for policies that evict at every decoding step.
func TestHolesMatchGather(t *testing.T) { testHolesMatchGather(t, loadTiny(t), 1e-4, true) }

// testHolesMatchGather compares the two with logits within tol. exact asks
// for the same kept tokens throughout; otherwise (a GPU, whose float
// results depend on the cache's layout) a policy may keep a different
// token at a near tie: the comparison then stops, as the contexts differ,
// and the kept tokens must still agree within 2 per head.
func testHolesMatchGather(t *testing.T, e *Engine, tol float64, exact bool) {
	prompt := randomPrompt(700, e.Config.VocabSize)
	for _, name := range []string{"h2o", "tova", "streaming", "l2"} {
		t.Run(name, func(t *testing.T) {
			newSession := func() *Session {
				p, err := policy.New(name, policy.Budget{Tokens: 200})
				if err != nil {
					t.Fatal(err)
				}
				s, err := e.NewSession(p)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			holes, ref := newSession(), newSession()
			step := lockstep(t, holes, ref, &e.noHoles, tol, "gathering's")
			logits := step(func(s *Session) ([]float32, error) { return s.Prefill(prompt) }, "prefill")
			sawHoles, compacted := false, false
			for range 360 { // past the capacity's spare room (512 slots): compactions too
				used := holes.cache.Layers[0].Used
				id := Argmax(logits)
				logits = step(func(s *Session) ([]float32, error) { return s.Decode(id) }, "decode")
				for l := range holes.cache.Layers {
					sawHoles = sawHoles || holes.cache.Layers[l].Tokens() < holes.cache.Layers[l].Used
				}
				compacted = compacted || holes.cache.Layers[0].Used < used
				if d := keptDifference(holes, ref); d != "" {
					if exact {
						t.Fatalf("holes against gathering: %s", d)
					}
					for l := range ref.cache.Layers {
						for k := range ref.cache.Layers[l].Heads {
							if n := symDiff(holes.cache.Layers[l].Heads[k].Pos, ref.cache.Layers[l].Heads[k].Pos); n > 2 {
								t.Fatalf("layer %d head %d: %d kept tokens differ between holes and gathering", l, k, n)
							}
						}
					}
					t.Logf("stopped at a near tie: %s", d)
					return
				}
			}
			if !sawHoles || !compacted {
				t.Fatalf("holes %v, compaction %v: the test compared less than it should", sawHoles, compacted)
			}
			if !slices.Equal(holes.Tokens(), ref.Tokens()) {
				t.Fatal("different tokens generated")
			}
		})
	}
}

// symDiff counts the positions in exactly one of a and b.
func symDiff(a, b []int32) int {
	in := map[int32]int{}
	for _, p := range a {
		in[p]++
	}
	for _, p := range b {
		in[p]--
	}
	n := 0
	for _, c := range in {
		if c != 0 {
			n++
		}
	}
	return n
}

// lockstep returns a function that feeds the same input to two sessions of
// one engine, the reference with *refMode set, and fails when their logits
// differ by more than tol relative; it returns the first session's logits.
func lockstep(t *testing.T, got, ref *Session, refMode *bool, tol float64, refName string) func(func(*Session) ([]float32, error), string) []float32 {
	return func(feed func(*Session) ([]float32, error), what string) []float32 {
		t.Helper()
		a, err := feed(got)
		if err != nil {
			t.Fatal(err)
		}
		*refMode = true
		b, err := feed(ref)
		*refMode = false
		if err != nil {
			t.Fatal(err)
		}
		if d := relErr(a, b); d > tol {
			t.Fatalf("%s: logits differ from %s by %.3g relative", what, refName, d)
		}
		return a
	}
}
