package namm

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/policy"
)

func relClose(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func TestFrameSpectrumMatchesDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200
	frames := make([]float32, n*NFFT)
	for i := range frames {
		v := r.Float64()
		if (i/NFFT)%3 == 0 {
			v = r.NormFloat64() * 10
		}
		frames[i] = float32(v)
	}
	got := make([]float32, n*Bins)
	frameMagnitudes(frames, n, make([]float32, n*NFFT), got)
	for trial := range n {
		x64 := make([]float64, NFFT)
		for k := range x64 {
			x64[k] = float64(frames[trial*NFFT+k])
		}
		want := refSpectrum(x64)
		for f := range Bins {
			if g := got[trial*Bins+f]; !relClose(float64(g), want[f], 2e-5) {
				t.Fatalf("frame %d bin %d: got %v want %v", trial, f, g, want[f])
			}
		}
	}
}

// TestStreamingFoldEqualsBatch drives one head through two steps (a
// 128-chunked first step, then a second step fed one row at a time with some
// tokens evicted in between) and compares with the batch formula.
func TestStreamingFoldEqualsBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h headFeatures
	// reference state per token (by position)
	omega := map[int][]float64{}
	tail := map[int][]float64{}
	var cache []int // positions
	start := 0
	for step := range 2 {
		rows := make([]map[int]float64, StepEvery) // step query -> pos -> value
		chunk := 128
		if step == 1 {
			chunk = 1
		}
		for c := 0; c < StepEvery; c += chunk {
			for j := range chunk {
				cache = append(cache, start+c+j)
			}
			h.grow(chunk)
			for j := range chunk {
				q := start + c + j
				row := make([]float32, len(cache))
				rows[c+j] = map[int]float64{}
				for i, p := range cache {
					if p <= q {
						row[i] = float32(r.Float64())
						rows[c+j][p] = float64(row[i])
					}
				}
				h.addRow(q%Hop, row)
				if q%Hop == Hop-1 {
					h.foldBlock()
				}
			}
		}
		for i, p := range cache {
			a := make([]float64, StepEvery)
			for q := range StepEvery {
				a[q] = rows[q][p]
			}
			newIdx := -1
			if p >= start {
				newIdx = p - start
			}
			old, tl := omega[p], tail[p]
			if old == nil {
				old, tl = make([]float64, Bins), make([]float64, Hop)
			}
			omega[p] = refStepOmega(tl, a, newIdx, old)
			tail[p] = a[StepEvery-Hop:]
			for f := range Bins {
				if got := float64(h.omega[i*Bins+f]); !relClose(got, omega[p][f], 1e-4) {
					t.Fatalf("step %d token %d bin %d: streaming %v, batch %v", step, p, f, got, omega[p][f])
				}
			}
		}
		// evict every third token, keep the newest
		var keep []int
		var kept []int
		for i, p := range cache {
			if i%3 != 1 || i == len(cache)-1 {
				keep = append(keep, i)
				kept = append(kept, p)
			}
		}
		h.gather(keep)
		cache = kept
		start += StepEvery
	}
}

func TestBAMMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, s := range []int{1, 2, 7, 64, 150, 300} {
		flat := randFlat(r, 0.3)
		p, err := ParamsFromFlat(flat)
		if err != nil {
			t.Fatal(err)
		}
		x := make([][FeatDims]float32, s)
		x64 := make([][]float64, s)
		for i := range x {
			x64[i] = make([]float64, FeatDims)
			for f := range FeatDims {
				x[i][f] = float32(r.NormFloat64())
				x64[i][f] = float64(x[i][f])
			}
		}
		// float32 parameters, as the scorer sees them
		flat32 := make([]float64, len(flat))
		for i, v := range flat {
			flat32[i] = float64(float32(v))
		}
		got := Score(&p, x)
		want := refBAM(flat32, x64)
		for i := range s {
			if !relClose(float64(got[i]), want[i], 1e-4) {
				t.Fatalf("S=%d token %d: got %v want %v", s, i, got[i], want[i])
			}
		}
	}
}

