package policy

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func mustNew(t *testing.T, spec string, b Budget) Policy {
	t.Helper()
	p, err := New(spec, b)
	if err != nil {
		t.Fatalf("New(%q, %+v): %v", spec, b, err)
	}
	return p
}

func oneLayer(kv int) ModelInfo { return ModelInfo{NumLayers: 1, NumKVHeads: kv, NumHeads: kv} }

func span(from, to int) []int32 {
	var out []int32
	for i := from; i < to; i++ {
		out = append(out, int32(i))
	}
	return out
}

func ints(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func update(t *testing.T, p Policy, v *LayerView) [][]int {
	t.Helper()
	keep, err := p.Update(v)
	if err != nil {
		t.Fatalf("%s: Update: %v", p.Name(), err)
	}
	if err := checkKeep(keep, viewLens(v)); err != nil {
		t.Fatalf("%s: %v", p.Name(), err)
	}
	return keep
}

func TestFullKeepsEverything(t *testing.T) {
	p := mustNew(t, "full", Budget{})
	if n := p.NeedsFor(Pass{Phase: Prefill, NewTokens: 128}); n.Any() {
		t.Fatalf("full needs %+v", n)
	}
	if keep := update(t, p, &LayerView{Positions: [][]int32{span(0, 5000)}}); keep != nil {
		t.Fatalf("full evicted: %v", keep)
	}
}

func TestStreamingKeepsSinksAndRecent(t *testing.T) {
	p := mustNew(t, "streaming", Budget{Tokens: 8})
	_ = p.Reset(oneLayer(2))
	v := &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 20, LastPrefill: true, PromptLen: 20},
		Positions: [][]int32{span(0, 20), span(0, 20)}}
	want := []int{0, 1, 2, 3, 16, 17, 18, 19}
	keep := update(t, p, v)
	if !reflect.DeepEqual(keep, [][]int{want, want}) {
		t.Fatalf("streaming keep = %v, want %v on both heads", keep, want)
	}
}

func TestH2OKeepsHeavyHitterAcrossPasses(t *testing.T) {
	p := mustNew(t, "h2o:recent=2", Budget{Tokens: 4})
	_ = p.Reset(oneLayer(1))
	// Prefill 6 tokens: token 1 draws the most attention, token 3 the second.
	v := &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 6, LastPrefill: true, PromptLen: 6},
		Positions: [][]int32{span(0, 6)}, ColSums: [][]float32{{0.5, 2.0, 0.2, 1.0, 0.1, 0.1}}}
	keep := update(t, p, v)
	if !reflect.DeepEqual(keep, [][]int{{1, 3, 4, 5}}) {
		t.Fatalf("h2o prefill keep = %v, want [[1 3 4 5]]", keep)
	}
	// Decode: this step alone favours token 4 (0.5) over 3 (0.2) and 1 (0),
	// but accumulated scores are 2.0, 1.2, 0.6: tokens 1 and 3 stay.
	pos := []int32{1, 3, 4, 5, 6}
	v = &LayerView{Pass: Pass{Phase: Decode, Start: 6, NewTokens: 1, PromptLen: 6},
		Positions: [][]int32{pos}, ColSums: [][]float32{{0, 0.2, 0.5, 0.1, 0.1}}}
	keep = update(t, p, v)
	if !reflect.DeepEqual(keep, [][]int{{0, 1, 3, 4}}) { // positions 1, 3, 5, 6
		t.Fatalf("h2o decode keep = %v, want [[0 1 3 4]] (positions 1 3 5 6)", keep)
	}
}

