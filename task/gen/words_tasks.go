package gen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// RULER's common and frequent words extraction templates (constants.py).
const (
	cweTemplate = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?"
	cwePrefix   = " Answer: The top 10 words that appear most often in the list are:"
	fweTemplate = "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?"
	fwePrefix   = " Answer: According to the coded text above, the three most frequently appeared words are:"
)

func init() {
	register(&task{
		info: TaskInfo{Name: "cwe", Metric: "contains", MaxNewTokens: 120,
			Description: "common words extraction: a numbered list of words, a few repeated many times; return the 10 most common (RULER cwe)"},
		opts: []opt{
			intOpt("num_cw", "10", "number of common words asked", 1, 100),
			intOpt("freq_cw", "", "repeats of each common word (default 30, or 6 below len 4096, as RULER)", 2, 10000),
			intOpt("freq_ucw", "", "repeats of each uncommon word (default 3, or 1 below len 4096)", 1, 10000),
		},
		newInstance: newCWE,
	})
	register(&task{
		info: TaskInfo{Name: "fwe", Metric: "contains", MaxNewTokens: 50,
			Description: "frequent words extraction: Zipf-distributed coded words; return the 3 most frequent, ignoring '...' (RULER fwe)"},
		opts: []opt{
			floatOpt("alpha", "2.0", "Zipf exponent of word frequencies", 1, 10),
			intOpt("wordlen", "6", "letters per coded word", 3, 20),
			intOpt("vocab", "", "coded vocabulary size (default (len-50)/50, as RULER)", 10, 1<<20),
		},
		newInstance: newFWE,
	})
}

// numberedList formats words as RULER does: "1. w1 2. w2 ...".
func numberedList(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(". ")
		b.WriteString(w)
	}
	return b.String()
}

// cweList repeats the common words freq times and the others ufreq times, shuffled.
func cweList(r *rng, common, uncommon []string, freq, ufreq int) []string {
	list := make([]string, 0, len(common)*freq+len(uncommon)*ufreq)
	for _, w := range common {
		for k := 0; k < freq; k++ {
			list = append(list, w)
		}
	}
	for _, w := range uncommon {
		for k := 0; k < ufreq; k++ {
			list = append(list, w)
		}
	}
	r.shuffle(len(list), func(a, b int) { list[a], list[b] = list[b], list[a] })
	return list
}

func newCWE(g *genContext, i int) (*instance, error) {
	s := g.spec
	numCW := s.intOption("num_cw", 10)
	// RULER's settings: shorter contexts get fewer repeats and a smaller example.
	freq, ufreq, exWords, exFreq, exUfreq := 30, 3, 40, 10, 3
	if s.Length < 4096 {
		freq, ufreq, exWords, exFreq, exUfreq = 6, 1, 20, 3, 1
	}
	freq, ufreq = s.intOption("freq_cw", freq), s.intOption("freq_ucw", ufreq)
	if freq <= ufreq {
		return nil, fmt.Errorf("freq_cw=%d must exceed freq_ucw=%d", freq, ufreq)
	}
	exWords = max(exWords, numCW+1)
	vocab := bookVocabulary()
	r := g.rng(i)
	perm := r.perm(len(vocab))
	pick := func(idx []int) []string {
		out := make([]string, len(idx))
		for k, j := range idx {
			out[k] = vocab[j]
		}
		return out
	}
	num := strconv.Itoa(numCW)
	template := strings.ReplaceAll(cweTemplate, "10", num)
	prefix := strings.ReplaceAll(cwePrefix, "10", num)
	head, tail, _ := strings.Cut(template, "{context}")

	// The solved example uses words from the end of the permutation, the question from the start.
	ex := pick(perm[len(perm)-exWords:])
	exList := cweList(r.fork(), ex[:numCW], ex[numCW:], exFreq, exUfreq)
	example := head + numberedList(exList) + tail + prefix + " " + numberedList(ex[:numCW]) + "\n"

	words := pick(perm[:len(perm)-exWords])
	in := &instance{
		answers: words[:numCW], answerPrefix: prefix, depth: -1,
		minN: numCW, maxN: len(words), unitTokens: float64(3*ufreq + 1),
	}
	in.build = func(n int) string {
		list := cweList(newRNG(g.label+"/cwe", int64(i), int64(n)), words[:numCW], words[numCW:n], freq, ufreq)
		return example + head + numberedList(list) + tail + prefix
	}
	return in, nil
}

// zeta is the Riemann zeta function for s > 1 (Euler-Maclaurin after 64 terms).
func zeta(s float64) float64 {
	const n = 64
	sum := 0.0
	for k := 1; k < n; k++ {
		sum += math.Pow(float64(k), -s)
	}
	N := float64(n)
	return sum + math.Pow(N, 1-s)/(s-1) + math.Pow(N, -s)/2 + s*math.Pow(N, -s-1)/12
}

// zipfCounts is RULER's fwe word count for each rank k=1..v: floor(n * k^-alpha / zeta(alpha)).
func zipfCounts(n, v int, alpha float64) []int {
	z := zeta(alpha)
	c := make([]int, v)
	for k := range c {
		c[k] = int(float64(n) * math.Pow(float64(k+1), -alpha) / z)
	}
	return c
}

func newFWE(g *genContext, i int) (*instance, error) {
	s := g.spec
	alpha, wordLen := s.floatOption("alpha"), s.intOption("wordlen", 6)
	v := s.intOption("vocab", max(10, (s.Length-50)/50))
	if math.Pow(26, float64(wordLen)) < 4*float64(v) {
		return nil, fmt.Errorf("wordlen=%d is too short for vocab=%d", wordLen, v)
	}
	r := g.rng(i)
	used := map[string]bool{}
	vocab := []string{"..."} // RULER makes the top-ranked word noise
	for len(vocab) < v {
		b := make([]byte, wordLen)
		for j := range b {
			b[j] = byte('a' + r.intn(26))
		}
		if w := string(b); !used[w] {
			used[w] = true
			vocab = append(vocab, w)
		}
	}
	// The smallest size at which ranks 1-5 have strictly decreasing counts (a unique top 3).
	minN := 1
	for ; minN < 1<<30; minN = minN*5/4 + 1 {
		c := zipfCounts(minN, 5, alpha)
		if c[0] > c[1] && c[1] > c[2] && c[2] > c[3] && c[3] > c[4] {
			break
		}
	}
	head, tail, _ := strings.Cut(fweTemplate, "{context}")
	in := &instance{
		answers: vocab[1:4], answerPrefix: fwePrefix, depth: -1,
		minN: minN, maxN: 1 << 30, unitTokens: 2,
	}
	in.build = func(n int) string {
		counts := zipfCounts(n, len(vocab), alpha)
		var words []string
		for k, c := range counts {
			for j := 0; j < c; j++ {
				words = append(words, vocab[k])
			}
		}
		sr := newRNG(g.label+"/fwe", int64(i), int64(n))
		sr.shuffle(len(words), func(a, b int) { words[a], words[b] = words[b], words[a] })
		return head + strings.Join(words, " ") + tail + fwePrefix
	}
	return in, nil
}
