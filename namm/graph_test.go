package namm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // the pure-Go backend
	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/policy"
)

var (
	goBackendOnce sync.Once
	goBackend     backends.Backend
	goBackendErr  error
)

func testBackend(tb testing.TB) backends.Backend {
	tb.Helper()
	// The sequential scheduler, as the engine uses (engine.OpenBackend): the
	// parallel one of GoMLX v0.26 deadlocks on graphs with several large
	// matmuls ready at once (the state update's DFT contractions).
	goBackendOnce.Do(func() { goBackend, goBackendErr = backends.NewWithConfig("go:ops_sequential") })
	if goBackendErr != nil {
		tb.Fatal(goBackendErr)
	}
	return goBackend
}

// randInputs returns head inputs of the given lengths, float32 and float64.
func randInputs(r *rand.Rand, lens []int) ([][][FeatDims]float32, [][][]float64) {
	x := make([][][FeatDims]float32, len(lens))
	x64 := make([][][]float64, len(lens))
	for k, s := range lens {
		x[k] = make([][FeatDims]float32, s)
		x64[k] = make([][]float64, s)
		for i := range s {
			x64[k][i] = make([]float64, FeatDims)
			for f := range FeatDims {
				x[k][i][f] = float32(r.NormFloat64())
				x64[k][i][f] = float64(x[k][i][f])
			}
		}
	}
	return x, x64
}

// TestScorerMatchesGo: the graph scores of K heads at once equal the host
// Score of each head and the float64 reference, for head lengths that are
// and are not multiples of the bucket (padding keys must not leak in).
func TestScorerMatchesGo(t *testing.T) {
	sc, err := NewScorer(testBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(21, 22))
	cases := [][]int{{1}, {7}, {256}, {257, 1}, {300, 300, 300}, {1, 40, 513, 256}, {0, 5}}
	for _, lens := range cases {
		t.Run(fmt.Sprint(lens), func(t *testing.T) {
			flat := randFlat(r, 0.3)
			p, err := ParamsFromFlat(flat)
			if err != nil {
				t.Fatal(err)
			}
			flat32 := make([]float64, len(flat))
			for i, v := range flat {
				flat32[i] = float64(float32(v))
			}
			x, x64 := randInputs(r, lens)
			got, err := sc.Score(&p, x)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(lens) {
				t.Fatalf("%d heads scored, want %d", len(got), len(lens))
			}
			for k, s := range lens {
				if len(got[k]) != s {
					t.Fatalf("head %d: %d scores, want %d", k, len(got[k]), s)
				}
				host := Score(&p, x[k])
				ref := refBAM(flat32, x64[k])
				for i := range s {
					if !relClose(float64(got[k][i]), float64(host[i]), 1e-4) || !relClose(float64(got[k][i]), ref[i], 1e-4) {
						t.Fatalf("head %d token %d: graph %v, host %v, float64 %v", k, i, got[k][i], host[i], ref[i])
					}
				}
			}
		})
	}
}