func TestKNormDropsLargeNormKeys(t *testing.T) {
	for _, name := range []string{"l2", "knorm"} {
		p := mustNew(t, name, Budget{Tokens: 3})
		_ = p.Reset(oneLayer(1))
		v := &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 6, LastPrefill: true, PromptLen: 6},
			Positions: [][]int32{span(0, 6)}, KeyNorms: [][]float32{{1, 9, 2, 8, 3, 7}}}
		if keep := update(t, p, v); !reflect.DeepEqual(keep, [][]int{{0, 2, 5}}) {
			t.Fatalf("%s prefill keep = %v, want [[0 2 5]]", name, keep)
		}
		// Cached norms are now [1 2 7]; the new token has norm 0.5. Position
		// 5 (norm 7, remembered from the last pass) must go.
		v = &LayerView{Pass: Pass{Phase: Decode, Start: 6, NewTokens: 1, PromptLen: 6},
			Positions: [][]int32{{0, 2, 5, 6}}, KeyNorms: [][]float32{{0.5}}}
		if keep := update(t, p, v); !reflect.DeepEqual(keep, [][]int{{0, 1, 3}}) {
			t.Fatalf("%s decode keep = %v, want [[0 1 3]]", name, keep)
		}
	}
}

func TestTOVAAveragesOverHeads(t *testing.T) {
	p := mustNew(t, "tova", Budget{Tokens: 3})
	_ = p.Reset(oneLayer(2))
	// Head means: [0.275 0.075 0.15 0.3 0.2]: both heads keep tokens 0 and 3;
	// head 0 alone would keep 0 and 2, head 1 alone 1 and 3.
	v := &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 5, LastPrefill: true, PromptLen: 5},
		Positions: [][]int32{span(0, 5), span(0, 5)},
		LastRow:   [][]float32{{0.5, 0.05, 0.25, 0.0, 0.2}, {0.05, 0.1, 0.05, 0.6, 0.2}}}
	keep := update(t, p, v)
	if !reflect.DeepEqual(keep, [][]int{{0, 3, 4}, {0, 3, 4}}) {
		t.Fatalf("tova keep = %v, want [[0 3 4] [0 3 4]]", keep)
	}
}

// TestSnapKVPoolingAcrossChunks: the observation window (4 queries) spans two
// prefill chunks; its summed attention peaks on token 8, and pooling (kernel
// 3) keeps the peak's neighbours. Token 12 wins if only the last chunk's
// window queries were counted.
func TestSnapKVPoolingAcrossChunks(t *testing.T) {
	p := mustNew(t, "snapkv:window=4,kernel=3", Budget{Tokens: 7})
	_ = p.Reset(oneLayer(1))
	row := func(q int, peaks map[int]float32) []float32 {
		r := make([]float32, q+1)
		rest := float32(1)
		for _, a := range peaks {
			rest -= a
		}
		for i := range r {
			r[i] = rest / float32(q+1)
		}
		for i, a := range peaks {
			r[i] += a
		}
		return r
	}
	pad := func(r []float32, n int) []float32 { return append(r, make([]float32, n-len(r))...) }
	first := Pass{Phase: Prefill, Start: 0, NewTokens: 18, PromptLen: 20}
	if !p.NeedsFor(first).Rows {
		t.Fatal("snapkv does not ask for Rows in a chunk holding window queries")
	}
	if p.NeedsFor(Pass{Phase: Prefill, Start: 0, NewTokens: 10, PromptLen: 40}).Rows {
		t.Fatal("snapkv asks for Rows in a chunk before the window")
	}
	rows := make([][]float32, 18)
	for q := range 18 {
		rows[q] = pad(row(q, nil), 18)
	}
	rows[16] = pad(row(16, map[int]float32{8: 0.3}), 18)
	rows[17] = pad(row(17, map[int]float32{8: 0.3}), 18)
	if keep := update(t, p, &LayerView{Pass: first, Positions: [][]int32{span(0, 18)}, Rows: [][][]float32{rows}}); keep != nil {
		t.Fatalf("snapkv evicted before the end of prefill: %v", keep)
	}
	last := Pass{Phase: Prefill, Start: 18, NewTokens: 2, LastPrefill: true, PromptLen: 20}
	rows = [][]float32{
		pad(row(18, map[int]float32{12: 0.4, 8: 0.25}), 20),
		row(19, map[int]float32{12: 0.4, 8: 0.25}),
	}
	keep := update(t, p, &LayerView{Pass: last, Positions: [][]int32{span(0, 20)}, Rows: [][][]float32{rows}})
	if want := [][]int{{7, 8, 9, 16, 17, 18, 19}}; !reflect.DeepEqual(keep, want) {
		t.Fatalf("snapkv keep = %v, want %v", keep, want)
	}
	// Decoding evicts nothing by default.
	dec := Pass{Phase: Decode, Start: 20, NewTokens: 1, PromptLen: 20}
	if p.NeedsFor(dec).Any() {
		t.Fatalf("snapkv needs %+v in decoding", p.NeedsFor(dec))
	}
	pos := append([]int32{7, 8, 9, 16, 17, 18, 19}, 20)
	if keep := update(t, p, &LayerView{Pass: dec, Positions: [][]int32{pos}}); keep != nil {
		t.Fatalf("snapkv evicted in decoding: %v", keep)
	}
}

