//go:build !nojapanese

package metric

import (
	"sync"

	"github.com/ikawaha/kagome-dict/ipa"
	"github.com/ikawaha/kagome/v2/tokenizer"
)

// Japanese metrics for ChouBun. Words are the surface forms of the tokens
// of kagome v2 with the IPA dictionary (normal mode), standing in for the
// MeCab segmentation of the Python original; then the Chinese recipe of
// LongBench is applied: ja_f1 normalises each word like normalize_zh_answer
// (LongBench's Chinese punctuation set covers the Japanese marks) and takes
// token F1, ja_rouge takes ROUGE-L over the words joined by spaces.

var (
	jaOnce sync.Once
	jaTok  *tokenizer.Tokenizer
	jaErr  error
)

func jaWords(s string) []string {
	jaOnce.Do(func() { jaTok, jaErr = tokenizer.New(ipa.Dict(), tokenizer.OmitBosEos()) })
	if jaErr != nil {
		// The dictionary is compiled into the binary: failing to load it is a
		// broken build, not bad input.
		panic("metric: kagome IPA dictionary: " + jaErr.Error())
	}
	toks := jaTok.Tokenize(s)
	words := make([]string, 0, len(toks))
	for _, t := range toks {
		words = append(words, t.Surface)
	}
	return words
}
