package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func seed(v uint64) *uint64 { return &v }

// refProbs is an independent float64 re-computation of the filtered,
// renormalised distribution: full sort, then transformers' warpers in their
// order (temperature, top-k, top-p, min-p).
func refProbs(logits []float32, counts map[int]int, p Params) []float64 {
	n := len(logits)
	z := make([]float64, n)
	for i, v := range logits {
		z[i] = float64(v)
		if c := counts[i]; c > 0 {
			z[i] -= float64(c)*p.FrequencyPenalty + p.PresencePenalty
		}
		z[i] /= p.Temperature
	}
	m := slices.Max(z)
	var sum float64
	prob := make([]float64, n)
	for i := range z {
		prob[i] = math.Exp(z[i] - m)
		sum += prob[i]
	}
	for i := range prob {
		prob[i] /= sum
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return prob[order[a]] > prob[order[b]] })
	kept := map[int]bool{}
	cum := 0.0
	for rank, i := range order {
		if p.TopK > 0 && rank >= p.TopK {
			break
		}
		kept[i] = true
		cum += prob[i]
		if p.TopP > 0 && p.TopP < 1 && cum >= p.TopP {
			break
		}
	}
	if p.MinP > 0 {
		top := prob[order[0]]
		for i := range kept {
			if prob[i] < p.MinP*top {
				delete(kept, i)
			}
		}
	}
	out := make([]float64, n)
	sum = 0
	for i := range kept {
		sum += prob[i]
	}
	for i := range kept {
		out[i] = prob[i] / sum
	}
	return out
}

func near(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("%s: p[%d] = %.12f, want %.12f (all: %v vs %v)", what, i, got[i], want[i], got, want)
		}
	}
}

// Hand-computed: logits [2, 1, 0, -1] at temperature 1 are
// softmax = [0.643914, 0.236883, 0.087144, 0.032059].
func TestProbsByHand(t *testing.T) {
	logits := []float32{2, 1, 0, -1}
	e := []float64{math.Exp(2), math.Exp(1), 1, math.Exp(-1)}
	all := e[0] + e[1] + e[2] + e[3]
	two := e[0] + e[1]
	cases := []struct {
		p    Params
		want []float64
	}{
		{Params{Temperature: 1}, []float64{e[0] / all, e[1] / all, e[2] / all, e[3] / all}},
		{Params{Temperature: 1, TopK: 2}, []float64{e[0] / two, e[1] / two, 0, 0}},
		{Params{Temperature: 1, TopP: 0.7}, []float64{e[0] / two, e[1] / two, 0, 0}}, // 0.644 < 0.7 <= 0.881
		{Params{Temperature: 1, TopP: 0.6}, []float64{1, 0, 0, 0}},                   // 0.644 >= 0.6
		{Params{Temperature: 1, MinP: 0.2}, []float64{e[0] / two, e[1] / two, 0, 0}}, // cut at 0.129
		{Params{Temperature: 0.5}, func() []float64 { // logits doubled
			s := math.Exp(4) + math.Exp(2) + 1 + math.Exp(-2)
			return []float64{math.Exp(4) / s, math.Exp(2) / s, 1 / s, math.Exp(-2) / s}
		}()},
	}
	for _, c := range cases {
		near(t, "", New(c.p).Probs(logits), c.want, 1e-12)
	}
}

func TestProbsMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + r.IntN(300)
		logits := make([]float32, n)
		for i := range logits {
			logits[i] = float32(r.NormFloat64() * 3)
			if r.IntN(10) == 0 && i > 0 {
				logits[i] = logits[i-1] // ties
			}
		}
		p := Params{Temperature: 0.1 + r.Float64()*1.9, FrequencyPenalty: r.Float64()*4 - 2, PresencePenalty: r.Float64()*4 - 2}
		if r.IntN(2) == 0 {
			p.TopK = r.IntN(n + 3)
		}
		if r.IntN(2) == 0 {
			p.TopP = r.Float64()
		}
		if r.IntN(2) == 0 {
			p.MinP = r.Float64() * 0.5
		}
		s := New(p)
		for range r.IntN(5) { // a few generated tokens for the penalties
			s.counts[r.IntN(n)]++
		}
		got := s.Probs(logits)
		want := refProbs(logits, s.counts, p)
		for i := range want {
			// A token exactly at a top-p boundary may fall on either side
			// by rounding; the reference and ours then differ wholesale.
			if math.Abs(got[i]-want[i]) > 1e-9 {
				t.Fatalf("trial %d (n=%d, %+v): p[%d] = %v, want %v", trial, n, p, i, got[i], want[i])
			}
		}
	}
}

