// Package sample picks the next token from a model's logits: greedy, or
// sampled with temperature, top-k, top-p (nucleus), min-p, a seed, and
// OpenAI's frequency and presence penalties; it reports log probabilities.
// It also turns tokens into text incrementally and finds stop strings in it
// (Stream).
package sample

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
)

// Params are one request's sampling settings, with OpenAI's names.
type Params struct {
	// Temperature divides the logits; 0 (or below 1e-5) picks the most
	// likely token (greedy, the first on ties), and then TopP, TopK, MinP and
	// the seed play no part.
	Temperature float64
	// TopP keeps the smallest set of most likely tokens whose probability
	// sums to at least TopP; 1 (or 0) keeps all.
	TopP float64
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// MinP drops tokens less likely than MinP times the most likely; 0 keeps all.
	MinP float64
	// Seed makes the draws reproducible; nil draws a random seed.
	Seed *uint64
	// FrequencyPenalty and PresencePenalty lower the logit of a token by
	// FrequencyPenalty times the times it was generated so far, and by
	// PresencePenalty once if it was (OpenAI's definition), before the
	// temperature.
	FrequencyPenalty, PresencePenalty float64
	// Logprobs fills Choice.Logprob (a log-sum-exp over the vocabulary per
	// token, skipped otherwise); TopLogprobs > 0 implies it.
	Logprobs bool
	// TopLogprobs is how many of the most likely alternatives each Choice
	// lists (0-20).
	TopLogprobs int
}

// MaxTopLogprobs is the most alternatives a Choice lists (OpenAI's limit).
const MaxTopLogprobs = 20

// Validate checks the ranges OpenAI accepts; the error names the field.
func (p Params) Validate() error {
	switch {
	case math.IsNaN(p.Temperature) || p.Temperature < 0 || p.Temperature > 2:
		return &FieldError{"temperature", fmt.Sprintf("must be in [0, 2], got %v", p.Temperature)}
	case math.IsNaN(p.TopP) || p.TopP < 0 || p.TopP > 1:
		return &FieldError{"top_p", fmt.Sprintf("must be in (0, 1], got %v", p.TopP)}
	case p.TopK < 0:
		return &FieldError{"top_k", fmt.Sprintf("must be >= 0, got %d", p.TopK)}
	case math.IsNaN(p.MinP) || p.MinP < 0 || p.MinP > 1:
		return &FieldError{"min_p", fmt.Sprintf("must be in [0, 1], got %v", p.MinP)}
	case math.IsNaN(p.FrequencyPenalty) || p.FrequencyPenalty < -2 || p.FrequencyPenalty > 2:
		return &FieldError{"frequency_penalty", fmt.Sprintf("must be in [-2, 2], got %v", p.FrequencyPenalty)}
	case math.IsNaN(p.PresencePenalty) || p.PresencePenalty < -2 || p.PresencePenalty > 2:
		return &FieldError{"presence_penalty", fmt.Sprintf("must be in [-2, 2], got %v", p.PresencePenalty)}
	case p.TopLogprobs < 0 || p.TopLogprobs > MaxTopLogprobs:
		return &FieldError{"top_logprobs", fmt.Sprintf("must be in [0, %d], got %d", MaxTopLogprobs, p.TopLogprobs)}
	}
	return nil
}

// FieldError is a parameter out of range.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// TokenLogprob is a token and its log probability under the model.
type TokenLogprob struct {
	ID      int
	Logprob float64
}

// Choice is a picked token, its log probability (with Params.Logprobs),
// and the TopLogprobs most likely tokens (most likely first). Log probabilities are those of the
// model's own distribution, log_softmax(logits), before penalties,
// temperature and truncation (as vLLM reports them).
type Choice struct {
	TokenLogprob
	Top []TokenLogprob
}

// Sampler draws a sequence's tokens. It is not safe for concurrent use.
type Sampler struct {
	p      Params
	rng    *mrand.Rand
	counts map[int]int // generated token -> times
	// scratch, reused across calls
	z    []float64
	keep []int
}