func TestFastGenProfilesHeads(t *testing.T) {
	p := mustNew(t, "fastgen", Budget{})
	info := oneLayer(3)
	info.SpecialTokens = map[int]bool{100: true}
	info.Punctuation = func(id int) bool { return id == 46 }
	_ = p.Reset(info)
	const n = 10
	tokens := []int{100, 5, 6, 7, 8, 46, 9, 10, 11, 12} // BOS at 0, "." at 5
	rows := func(f func(q, i int) float32) [][]float32 {
		out := make([][]float32, n)
		for q := range n {
			out[q] = make([]float32, n)
			var sum float32
			for i := 0; i <= q; i++ {
				out[q][i] = f(q, i)
				sum += out[q][i]
			}
			for i := range out[q] {
				out[q][i] /= sum
			}
		}
		return out
	}
	bosOnly := rows(func(q, i int) float32 { return map[bool]float32{true: 1, false: 0}[i == 0] })
	bosPunct := rows(func(q, i int) float32 {
		switch {
		case i == 0:
			return 0.6
		case i == 5:
			return 0.39
		}
		return 0.01 / float32(q)
	})
	uniform := rows(func(q, i int) float32 { return 1 })
	all := [][][]float32{bosOnly, bosPunct, uniform}
	colSums := make([][]float32, 3)
	for k := range all {
		colSums[k] = make([]float32, n)
		for _, r := range all[k] {
			for i, a := range r {
				colSums[k][i] += a
			}
		}
	}
	pass := Pass{Phase: Prefill, NewTokens: n, LastPrefill: true, PromptLen: n}
	if !p.NeedsFor(pass).Rows || !p.NeedsFor(pass).ColSums {
		t.Fatalf("fastgen needs %+v at the last prefill chunk", p.NeedsFor(pass))
	}
	v := &LayerView{Pass: pass, Tokens: tokens, Positions: [][]int32{span(0, n), span(0, n), span(0, n)}, Rows: all, ColSums: colSums}
	keep := update(t, p, v)
	fg := p.(*FastGen)
	if got := fg.Profile(0); !reflect.DeepEqual(got, []string{"special", "special+punct", "full"}) {
		t.Fatalf("fastgen profile = %v", got)
	}
	want := [][]int{{0, 9}, {0, 5, 9}, ints(0, n)}
	if !reflect.DeepEqual(keep, want) {
		t.Fatalf("fastgen keep = %v, want %v", keep, want)
	}
	// Decoding: the special head drops position 9 (no longer newest).
	tokens = append(tokens, 13)
	dec := Pass{Phase: Decode, Start: n, NewTokens: 1, PromptLen: n}
	v = &LayerView{Pass: dec, Tokens: tokens,
		Positions: [][]int32{{0, 9, 10}, {0, 5, 9, 10}, span(0, n+1)},
		ColSums:   [][]float32{{1, 0, 0}, {0.5, 0.5, 0, 0}, make([]float32, n+1)}}
	keep = update(t, p, v)
	want = [][]int{{0, 2}, {0, 1, 3}, ints(0, n+1)}
	if !reflect.DeepEqual(keep, want) {
		t.Fatalf("fastgen decode keep = %v, want %v", keep, want)
	}
}