// TestScorerGroupsHeads: with a small attention budget the heads are scored
// in several executions, the last padded with empty heads; the scores do not
// change.
func TestScorerGroupsHeads(t *testing.T) {
	sc, err := NewScorer(testBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(23, 24))
	p, err := ParamsFromFlat(randFlat(r, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	x, _ := randInputs(r, []int{100, 3, 256})
	whole, err := sc.Score(&p, x)
	if err != nil {
		t.Fatal(err)
	}
	defer func(v int) { scoreMaxElems = v }(scoreMaxElems)
	scoreMaxElems = 2 * 256 * 256 // groups of 2 heads: [0 1] [2 pad]
	split, err := sc.Score(&p, x)
	if err != nil {
		t.Fatal(err)
	}
	for k := range x {
		host := Score(&p, x[k])
		for i := range host {
			if split[k][i] != whole[k][i] || !relClose(float64(split[k][i]), float64(host[i]), 1e-4) {
				t.Fatalf("head %d token %d: split %v, whole %v, host %v", k, i, split[k][i], whole[k][i], host[i])
			}
		}
	}
}

// TestScorerParamsAreInputs: a new parameter vector changes the scores
// without a new compilation (the parameters are data), and sessions on one
// backend share one scorer (its compiled graphs).
func TestScorerParamsAreInputs(t *testing.T) {
	sc, err := NewScorer(testBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := NewScorer(testBackend(t)); again != sc {
		t.Fatal("a second NewScorer on the same backend built a new scorer")
	}
	before := sc.builds.Load()
	r := rand.New(rand.NewPCG(25, 26))
	x, _ := randInputs(r, []int{50, 60})
	for trial := range 3 {
		p, err := ParamsFromFlat(randFlat(r, 0.3))
		if err != nil {
			t.Fatal(err)
		}
		got, err := sc.Score(&p, x)
		if err != nil {
			t.Fatal(err)
		}
		for k := range x {
			host := Score(&p, x[k])
			for i := range host {
				if !relClose(float64(got[k][i]), float64(host[i]), 1e-4) {
					t.Fatalf("trial %d head %d token %d: graph %v, host %v", trial, k, i, got[k][i], host[i])
				}
			}
		}
	}
	if n := sc.builds.Load() - before; n > 1 {
		t.Fatalf("%d graphs compiled for one shape and 3 parameter vectors, want at most 1", n)
	}
}

// TestPolicyGraphScorerEvictsSame drives two policies, host and graph
// scoring, through the same synthetic run: every keep must be identical.
func TestPolicyGraphScorerEvictsSame(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	flat := randFlat(r, 0.2)
	flat[4171] = 0.3 // a bias that evicts some tokens
	for _, cfg := range []Config{{Mode: Reference}, {Mode: PerHead}, {Mode: PerHead, Cap: 400}} {
		t.Run(fmt.Sprintf("%v,cap=%d", cfg.Mode, cfg.Cap), func(t *testing.T) {
			var keeps [2][][][]int
			for i := range keeps {
				p, err := New(testFile(flat), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					if err := p.UseBackend(testBackend(t)); err != nil {
						t.Fatal(err)
					}
				}
				e := newFakeEngine(t, p, 2, 3)
				e.onUpdate = func(v *policy.LayerView, keep [][]int) {
					if v.Pass.Processed()%StepEvery == 0 {
						keeps[i] = append(keeps[i], keep)
					}
				}
				e.run(p, 1100, 1600)
			}
			if len(keeps[0]) != 6 { // 3 steps x 2 layers
				t.Fatalf("%d step updates, want 6", len(keeps[0]))
			}
			evicted := false
			for s := range keeps[0] {
				host, graph := keeps[0][s], keeps[1][s]
				if len(host) != len(graph) {
					t.Fatalf("step update %d: host keeps %d heads, graph %d", s, len(host), len(graph))
				}
				for k := range host {
					evicted = true
					if !slices.Equal(host[k], graph[k]) {
						t.Fatalf("step update %d head %d: host keeps %d tokens, graph %d", s, k, len(host[k]), len(graph[k]))
					}
				}
			}
			if !evicted {
				t.Fatal("no step evicted anything: the test does not exercise eviction")
			}
		})
	}
}

func BenchmarkScoreHostVsGraph(b *testing.B) {
	const s, k = 4096, 2
	r := rand.New(rand.NewPCG(1, 1))
	p, _ := ParamsFromFlat(randFlat(r, 0.1))
	x, _ := randInputs(r, []int{s, s})
	b.Run(fmt.Sprintf("host/S=%d,K=%d", s, k), func(b *testing.B) {
		for range b.N {
			par.For(k, 0, func(h int) { Score(&p, x[h]) })
		}
	})
	b.Run(fmt.Sprintf("graph-go/S=%d,K=%d", s, k), func(b *testing.B) { benchScorer(b, testBackend(b), &p, x) })
}

// benchScorer times Scorer.Score on a backend, its compilation excluded.
func benchScorer(b *testing.B, be backends.Backend, p *Params, x [][][FeatDims]float32) {
	sc, err := NewScorer(be)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sc.Score(p, x); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := sc.Score(p, x); err != nil {
			b.Fatal(err)
		}
	}
}
