package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
)

// randomPrompt returns n token ids (BOS first) from a fixed seed.
func randomPrompt(n, vocab int) []int {
	r := rand.New(rand.NewPCG(7, 11))
	ids := make([]int, n)
	ids[0] = 1
	for i := 1; i < n; i++ {
		ids[i] = 3 + r.IntN(vocab-3)
	}
	return ids
}

func loadTiny(t *testing.T) *Engine {
	t.Helper()
	e, err := Load(fixtureDir("tiny-llama"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func generate(t *testing.T, e *Engine, p policy.Policy, prompt []int, n int) ([]int, *Session) {
	t.Helper()
	s, err := e.NewSession(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Generate(prompt, n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out, s
}

// nammFile builds an in-memory NAMM with the given flat parameters and an
// identity normalisation.
func nammFile(params []float32) *namm.File {
	f := &namm.File{Params: params}
	for i := range f.Norm.Var {
		f.Norm.Var[i] = 1
	}
	return f
}

// recencyParams scores a token cos(r f_3) - cos((keepAge+0.5) f_3): BAM's
// attention weights are zero (o = 0, h = x) and the linear head reads the
// slowest recency cosine (feature 7), so tokens older than keepAge get a
// negative score.
func recencyParams(keepAge int) []float32 {
	p := make([]float32, namm.NumParams)
	const headW = 2400 + 96 + 1600 + 50
	f3 := 1 / math.Pow(50000, 3.0/4)
	p[headW+7] = 1
	p[namm.NumParams-1] = -float32(math.Cos((float64(keepAge) + 0.5) * f3))
	return p
}

// TestNAMMZeroParamsEqualsFullCache: all-zero parameters score 0, which is
// not < 0, so nothing is evicted and the output is the full cache's.
func TestNAMMZeroParamsEqualsFullCache(t *testing.T) {
	e := loadTiny(t)
	prompt := randomPrompt(1100, e.Config.VocabSize)
	want, full := generate(t, e, nil, prompt, 6)
	p, err := namm.New(nammFile(make([]float32, namm.NumParams)), namm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got, s := generate(t, e, p, prompt, 6)
	if !slices.Equal(got, want) {
		t.Fatalf("zero-parameter NAMM changed the output: %v, full cache %v", got, want)
	}
	if a, b := s.CacheTokens(), full.CacheTokens(); !slices.Equal(a, b) {
		t.Fatalf("zero-parameter NAMM evicted tokens: %v vs full %v", a, b)
	}
}

// TestNAMMRecencyEvictsOldest: a NAMM that keeps tokens at most 300
// positions older than the newest evicts exactly the older ones at the
// steps (512 and 1024 processed tokens), in every layer and head.
func TestNAMMRecencyEvictsOldest(t *testing.T) {
	e := loadTiny(t)
	prompt := randomPrompt(1100, e.Config.VocabSize)
	p, err := namm.New(nammFile(recencyParams(300)), namm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, s := generate(t, e, p, prompt, 4)
	// Step at 1024 processed: newest position 1023 keeps positions >= 723;
	// then positions 1024..1102 arrive (76 prompt tokens + 3 decoded).
	processed := len(s.Tokens())
	for l, lc := range s.cache.Layers {
		for k, h := range lc.Heads {
			kept := h.Pos
			if len(kept) != processed-723 {
				t.Fatalf("layer %d head %d keeps %d tokens, want %d", l, k, len(kept), processed-723)
			}
			for i, pos := range kept {
				if pos != int32(723+i) {
					t.Fatalf("layer %d head %d: kept position %d at %d, want %d", l, k, pos, i, 723+i)
				}
			}
		}
	}
}

// TestBudgetAboveLengthChangesNothing: every budgeted policy with a budget
// larger than the sequence gives the full cache's output.
func TestBudgetAboveLengthChangesNothing(t *testing.T) {
	e := loadTiny(t)
	prompt := randomPrompt(300, e.Config.VocabSize)
	want, _ := generate(t, e, nil, prompt, 5)
	for _, name := range []string{"streaming", "h2o", "l2", "tova", "snapkv", "random"} {
		p, err := policy.New(name, policy.Budget{Tokens: 4096})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := generate(t, e, p, prompt, 5)
		if !slices.Equal(got, want) {
			t.Errorf("%s with a budget above the length: %v, full cache %v", name, got, want)
		}
	}
}

// TestEvictionGathersTheRightRows: after eviction the first layer's cached
// keys and values (which depend only on each token and its position) equal
// those of the full cache at the same positions, and budgets hold.
func TestEvictionGathersTheRightRows(t *testing.T) {
	e := loadTiny(t)
	prompt := randomPrompt(700, e.Config.VocabSize)
	_, full := generate(t, e, nil, prompt, 3)
	fk, fv := layerRows(full, 0)
	for _, name := range []string{"streaming", "h2o", "l2", "tova", "snapkv", "random"} {
		p, err := policy.New(name, policy.Budget{Tokens: 200})
		if err != nil {
			t.Fatal(err)
		}
		_, s := generate(t, e, p, prompt, 3)
		limit := 200
		if name == "snapkv" {
			limit += len(s.Tokens()) - len(prompt) // SnapKV compresses the prompt only
		}
		for l, n := range s.CacheTokens() {
			if n > limit {
				t.Errorf("%s: layer %d holds %d tokens, budget 200", name, l, n)
			}
		}
		k, v := layerRows(s, 0)
		if len(k[0]) >= len(fk[0]) {
			t.Errorf("%s: nothing was evicted", name)
		}
		for h := range k {
			for pos, row := range k[h] {
				if int(pos) >= len(prompt) {
					continue // generated tokens differ once the context does
				}
				if d := maxDiff(row, fk[h][pos]); d != 0 {
					t.Fatalf("%s: head %d position %d: key differs from the full cache's by %g", name, h, pos, d)
				}
				if d := maxDiff(v[h][pos], fv[h][pos]); d != 0 {
					t.Fatalf("%s: head %d position %d: value differs from the full cache's by %g", name, h, pos, d)
				}
			}
		}
	}
}

// layerRows returns, per KV head, the cached key and value rows by position.
func layerRows(s *Session, l int) (k, v []map[int32][]float32) {
	lc := s.cache.Layers[l]
	hd, c := s.e.Config.HeadDim, lc.Capacity
	kf := tensors.MustCopyFlatData[float32](lc.K)
	vf := tensors.MustCopyFlatData[float32](lc.V)
	for h, hi := range lc.Heads {
		km, vm := map[int32][]float32{}, map[int32][]float32{}
		for i, pos := range hi.Pos {
			slot := hi.Slot[i]
			km[pos] = kf[(h*c+slot)*hd : (h*c+slot+1)*hd]
			row := make([]float32, hd)
			for d := range hd {
				row[d] = vf[(h*hd+d)*c+slot]
			}
			vm[pos] = row
		}
		k, v = append(k, km), append(v, vm)
	}
	return k, v
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// randomNAMM has random BAM parameters that evict a good part of the cache
// of the fixtures, and a normalisation (variance 1e-5) that amplifies
// feature differences ~300x: a sharp test of two feature computations.
func randomNAMM() *namm.File {
	r := rand.New(rand.NewPCG(3, 5))
	params := make([]float32, namm.NumParams)
	for i := range params {
		params[i] = float32(0.3 * r.NormFloat64())
	}
	f := nammFile(params)
	for i := range f.Norm.Mean {
		f.Norm.Mean[i], f.Norm.Var[i] = 0.002, 1e-5
	}
	return f
}

// TestNAMMGraphFeaturesMatchHost: the NAMM with its spectrogram computed
// inside the layer graph (the default) keeps exactly the tokens that the
// host computation (features=host, tested against a float64 STFT/EMA) keeps,
// with random BAM parameters, over a prompt whose last chunk ends mid-block
// and decoding across NAMM steps; and both generate the same tokens.
func TestNAMMGraphFeaturesMatchHost(t *testing.T) {
	e := loadTiny(t)
	prompt := randomPrompt(1100, e.Config.VocabSize)
	f := randomNAMM()
	run := func(host bool) ([]int, *Session) {
		feat := namm.FeaturesGraph
		if host {
			feat = namm.FeaturesHost
		}
		p, err := namm.New(f, namm.Config{Features: feat})
		if err != nil {
			t.Fatal(err)
		}
		return generate(t, e, p, prompt, 30)
	}
	wantOut, want := run(true)
	gotOut, got := run(false)
	if want.Stats().Evictions == 0 {
		t.Fatal("the test parameters evict nothing; the comparison would be empty")
	}
	if !slices.Equal(gotOut, wantOut) {
		t.Fatalf("graph features generated %v, host features %v", gotOut, wantOut)
	}
	if d := keptDifference(got, want); d != "" {
		t.Fatalf("graph features against host features: %s", d)
	}
	t.Logf("kept per layer: %v of %d", got.CacheTokens(), len(got.Tokens()))
}

// TestOneCapacityChangesNothing: keeping every layer's cache at one
// capacity (fuse mode's bookkeeping, which GPUs use) with layers of
// different sizes (StreamingLLM at a different budget per layer, evicting
// every pass) gives exactly the output and the kept tokens of per-layer
// capacities: the spare slots are empty and masked.
func TestOneCapacityChangesNothing(t *testing.T) {
	e := loadTiny(t)
	prompt := randomPrompt(1200, e.Config.VocabSize)
	perLayer := make([]int, e.Config.NumLayers)
	for l := range perLayer {
		perLayer[l] = 150 + 400*(l%3) // capacity buckets 512, 768, 1024
	}
	run := func(one bool) ([]int, *Session) {
		e.oneCapacity = one
		defer func() { e.oneCapacity = false }()
		p, err := policy.New("streaming", policy.Budget{PerLayer: perLayer})
		if err != nil {
			t.Fatal(err)
		}
		return generate(t, e, p, prompt, 12)
	}
	want, per := run(false)
	got, one := run(true)
	if !slices.Equal(got, want) {
		t.Fatalf("one capacity generated %v, per-layer capacities %v", got, want)
	}
	caps := map[int]bool{}
	for l := range one.cache.Layers {
		caps[one.cache.Layers[l].Capacity] = true
	}
	if d := keptDifference(one, per); d != "" {
		t.Fatalf("one capacity against per-layer capacities: %s", d)
	}
	if len(caps) != 1 {
		t.Fatalf("one-capacity mode left capacities %v", caps)
	}
	perCaps := map[int]bool{}
	for l := range per.cache.Layers {
		perCaps[per.cache.Layers[l].Capacity] = true
	}
	if len(perCaps) < 2 {
		t.Fatalf("per-layer budgets gave one capacity %v: the test compares nothing", perCaps)
	}
}

// keptDifference describes the first layer and head whose kept positions
// differ between two sessions of one model, or returns "".
func keptDifference(a, b *Session) string {
	for l := range a.cache.Layers {
		for k := range a.cache.Layers[l].Heads {
			pa, pb := a.cache.Layers[l].Heads[k].Pos, b.cache.Layers[l].Heads[k].Pos
			if !slices.Equal(pa, pb) {
				return fmt.Sprintf("layer %d head %d keeps %d tokens against %d (first %v against %v)", l, k, len(pa), len(pb), pa[:min(5, len(pa))], pb[:min(5, len(pb))])
			}
		}
	}
	return ""
}