// New makes a sampler; p must be valid (Validate).
func New(p Params) *Sampler {
	var seed uint64
	if p.Seed != nil {
		seed = *p.Seed
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	return &Sampler{p: p, rng: mrand.New(mrand.NewPCG(seed, 0x6e616d6d)), counts: map[int]int{}}
}

// greedyBelow: temperatures under it pick greedily, as vLLM's do (dividing
// by a denormal temperature would overflow the logits to infinities).
const greedyBelow = 1e-5

// Greedy reports whether the sampler always picks the most likely token.
func (s *Sampler) Greedy() bool { return s.p.Temperature < greedyBelow }

// Next picks the next token from logits and counts it for the penalties.
func (s *Sampler) Next(logits []float32) Choice {
	var c Choice
	if s.Greedy() {
		c.ID = s.argmaxPenalised(logits)
	} else {
		c.ID = s.draw(logits)
	}
	if s.p.TopLogprobs > 0 {
		c.Top = TopLogprobs(logits, s.p.TopLogprobs)
	}
	if s.p.Logprobs || s.p.TopLogprobs > 0 {
		c.Logprob = Logprob(logits, c.ID)
	}
	s.counts[c.ID]++
	return c
}

// penalised is logit i after the frequency and presence penalties.
func (s *Sampler) penalised(logits []float32, i int) float64 {
	x := float64(logits[i])
	if n := s.counts[i]; n > 0 {
		x -= float64(n)*s.p.FrequencyPenalty + s.p.PresencePenalty
	}
	return x
}

// penalising reports whether some logit is lowered now: a look-up per
// token of the vocabulary costs as much as the rest of a small model's
// step, so the common case skips it.
func (s *Sampler) penalising() bool {
	return len(s.counts) > 0 && (s.p.FrequencyPenalty != 0 || s.p.PresencePenalty != 0)
}

func (s *Sampler) argmaxPenalised(logits []float32) int {
	if !s.penalising() {
		return argmax(logits)
	}
	// The best unpenalised token, then the penalised ones against it.
	best, bv := -1, math.Inf(-1)
	for i, x := range logits {
		if v := float64(x); v > bv && s.counts[i] == 0 {
			best, bv = i, v
		}
	}
	for i := range s.counts {
		if v := s.penalised(logits, i); v > bv || v == bv && (best < 0 || i < best) {
			best, bv = i, v
		}
	}
	return max(best, 0)
}

// Probs returns the distribution the sampler draws from for logits: after
// penalties, temperature, top-k, top-p and min-p, renormalised (zero for
// dropped tokens). Next draws from exactly this distribution.
func (s *Sampler) Probs(logits []float32) []float64 {
	s.filter(logits)
	out := make([]float64, len(logits))
	for _, i := range s.keep {
		out[i] = s.z[i]
	}
	return out
}

// filter leaves in s.keep the kept token ids (most likely first, ids
// ascending on ties) and in s.z[i] their renormalised probabilities.
func (s *Sampler) filter(logits []float32) {
	n := len(logits)
	if cap(s.z) < n {
		s.z = make([]float64, n)
		s.keep = make([]int, 0, n)
	}
	z := s.z[:n]
	m := math.Inf(-1)
	for i, x := range logits {
		z[i] = float64(x)
	}
	if s.penalising() {
		for i := range s.counts {
			z[i] = s.penalised(logits, i)
		}
	}
	for i := range z {
		z[i] /= s.p.Temperature
		m = max(m, z[i])
	}
	var sum float64
	for i, v := range z {
		z[i] = math.Exp(v - m)
		sum += z[i]
	}
	for i := range z {
		z[i] /= sum
	}
	keep := s.keep[:0]
	for i := range z {
		keep = append(keep, i)
	}
	truncate := s.p.TopK > 0 && s.p.TopK < n || s.p.TopP > 0 && s.p.TopP < 1
	if truncate {
		// Candidates only: a token below both cuts never matters, and
		// sorting all of a 32k-150k vocabulary per token costs milliseconds.
		p := s.p.TopP
		topP := p > 0 && p < 1
		switch {
		case s.p.TopK > 0 && s.p.TopK < n:
			keep = topIndices(z, keep, s.p.TopK)
		case topP:
			// The nucleus is most often a few tokens: look for it among the
			// k most likely (the first k of the full order), k doubling.
			for k := 64; ; k *= 2 {
				if k >= n {
					sortByProb(z, keep)
					break
				}
				cand := topIndices(z, keep, k)
				if j := nucleus(z, cand, p); j >= 0 {
					keep = cand[:j+1]
					break
				}
				keep = keep[:n]
				for i := range keep {
					keep[i] = i
				}
			}
		}
		if topP {
			if j := nucleus(z, keep, p); j >= 0 {
				keep = keep[:j+1]
			}
		}
	}
	if s.p.MinP > 0 {
		top := 0.0
		for _, i := range keep {
			top = max(top, z[i])
		}
		kept := keep[:0]
		for _, i := range keep {
			if z[i] >= s.p.MinP*top {
				kept = append(kept, i)
			}
		}
		keep = kept
	}
	sum = 0
	for _, i := range keep {
		sum += z[i]
	}
	for _, i := range keep {
		z[i] /= sum
	}
	s.keep = keep
}

// nucleus is the index in sorted (ids, most likely first) of the token at
// which the probabilities summed from the first reach p, or -1.
func nucleus(z []float64, sorted []int, p float64) int {
	var cum float64
	for j, i := range sorted {
		cum += z[i]
		if cum >= p*(1-1e-12) {
			return j
		}
	}
	return -1
}

// draw samples one token of the filtered distribution.
func (s *Sampler) draw(logits []float32) int {
	s.filter(logits)
	u := s.rng.Float64()
	var cum float64
	for _, i := range s.keep {
		cum += s.z[i]
		if u < cum {
			return i
		}
	}
	return s.keep[len(s.keep)-1] // rounding: u within 1e-16 of 1
}

// sortByProb orders ids by probability, highest first, ids ascending on ties.
func sortByProb(z []float64, ids []int) {
	slices.SortFunc(ids, func(a, b int) int {
		switch {
		case z[a] > z[b]:
			return -1
		case z[a] < z[b]:
			return 1
		}
		return a - b
	})
}

// topIndices returns the k most likely of ids, sorted as sortByProb sorts:
// a threshold from a partial pass keeps the sort to a few candidates.
func topIndices(z []float64, ids []int, k int) []int {
	if k >= len(ids) {
		sortByProb(z, ids)
		return ids
	}
	// The k-th largest value by quickselect on a copy of the values.
	vals := make([]float64, len(ids))
	for j, i := range ids {
		vals[j] = z[i]
	}
	kth := quickselect(vals, k-1)
	out := ids[:0]
	for _, i := range ids {
		if z[i] >= kth {
			out = append(out, i)
		}
	}
	sortByProb(z, out)
	return out[:k]
}

// quickselect returns the element that would be at index k of xs sorted in
// descending order (xs is reordered).
func quickselect(xs []float64, k int) float64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		pivot := xs[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] > pivot {
				i++
			}
			for xs[j] < pivot {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	return xs[k]
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// logSumExp is log(sum(exp(logits))) in float64.
func logSumExp(logits []float32) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - m)
	}
	return m + math.Log(sum)
}

// Logprob is log_softmax(logits)[id].
func Logprob(logits []float32, id int) float64 {
	return float64(logits[id]) - logSumExp(logits)
}

// TopLogprobs returns the n most likely tokens of log_softmax(logits), most
// likely first (ids ascending on ties).
func TopLogprobs(logits []float32, n int) []TokenLogprob {
	lse := logSumExp(logits)
	z := make([]float64, len(logits))
	ids := make([]int, len(logits))
	for i, v := range logits {
		z[i], ids[i] = float64(v), i
	}
	ids = topIndices(z, ids, min(n, len(ids)))
	out := make([]TokenLogprob, len(ids))
	for j, i := range ids {
		out[j] = TokenLogprob{ID: i, Logprob: z[i] - lse}
	}
	return out
}

// Flag is the error with the field written as a command-line flag
// (top_p -> top-p: ...).
func (e *FieldError) Flag() string {
	b := []byte(e.Field)
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b) + ": " + e.Msg
}