// Chi-square goodness of fit of 40,000 draws against the distribution.
func TestDrawsFollowProbs(t *testing.T) {
	logits := []float32{1.5, 0.2, -0.3, 1.1, 0.9, -2, 0.4}
	for _, p := range []Params{
		{Temperature: 1},
		{Temperature: 0.7, TopP: 0.9},
		{Temperature: 1.3, TopK: 4, MinP: 0.1},
	} {
		p.Seed = seed(7)
		s := New(p)
		probs := s.Probs(logits)
		const draws = 40000
		counts := make([]int, len(logits))
		for range draws {
			counts[s.draw(logits)]++
		}
		chi2, df := 0.0, -1
		for i, pr := range probs {
			if pr == 0 {
				if counts[i] != 0 {
					t.Fatalf("%+v: token %d has probability 0 but was drawn %d times", p, i, counts[i])
				}
				continue
			}
			d := float64(counts[i]) - draws*pr
			chi2 += d * d / (draws * pr)
			df++
		}
		// 0.999 quantiles of chi-square for df 1..6.
		crit := []float64{0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46}[df]
		if chi2 > crit {
			t.Errorf("%+v: chi-square %.2f > %.2f (df %d), counts %v, probs %v", p, chi2, crit, df, counts, probs)
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	logits := make([]float32, 1000)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range logits {
		logits[i] = float32(r.NormFloat64())
	}
	run := func(p Params) []int {
		s := New(p)
		var out []int
		for range 50 {
			out = append(out, s.Next(logits).ID)
		}
		return out
	}
	p := Params{Temperature: 1, TopP: 0.95, Seed: seed(42), FrequencyPenalty: 0.5}
	a, b := run(p), run(p)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different tokens:\n%v\n%v", a, b)
	}
	p.Seed = seed(43)
	if c := run(p); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave the same 50 tokens")
	}
}

func TestGreedyAndPenalties(t *testing.T) {
	logits := []float32{1, 3, 3, 0}
	s := New(Params{})
	if c := s.Next(logits); c.ID != 1 {
		t.Fatalf("greedy picked %d, want 1 (first of the tied maxima)", c.ID)
	}
	// A denormal temperature is greedy, not a division overflowing to NaN.
	if c := New(Params{Temperature: 1e-320}).Next([]float32{1, 2, 5, 3}); c.ID != 2 {
		t.Fatalf("temperature 1e-320 picked %d, want 2", c.ID)
	}
	// Presence 1.5 lowers token 1 to 1.5: token 2 wins.
	s = New(Params{PresencePenalty: 1.5})
	if a, b := s.Next(logits).ID, s.Next(logits).ID; a != 1 || b != 2 {
		t.Fatalf("presence penalty: picked %d then %d, want 1 then 2", a, b)
	}
	// Frequency 0.4: token 1 drops by 0.4 per use, token 2 likewise:
	// 1, 2, 1 (3-0.4 = 2.6 vs 2.6: first), 2, ...
	s = New(Params{FrequencyPenalty: 0.4})
	var got []int
	for range 4 {
		got = append(got, s.Next(logits).ID)
	}
	if !slices.Equal(got, []int{1, 2, 1, 2}) {
		t.Fatalf("frequency penalty: %v", got)
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{0.5, 2, -1, 2, 1}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v))
	}
	s := New(Params{TopLogprobs: 3})
	c := s.Next(logits)
	if want := 2 - math.Log(sum); c.ID != 1 || math.Abs(c.Logprob-want) > 1e-12 {
		t.Fatalf("chose %d with %v, want 1 with %v", c.ID, c.Logprob, want)
	}
	wantIDs := []int{1, 3, 4}
	for j, tl := range c.Top {
		if tl.ID != wantIDs[j] || math.Abs(tl.Logprob-(float64(logits[tl.ID])-math.Log(sum))) > 1e-12 {
			t.Fatalf("top %v, want ids %v", c.Top, wantIDs)
		}
	}
	if len(c.Top) != 3 {
		t.Fatalf("%d top logprobs, want 3", len(c.Top))
	}
	if c := New(Params{Logprobs: true}).Next(logits); math.Abs(c.Logprob-(2-math.Log(sum))) > 1e-12 || c.Top != nil {
		t.Fatalf("Logprobs alone: %+v", c)
	}
}

