package gen

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/namm-dev/namm/task/gen/haystack"
)

// corpus is haystack text as a stream of words (whitespace collapsed, as RULER does with its
// essays) with sentence boundaries marked. Word indices wrap around: word i is words[i%len].
type corpus struct {
	words   []string
	sentEnd []bool // sentEnd[i]: a sentence ends with words[i]
}

var corpusCache sync.Map // key "split|name,name" -> *corpus

// loadCorpus joins the given split of the named texts (all texts when names is empty), in
// sorted name order.
func loadCorpus(split string, names []string) (*corpus, error) {
	if len(names) == 0 {
		names = haystack.Names()
	}
	key := split + "|" + strings.Join(names, ",")
	if c, ok := corpusCache.Load(key); ok {
		return c.(*corpus), nil
	}
	var words []string
	for _, name := range names {
		t, err := haystack.Split(name, split)
		if err != nil {
			return nil, fmt.Errorf("haystack text: %w", err)
		}
		words = append(words, strings.Fields(t)...)
	}
	if len(words) < 1000 {
		return nil, fmt.Errorf("haystack %s of %v has only %d words", split, names, len(words))
	}
	c := &corpus{words: words, sentEnd: make([]bool, len(words))}
	for i := range words {
		c.sentEnd[i] = endsSentence(words[i], words[(i+1)%len(words)])
	}
	c.sentEnd[len(words)-1] = true
	corpusCache.Store(key, c)
	return c, nil
}

var abbreviations = map[string]bool{
	"mr.": true, "mrs.": true, "dr.": true, "st.": true, "messrs.": true, "mt.": true,
	"gen.": true, "col.": true, "capt.": true, "rev.": true, "vs.": true, "no.": true,
	"jr.": true, "sr.": true, "u.s.": true, "etc.": true, "i.e.": true, "e.g.": true,
}

// endsSentence reports whether a sentence ends with word w, given the next word: w ends in
// . ! or ? (before closing quotes or brackets), is no common abbreviation, and the next word
// starts with a capital letter (after opening quotes or brackets).
func endsSentence(w, next string) bool {
	core := strings.TrimRight(w, "\"')]_’”")
	if core == "" {
		return false
	}
	last := core[len(core)-1]
	if last != '.' && last != '!' && last != '?' {
		return false
	}
	if abbreviations[strings.ToLower(core)] {
		return false
	}
	next = strings.TrimLeft(next, "\"'([_‘“")
	r, _ := utf8.DecodeRuneInString(next)
	return unicode.IsUpper(r)
}

func (c *corpus) len() int { return len(c.words) }

func (c *corpus) word(i int) string { return c.words[i%len(c.words)] }

// isSentenceEnd reports whether a sentence ends with word i (wrapping).
func (c *corpus) isSentenceEnd(i int) bool { return c.sentEnd[i%len(c.words)] }

// sentenceStart returns the first word index >= i that begins a sentence.
func (c *corpus) sentenceStart(i int) int {
	for j := i; j < i+len(c.words); j++ {
		if j == 0 || c.isSentenceEnd(j-1) {
			return j
		}
	}
	return i
}

// writeWords appends words [start, start+n) joined by spaces.
func (c *corpus) writeWords(b *strings.Builder, start, n int) {
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.word(start + i))
	}
}

// text returns words [start, start+n) joined by spaces.
func (c *corpus) text(start, n int) string {
	var b strings.Builder
	c.writeWords(&b, start, n)
	return b.String()
}

// insertAtSentences writes words [start, start+n) with each insert placed, as its own
// sentence, at the first sentence boundary at or after its fraction of the n words
// (fractions in [0,1], any order; equal positions keep the given order).
func (c *corpus) insertAtSentences(start, n int, fracs []float64, inserts []string) string {
	type at struct {
		word int // insert before this word offset (0..n)
		idx  int
	}
	pos := make([]at, len(inserts))
	for k, f := range fracs {
		w := c.boundaryNear(start, n, int(f*float64(n)))
		pos[k] = at{w, k}
	}
	// stable insertion sort by word offset (few inserts)
	for i := 1; i < len(pos); i++ {
		for j := i; j > 0 && pos[j].word < pos[j-1].word; j-- {
			pos[j], pos[j-1] = pos[j-1], pos[j]
		}
	}
	var b strings.Builder
	b.Grow(n * 6)
	prev := 0
	for _, p := range pos {
		if p.word > prev {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			c.writeWords(&b, start+prev, p.word-prev)
			prev = p.word
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(inserts[p.idx])
	}
	if n > prev {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		c.writeWords(&b, start+prev, n-prev)
	}
	return b.String()
}

// boundaryNear returns the sentence boundary (a word offset in 0..n where a sentence of the
// window [start, start+n) has just ended) at or after w, else the last one before w, else 0.
func (c *corpus) boundaryNear(start, n, w int) int {
	w = min(max(w, 0), n)
	for j := w; j <= n; j++ {
		if j == 0 || c.isSentenceEnd(start+j-1) {
			return j
		}
	}
	for j := w - 1; j > 0; j-- {
		if c.isSentenceEnd(start + j - 1) {
			return j
		}
	}
	return 0
}