// TestFastGenFrequentAndLocal: a head needing the frequent and local tiers.
func TestFastGenFrequentAndLocal(t *testing.T) {
	p := mustNew(t, "fastgen:threshold=0.9,local=0.3,frequent=0.2", Budget{})
	_ = p.Reset(oneLayer(1))
	const n = 10
	// No special tokens. Both profile queries (8 and 9) put 0.45 on token 2
	// and 0.2 on token 3 (the two heaviest by accumulated attention, so
	// frequent = ceil(0.2*10) = 2 keeps them) and 0.175 on themselves and
	// their predecessor (inside the local window, positions >= 7).
	r := func(q int) []float32 {
		row := make([]float32, n)
		row[2], row[3] = 0.45, 0.2
		row[q-1] += 0.175
		row[q] += 0.175
		return row
	}
	rows := [][]float32{r(8), r(9)}
	// Mass kept by special+punct+frequent: 0.65 < 0.9; adding local
	// recovers 1.0 for both queries.
	cs := make([]float32, n)
	for _, row := range rows {
		for i, a := range row {
			cs[i] += a
		}
	}
	v := &LayerView{Pass: Pass{Phase: Prefill, Start: 8, NewTokens: 2, LastPrefill: true, PromptLen: n},
		Tokens: make([]int, n), Positions: [][]int32{span(0, n)}, Rows: [][][]float32{rows}, ColSums: [][]float32{cs}}
	keep := update(t, p, v)
	if got := p.(*FastGen).Profile(0)[0]; got != "special+punct+frequent+local" {
		t.Fatalf("profile = %s", got)
	}
	if want := [][]int{{2, 3, 7, 8, 9}}; !reflect.DeepEqual(keep, want) {
		t.Fatalf("keep = %v, want %v", keep, want)
	}
}

func TestRandomIsSeededAndUniform(t *testing.T) {
	run := func(spec string) [][]int {
		p := mustNew(t, spec, Budget{Tokens: 5})
		_ = p.Reset(oneLayer(2))
		return update(t, p, &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 20, LastPrefill: true, PromptLen: 20},
			Positions: [][]int32{span(0, 20), span(0, 20)}})
	}
	a, b, c := run("random:seed=7"), run("random:seed=7"), run("random:seed=8")
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different keeps: %v vs %v", a, b)
	}
	if reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 7 and 8 gave the same keep %v", a)
	}
	// Uniformity: each of the 19 older tokens is kept with probability 4/19.
	p := mustNew(t, "random:seed=1", Budget{Tokens: 5})
	_ = p.Reset(oneLayer(1))
	counts := make([]int, 19)
	const trials = 4000
	for range trials {
		keep := update(t, p, &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 20, LastPrefill: true, PromptLen: 20},
			Positions: [][]int32{span(0, 20)}})
		for _, i := range keep[0][:4] {
			counts[i]++
		}
	}
	want := float64(trials) * 4 / 19
	sd := math.Sqrt(want * (1 - 4.0/19))
	for i, c := range counts {
		if math.Abs(float64(c)-want) > 5*sd {
			t.Errorf("token %d kept %d times, want %.0f ± %.0f", i, c, want, 5*sd)
		}
	}
}

func TestCheckLayers(t *testing.T) {
	if err := (Budget{PerLayer: []int{4, 4}}).CheckLayers(3); err == nil || !strings.Contains(err.Error(), "2 per-layer budgets for a model of 3 layers") {
		t.Errorf("2 budgets for 3 layers: %v", err)
	}
	for _, b := range []Budget{{PerLayer: []int{4, 4, 4}}, {Tokens: 8}, {}} {
		if err := b.CheckLayers(3); err != nil {
			t.Errorf("%+v: %v", b, err)
		}
	}
}

