package metric

import (
	"strings"

	"github.com/namm-dev/namm/task/metric/internal/jieba"
)

// Chinese words come from internal/jieba, a pure-Go port of jieba 0.42.1's
// accurate mode with jieba's own dictionary (see that package for how it
// may differ from Python).

// QAF1Zh is LongBench's qa_f1_zh_score: jieba words, each normalised
// (lower case, ASCII and Chinese punctuation and whitespace removed), empty
// ones dropped, then token F1.
func QAF1Zh(prediction, answer string, _ []string) float64 {
	return tokenF1(normalizedWords(jieba.Cut(prediction)), normalizedWords(jieba.Cut(answer)))
}

func normalizedWords(words []string) []string {
	out := words[:0:0]
	for _, w := range words {
		if n := normalizeZh(w); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// RougeLZh is LongBench's rouge_zh_score: ROUGE-L (as RougeL) over the
// jieba words joined by spaces. LongBench's call path is one Python frame
// deeper than rouge_score's, which moves the recursion limit by one.
func RougeLZh(prediction, answer string, _ []string) float64 {
	p := strings.Join(jieba.Cut(prediction), " ")
	a := strings.Join(jieba.Cut(answer), " ")
	f, err := rougeLF(p, a, rougeFirstReconDepth+1)
	if err != nil {
		return 0
	}
	return f
}