func TestParamsFlatRoundTrip(t *testing.T) {
	if NumParams != 4172 {
		t.Fatalf("NumParams = %d, want 4172", NumParams)
	}
	r := rand.New(rand.NewPCG(7, 8))
	flat := make([]float32, NumParams)
	for i := range flat {
		flat[i] = float32(r.NormFloat64())
	}
	p, err := ParamsFromFlat(flat)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Flat(), flat) {
		t.Fatal("Flat(ParamsFromFlat(v)) != v")
	}
	if p.Wqkv[1][2] != flat[96+2] || p.Wo[3][4] != flat[2496+3*50+4] || p.B != flat[4171] {
		t.Fatal("flat layout differs from W_qkv, b_qkv, W_o, b_o, w, b")
	}
	if _, err := ParamsFromFlat(flat[:100]); err == nil {
		t.Fatal("short vector accepted")
	}
	flat[5] = float32(math.NaN())
	if _, err := ParamsFromFlat(flat); err == nil {
		t.Fatal("NaN accepted")
	}
}

func TestSelectKeep(t *testing.T) {
	scores := [][]float32{
		{-1, 2, -3, -0.5, 1, -9}, // 4 negatives before the newest; newest -9 forced +inf
		{1, -2, 3, 4, -1, 0},     // 2 negatives
		{-5, -4, -3, 1, 2, 3},    // 3 negatives
	}
	keep := selectKeep(scores, Reference, 0)
	want := [][]int{{1, 3, 4, 5}, {0, 2, 3, 5}, {2, 3, 4, 5}}
	for h := range want {
		if !slices.Equal(keep[h], want[h]) {
			t.Fatalf("reference head %d: keep %v, want %v", h, keep[h], want[h])
		}
	}
	keep = selectKeep(scores, PerHead, 0)
	want = [][]int{{1, 4, 5}, {0, 2, 3, 5}, {3, 4, 5}}
	for h := range want {
		if !slices.Equal(keep[h], want[h]) {
			t.Fatalf("perhead head %d: keep %v, want %v", h, keep[h], want[h])
		}
	}
	// zero scores: 0 is not < 0, nothing dropped
	if k := selectKeep([][]float32{{0, 0, 0}, {0, 0, 0}}, Reference, 0); k != nil {
		t.Fatalf("all-zero scores evicted: %v", k)
	}
	// cap: top 3 of each head, then the shared count of negatives among them
	keep = selectKeep([][]float32{{5, 4, 3, 2, 1}, {-1, -2, 1, 2, 0}}, Reference, 3)
	want = [][]int{{0, 1, 4}, {2, 3, 4}}
	for h := range want {
		if !slices.Equal(keep[h], want[h]) {
			t.Fatalf("cap head %d: keep %v, want %v", h, keep[h], want[h])
		}
	}
}

// TestSelectKeepMatchesFullSort: on random scores with ties, NaNs and
// heads of different lengths, selectKeep keeps what the rule's plain
// statement keeps: sort every head's tokens by score (stable, newest +inf,
// NaN -inf), drop the first k (Reference: the layer's minimum count of
// negatives; PerHead: the head's own count).
func TestSelectKeepMatchesFullSort(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	full := func(scores [][]float32, mode Mode) [][]int {
		orders, negs := make([][]int, len(scores)), make([]int, len(scores))
		minNeg := math.MaxInt
		for h, sc := range scores {
			key := func(i int) float64 {
				if i == len(sc)-1 {
					return math.Inf(1)
				}
				if sc[i] != sc[i] {
					return math.Inf(-1)
				}
				return float64(sc[i])
			}
			order := make([]int, len(sc))
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool { return key(order[a]) < key(order[b]) })
			for negs[h] < len(order) && key(order[negs[h]]) < 0 {
				negs[h]++
			}
			orders[h] = order
			minNeg = min(minNeg, negs[h])
		}
		keep, any := make([][]int, len(scores)), false
		for h, order := range orders {
			k := negs[h]
			if mode == Reference {
				k = minNeg
			}
			keep[h] = append([]int(nil), order[k:]...)
			sort.Ints(keep[h])
			any = any || k > 0
		}
		if !any {
			return nil
		}
		return keep
	}
	for trial := range 300 {
		heads := 1 + r.IntN(4)
		scores := make([][]float32, heads)
		for h := range scores {
			scores[h] = make([]float32, 1+r.IntN(40))
			for i := range scores[h] {
				switch x := r.IntN(10); {
				case x == 0:
					scores[h][i] = float32(math.NaN())
				case x < 4:
					scores[h][i] = float32(r.IntN(3) - 1) // ties at -1, 0, 1
				default:
					scores[h][i] = float32(r.NormFloat64() + 0.3)
				}
			}
		}
		for _, mode := range []Mode{Reference, PerHead} {
			got, want := selectKeep(scores, mode, 0), full(scores, mode)
			if (got == nil) != (want == nil) {
				t.Fatalf("trial %d %v: keep %v, want %v", trial, mode, got, want)
			}
			for h := range want {
				if !slices.Equal(got[h], want[h]) {
					t.Fatalf("trial %d %v head %d: keep %v, want %v (scores %v)", trial, mode, h, got[h], want[h], scores[h])
				}
			}
		}
	}
}