func TestBadSpecsAndBudgets(t *testing.T) {
	bad := []struct {
		spec    string
		budget  Budget
		mention string
	}{
		{"nope", Budget{Tokens: 10}, "unknown memory policy"},
		{"h2o", Budget{Tokens: -1}, "budget"},
		{"h2o", Budget{Ratio: 1.5}, "ratio"},
		{"h2o", Budget{Ratio: -0.1}, "ratio"},
		{"h2o", Budget{PerLayer: []int{4, 0}}, "layer 1"},
		{"h2o", Budget{}, "needs a budget"},
		{"h2o:foo=1", Budget{Tokens: 10}, `"foo"`},
		{"h2o:recent=x", Budget{Tokens: 10}, "recent"},
		{"h2o:recent=1,recent_ratio=0.5", Budget{Tokens: 10}, "not both"},
		{"h2o:recent_ratio=2", Budget{Tokens: 10}, "recent_ratio"},
		{"streaming:sinks=-1", Budget{Tokens: 10}, "sinks"},
		{"snapkv:kernel=4", Budget{Tokens: 10}, "kernel"},
		{"snapkv:window=0", Budget{Tokens: 10}, "window"},
		{"snapkv:decode=2", Budget{Tokens: 10}, "decode"},
		{"fastgen:threshold=0", Budget{}, "threshold"},
		{"fastgen:threshold=1.1", Budget{}, "threshold"},
		{"fastgen:local=-0.1", Budget{}, "local"},
		{"fastgen", Budget{Tokens: 10}, "no budget"},
		{"full", Budget{Tokens: 10}, "no budget"},
		{"full:x=1", Budget{}, `"x"`},
		{"tova:recent=3", Budget{Tokens: 10}, "recent"},
		{"random:seed=-1", Budget{Tokens: 10}, "seed"},
		{"knorm:recent=-2", Budget{Tokens: 10}, "recent"},
	}
	for _, b := range bad {
		_, err := New(b.spec, b.budget)
		if err == nil {
			t.Errorf("New(%q, %+v) accepted bad input", b.spec, b.budget)
			continue
		}
		if !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), b.mention) {
			t.Errorf("New(%q, %+v) = %v; want ErrBadOption mentioning %q", b.spec, b.budget, err, b.mention)
		}
	}
	if _, err := New("h2o", Budget{Ratio: 1}); err != nil {
		t.Errorf("ratio 1 rejected: %v", err)
	}
}

func TestUpdateBeforeResetIsAnError(t *testing.T) {
	for _, name := range Names() {
		spec, b := name, Budget{Tokens: 2}
		if c := invariantCases[name]; c != nil {
			spec, b = c[0].spec, c[0].budget
		}
		p, err := New(spec, b)
		if err != nil {
			p, err = New(spec, Budget{})
		}
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		v := &LayerView{Layer: 5, Pass: Pass{Phase: Prefill, NewTokens: 4, LastPrefill: true, PromptLen: 4},
			Positions: [][]int32{span(0, 4)}, ColSums: [][]float32{make([]float32, 4)},
			LastRow: [][]float32{make([]float32, 4)}, KeyNorms: [][]float32{make([]float32, 4)},
			Rows: [][][]float32{{make([]float32, 4)}}}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: Update without Reset panicked: %v", name, r)
				}
			}()
			_, _ = p.Update(v)
		}()
	}
}

func TestMissingStatisticIsAnError(t *testing.T) {
	for _, spec := range []string{"h2o", "l2", "tova", "snapkv"} {
		p := mustNew(t, spec, Budget{Tokens: 2})
		_ = p.Reset(oneLayer(1))
		v := &LayerView{Pass: Pass{Phase: Prefill, NewTokens: 40, LastPrefill: true, PromptLen: 40}, Positions: [][]int32{span(0, 40)}}
		if _, err := p.Update(v); err == nil {
			t.Errorf("%s: Update without its statistics succeeded", spec)
		}
	}
}