func TestQuickselect(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		n := 1 + r.IntN(50)
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(r.IntN(8)) // many ties
		}
		sorted := slices.Clone(xs)
		sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
		k := r.IntN(n)
		if got := quickselect(slices.Clone(xs), k); got != sorted[k] {
			t.Fatalf("quickselect(%v, %d) = %v, want %v", xs, k, got, sorted[k])
		}
	}
}

func TestValidate(t *testing.T) {
	bad := map[string]Params{
		"temperature": {Temperature: 2.5}, "top_p": {TopP: 1.5}, "top_k": {TopK: -1}, "min_p": {MinP: -0.1},
		"frequency_penalty": {FrequencyPenalty: 3}, "presence_penalty": {PresencePenalty: math.NaN()},
		"top_logprobs": {TopLogprobs: 21},
	}
	for field, p := range bad {
		err := p.Validate()
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%+v: got %v, want an error naming %s", p, err, field)
		}
	}
	if err := (Params{Temperature: 1, TopP: 1, TopK: 5, MinP: 0.05, TopLogprobs: 20}).Validate(); err != nil {
		t.Error(err)
	}
}

// Greedy picks with penalties equal the first maximum of the penalised
// logits (refProbs' formula), ties between penalised and unpenalised
// tokens included.
func TestGreedyPenalisedMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		logits := make([]float32, 1+r.IntN(40))
		for i := range logits {
			logits[i] = float32(r.IntN(7)) / 2 // many ties
		}
		p := Params{FrequencyPenalty: float64(r.IntN(5)) / 2, PresencePenalty: float64(r.IntN(5)-2) / 2}
		s := New(p)
		counts := map[int]int{}
		for range 6 {
			best, bv := 0, math.Inf(-1)
			for i, x := range logits {
				v := float64(x)
				if c := counts[i]; c > 0 {
					v -= float64(c)*p.FrequencyPenalty + p.PresencePenalty
				}
				if v > bv {
					best, bv = i, v
				}
			}
			if got := s.Next(logits).ID; got != best {
				t.Fatalf("trial %d, %+v, logits %v, counts %v: picked %d, want %d", trial, p, logits, counts, got, best)
			}
			counts[best]++
		}
	}
}

// Top-p over a large vocabulary, with a nucleus of a few tokens and of
// hundreds (beyond the first candidates looked at), equals the reference's
// full sort.
func TestTopPLargeVocabulary(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, 4000)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	for _, temp := range []float64{0.3, 1, 2} {
		p := Params{Temperature: temp, TopP: 0.95}
		got := New(p).Probs(logits)
		kept := 0
		for _, v := range got {
			if v > 0 {
				kept++
			}
		}
		near(t, "top-p 0.95", got, refProbs(logits, nil, p), 1e-9)
		if temp == 2 && kept <= 128 {
			t.Errorf("temperature 2: a nucleus of %d tokens does not exercise the candidates' growth", kept)
		}
	}
}

// BenchmarkNext: one token from a 32,000-entry vocabulary.
func BenchmarkNext(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	logits := make([]float32, 32000)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	for name, p := range map[string]Params{
		"greedy": {}, "temperature": {Temperature: 0.8, Seed: seed(1)}, "top_p": {Temperature: 0.8, TopP: 0.9, Seed: seed(1)},
	} {
		s := New(p)
		b.Run(name, func(b *testing.B) {
			for range b.N {
				s.Next(logits)
			}
		})
	}
}