// fakeEngine drives a policy as the engine does: per layer and KV head a
// cache of positions, random causal attention rows, keep applied after Update.
type fakeEngine struct {
	t   *testing.T
	r   *rand.Rand
	pos [][][]int32 // [L][K][S]
	// onUpdate, when set, sees every layer view and the keep returned.
	onUpdate func(v *policy.LayerView, keep [][]int)
}

// newFakeEngine drives a policy with synthetic attention rows, so a NAMM
// policy is switched to host features (the in-graph ones are tested against
// it in devfeat_test.go).
func newFakeEngine(t *testing.T, p policy.Policy, layers, heads int) *fakeEngine {
	if np, ok := p.(*Policy); ok {
		np.cfg.Features = FeaturesHost
	}
	if err := p.Reset(policy.ModelInfo{NumLayers: layers, NumKVHeads: heads, NumHeads: 2 * heads, HeadDim: 8}); err != nil {
		t.Fatal(err)
	}
	e := &fakeEngine{t: t, r: rand.New(rand.NewPCG(9, 10)), pos: make([][][]int32, layers)}
	for l := range e.pos {
		e.pos[l] = make([][]int32, heads)
	}
	return e
}

func (e *fakeEngine) pass(p policy.Policy, ps policy.Pass) {
	if !p.NeedsFor(ps).Rows {
		e.t.Fatal("NAMM did not ask for attention rows")
	}
	for l := range e.pos {
		v := &policy.LayerView{Layer: l, Pass: ps, Positions: e.pos[l], Rows: make([][][]float32, len(e.pos[l]))}
		for k := range e.pos[l] {
			for j := range ps.NewTokens {
				e.pos[l][k] = append(e.pos[l][k], int32(ps.Start+j))
			}
			v.Rows[k] = make([][]float32, ps.NewTokens)
			for j := range ps.NewTokens {
				q := int32(ps.Start + j)
				row := make([]float32, len(e.pos[l][k]))
				var sum float32
				for i, p := range e.pos[l][k] {
					if p <= q {
						row[i] = float32(e.r.ExpFloat64())
						sum += row[i]
					}
				}
				for i := range row {
					row[i] /= sum
				}
				v.Rows[k][j] = row
			}
		}
		v.Positions = e.pos[l]
		keep, err := p.Update(v)
		if err != nil {
			e.t.Fatal(err)
		}
		if e.onUpdate != nil {
			e.onUpdate(v, keep)
		}
		if keep == nil {
			continue
		}
		for k := range keep {
			if !slices.IsSorted(keep[k]) || keep[k][len(keep[k])-1] != len(e.pos[l][k])-1 {
				e.t.Fatalf("layer %d head %d: keep %v not ascending or drops the newest", l, k, keep[k])
			}
			var kept []int32
			for _, i := range keep[k] {
				kept = append(kept, e.pos[l][k][i])
			}
			e.pos[l][k] = kept
		}
	}
}

// run prefills promptLen tokens in chunks cut at multiples of 128, then
// decodes one token per pass up to total tokens.
func (e *fakeEngine) run(p policy.Policy, promptLen, total int) {
	for s := 0; s < promptLen; {
		end := min((s/128+1)*128, promptLen)
		e.pass(p, policy.Pass{Phase: policy.Prefill, Start: s, NewTokens: end - s, LastPrefill: end == promptLen, PromptLen: promptLen})
		s = end
	}
	for s := promptLen; s < total; s++ {
		e.pass(p, policy.Pass{Phase: policy.Decode, Start: s, NewTokens: 1, PromptLen: promptLen})
	}
}

func testFile(flat []float64) *File {
	f := &File{Params: make([]float32, NumParams)}
	for i, v := range flat {
		f.Params[i] = float32(v)
	}
	for b := range Bins {
		f.Norm.Mean[b] = 0.01 * float32(b)
		f.Norm.Var[b] = 0.5 + 0.1*float32(b)
	}
	return f
}

func TestZeroParamsEvictNothing(t *testing.T) {
	p, err := New(testFile(make([]float64, NumParams)), Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := newFakeEngine(t, p, 2, 2)
	steps := 0
	e.onUpdate = func(v *policy.LayerView, keep [][]int) {
		if keep != nil {
			t.Fatalf("zero parameters evicted at %d: %v", v.Pass.Processed(), keep)
		}
	}
	e.run(p, 700, 1100)
	for _, h := range p.KeptHistory() {
		steps++
		if !slices.Equal(h.PerLayer, []int{h.Processed, h.Processed}) {
			t.Fatalf("kept history %+v, want every token", h)
		}
	}
	if steps != 2 {
		t.Fatalf("%d steps in 1100 tokens, want 2 (at 512 and 1024)", steps)
	}
}

// TestRecencyParamsEvictOldest: with parameters that score cos(r f_3) -
// cos(300.5 f_3), every step keeps exactly the tokens at most 300 positions
// older than the newest.
func TestRecencyParamsEvictOldest(t *testing.T) {
	const keepAge = 300
	for _, mode := range []Mode{Reference, PerHead} {
		p, err := New(testFile(recencyFlat(keepAge)), Config{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		e := newFakeEngine(t, p, 2, 3)
		stepsSeen := map[int]bool{}
		e.onUpdate = func(v *policy.LayerView, keep [][]int) {
			end := v.Pass.Processed()
			if end%StepEvery != 0 {
				if keep != nil {
					t.Fatalf("evicted outside a step at %d", end)
				}
				return
			}
			stepsSeen[end] = true
			for k := range keep {
				var got []int32
				for _, i := range keep[k] {
					got = append(got, v.Positions[k][i])
				}
				var want []int32
				for q := end - 1 - keepAge; q < end; q++ {
					want = append(want, int32(q))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%v step %d head %d: kept %d positions %v..., want %d from %d", mode, end, k, len(got), got[:3], len(want), want[0])
				}
			}
		}
		e.run(p, 1000, 1600)
		if len(stepsSeen) != 3 {
			t.Fatalf("steps at %v, want 512, 1024, 1536", stepsSeen)
		}
		for _, h := range p.KeptHistory() {
			if !slices.Equal(h.PerLayer, []int{keepAge + 1, keepAge + 1}) {
				t.Fatalf("kept history %+v", h)
			}
		}
	}
}

// TestPolicyFeaturesMatchReference checks the whole policy's features and
// scores at each step against the batch reference in float64: buffered rows,
// tails, EMA with masks, z-score, recency, BAM, after evictions.
func TestPolicyFeaturesMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	flat := randFlat(r, 0.2)
	// a bias that evicts some tokens
	flat[4171] = 0.3
	file := testFile(flat)
	p, err := New(file, Config{})
	if err != nil {
		t.Fatal(err)
	}
	const L, K = 2, 2
	e := newFakeEngine(t, p, L, K)
	type tok struct{ omega, tail []float64 }
	state := make([][]map[int32]*tok, L) // [L][K] pos -> state
	rows := make([][][]map[int32]float64, L)
	for l := range L {
		state[l] = make([]map[int32]*tok, K)
		rows[l] = make([][]map[int32]float64, K)
		for k := range K {
			state[l][k] = map[int32]*tok{}
		}
	}
	flat32 := make([]float64, NumParams)
	for i, v := range file.Params {
		flat32[i] = float64(v)
	}
	checked := 0
	e.onUpdate = func(v *policy.LayerView, keep [][]int) {
		l, end := v.Layer, v.Pass.Processed()
		for k := range K {
			for _, row := range v.Rows[k] {
				m := map[int32]float64{}
				for i, x := range row {
					m[v.Positions[k][i]] = float64(x)
				}
				rows[l][k] = append(rows[l][k], m)
			}
		}
		if end%StepEvery != 0 {
			return
		}
		stepStart := int32(end - StepEvery)
		for k := range K {
			pos := v.Positions[k]
			x := make([][]float64, len(pos))
			for i, ps := range pos {
				st := state[l][k][ps]
				if st == nil {
					st = &tok{make([]float64, Bins), make([]float64, Hop)}
					state[l][k][ps] = st
				}
				a := make([]float64, StepEvery)
				for q := range StepEvery {
					a[q] = rows[l][k][q][ps]
				}
				newIdx := -1
				if ps >= stepStart {
					newIdx = int(ps - stepStart)
				}
				st.omega = refStepOmega(st.tail, a, newIdx, st.omega)
				st.tail = a[StepEvery-Hop:]
				x[i] = make([]float64, FeatDims)
				rec := float64(pos[len(pos)-1] - ps)
				for j := range 4 {
					fk := math.Pow(50000, -float64(j)/4)
					x[i][j] = math.Sin(rec * fk)
					x[i][4+j] = math.Cos(rec * fk)
				}
				for f := range Bins {
					sd := math.Max(math.Sqrt(float64(file.Norm.Var[f])), 1e-7)
					x[i][RecDims+f] = (st.omega[f] - float64(file.Norm.Mean[f])) / sd
				}
			}
			scores := refBAM(flat32, x)
			neg := 0
			for i, s := range scores[:len(scores)-1] {
				if s < 0 {
					neg++
				}
				_ = i
			}
			kept := len(pos)
			if keep != nil {
				kept = len(keep[k])
			}
			// heads share the count: kept >= len - neg, with equality for the head with fewest negatives
			if kept < len(pos)-neg {
				t.Fatalf("layer %d head %d step %d: kept %d of %d with only %d negative scores", l, k, end, kept, len(pos), neg)
			}
			// the kept tokens' features in the policy state match
			h := &p.feat.(*hostFeatures).heads[l][k]
			var keptPos []int32
			if keep == nil {
				keptPos = pos
			} else {
				for _, i := range keep[k] {
					keptPos = append(keptPos, pos[i])
				}
			}
			if h.n != len(keptPos) {
				t.Fatalf("state holds %d tokens, cache %d", h.n, len(keptPos))
			}
			for i, ps := range keptPos {
				for f := range Bins {
					if got := float64(h.omega[i*Bins+f]); !relClose(got, state[l][k][ps].omega[f], 1e-4) {
						t.Fatalf("layer %d head %d step %d pos %d bin %d: omega %v, reference %v", l, k, end, ps, f, got, state[l][k][ps].omega[f])
					}
				}
				checked++
			}
			// evicted tokens: only those with the lowest reference scores
			if keep != nil {
				dropped := len(pos) - len(keep[k])
				order := make([]int, len(pos)-1)
				for i := range order {
					order[i] = i
				}
				slices.SortStableFunc(order, func(a, b int) int {
					if scores[a] < scores[b] {
						return -1
					} else if scores[a] > scores[b] {
						return 1
					}
					return 0
				})
				kset := map[int]bool{}
				for _, i := range keep[k] {
					kset[i] = true
				}
				for _, i := range order[:dropped] {
					if kset[i] && math.Abs(scores[i]-scores[order[dropped-1]]) > 1e-4 {
						t.Fatalf("layer %d head %d step %d: token %d (score %v) kept among the %d lowest", l, k, end, i, scores[i], dropped)
					}
				}
			}
		}
		for k := range K {
			rows[l][k] = nil
		}
	}
	e.run(p, 900, 1100)
	if checked == 0 {
		t.Fatal("nothing checked")
	}
	hist := p.KeptHistory()
	if len(hist) != 2 || hist[0].PerLayer[0] >= 512 {
		t.Fatalf("expected evictions at both steps, history %+v", hist)
	}
}

func TestPassCrossingStepRefused(t *testing.T) {
	p, _ := New(testFile(make([]float64, NumParams)), Config{})
	e := newFakeEngine(t, p, 1, 1)
	e.pass(p, policy.Pass{Start: 0, NewTokens: 500})
	v := &policy.LayerView{Layer: 0, Pass: policy.Pass{Start: 500, NewTokens: 20},
		Positions: [][]int32{make([]int32, 520)}, Rows: [][][]float32{make([][]float32, 20)}}
	for i := range v.Rows[0] {
		v.Rows[0][i] = make([]float32, 520)
	}
	if _, err := p.Update(v); err == nil {
		t.Fatal("a pass over the step at 512 was accepted")
	}
}

func TestStatsCollector(t *testing.T) {
	p, c := NewStats()
	e := newFakeEngine(t, p, 2, 2)
	var all [][]float64 // every omega at every step, pooled
	e.onUpdate = func(v *policy.LayerView, keep [][]int) {
		if keep != nil {
			t.Fatal("stats mode evicted")
		}
		if v.Pass.Processed()%StepEvery != 0 {
			return
		}
		for k := range v.Positions {
			h := &p.feat.(*hostFeatures).heads[v.Layer][k]
			for i := range h.n {
				row := make([]float64, Bins)
				for f := range Bins {
					row[f] = float64(h.omega[i*Bins+f])
				}
				all = append(all, row)
			}
		}
	}
	e.run(p, 1024, 1100)
	mean, variance := c.Result()
	if c.Count() != int64(len(all)) || len(all) != 2*2*(512+1024) {
		t.Fatalf("count %d, pooled %d", c.Count(), len(all))
	}
	for f := range Bins {
		m := 0.0
		for _, r := range all {
			m += r[f]
		}
		m /= float64(len(all))
		v := 0.0
		for _, r := range all {
			v += (r[f] - m) * (r[f] - m)
		}
		v /= float64(len(all)) // population variance, as the reference
		if !relClose(float64(mean[f]), m, 1e-5) || !relClose(float64(variance[f]), v, 1e-4) {
			t.Fatalf("bin %d: mean %v var %v, want %v %v", f, mean[f], variance[f], m, v)
		}
	}
}

func BenchmarkStep(b *testing.B) {
	for _, s := range []int{4096, 8192} {
		b.Run(map[int]string{4096: "S=4096,K=8", 8192: "S=8192,K=8"}[s], func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			p, _ := New(testFile(randFlat(r, 0.1)), Config{})
			const K = 8
			heads := make([]headFeatures, K)
			pos := make([][]int32, K)
			for k := range heads {
				heads[k].grow(s)
				for i := range heads[k].omega {
					heads[k].omega[i] = float32(r.Float64())
				}
				for i := range s {
					pos[k] = append(pos[k], int32(i))
				}
			}
			row := make([]float32, s)
			for i := range row {
				row[i] = float32(r.Float64()) / float32(s)
			}
			b.ResetTimer()
			for range b.N {
				// one step: 512 rows folded, then scoring (no eviction: keep state size)
				par.For(K, 0, func(k int) {
					for q := range StepEvery {
						heads[k].addRow(q%Hop, row)
						if q%Hop == Hop-1 {
							heads[k].foldBlock()
						}
					}
					x := make([][FeatDims]float32, s)
					buildInputs(heads[k].omega, pos[k], &p.norm, x)
					Score(&p.params, x)
				})
			}
		})
	}
}

// BenchmarkFoldBlock: one 16-query block folded into the spectrogram EMA of
// 2,048 tokens (one head), the host features' inner step.
func BenchmarkFoldBlock(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var h headFeatures
	h.grow(2048)
	row := make([]float32, 2048)
	for i := range row {
		row[i] = float32(r.Float64())
	}
	b.ResetTimer()
	for range b.N {
		for q := range Hop {
			h.addRow(q, row)
		}
		h.foldBlock()
	}
}
