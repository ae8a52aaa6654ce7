package metric

import (
	"errors"
	"strings"
)

// ROUGE-L as the Python package rouge 1.0.1 (pltrdy/rouge) computes
// Rouge().get_scores([hyp], [ref], avg=True)["rouge-l"]["f"], which LongBench
// uses, including its quirks:
//   - sentences are the parts of the text between '.' characters that are not
//     empty before whitespace is collapsed (so " " becomes the empty sentence);
//   - words are a sentence split on single spaces; the counts m and n are
//     numbers of distinct words (exclusive=True uses sets);
//   - the summary-level union LCS is the set of distinct words on the
//     back-traced LCS of every (reference sentence, hypothesis sentence) pair;
//   - F = 2*P*R/(P+R+1e-8);
//   - an empty hypothesis or reference raises, and so does Python's recursion
//     limit in the recursive LCS back-trace (see rougeMaxSteps); LongBench
//     turns any exception into a score of 0.

var (
	errRougeEmpty     = errors.New("rouge: hypothesis or reference has no sentence")
	errRougeRecursion = errors.New("rouge: maximum recursion depth exceeded in LCS back-trace")
)

// pythonRecursionLimit is sys.getrecursionlimit() by default. In CPython
// 3.11 (measured here) a frame at depth 1000 still runs and the call that
// would make depth 1001 raises RecursionError.
const pythonRecursionLimit = 1000

// rougeFirstReconDepth is the Python stack depth of the first _recon frame
// when LongBench's eval.py scores with rouge_score: <module>, scorer,
// rouge_score, Rouge.get_scores, _get_avg_scores, <lambda>,
// rouge_l_summary_level, _union_lcs, _recon_lcs, _recon. rouge_zh_score adds
// one frame.
const rougeFirstReconDepth = 10

// rougeSentences splits text as rouge 1.0.1's get_scores does.
func rougeSentences(text string) []string {
	var out []string
	for _, part := range strings.Split(text, ".") {
		if len(part) > 0 {
			out = append(out, strings.Join(pySplit(part), " "))
		}
	}
	return out
}

// rougeWords splits sentences on single spaces and flattens them.
func rougeWords(sentences []string) []string {
	var words []string
	for _, s := range sentences {
		words = append(words, strings.Split(s, " ")...)
	}
	return words
}

func distinct(words []string) int {
	set := make(map[string]struct{}, len(words))
	for _, w := range words {
		set[w] = struct{}{}
	}
	return len(set)
}

// reconLCS back-traces one longest common subsequence of x and y exactly as
// rouge's _recon does (diagonal on equal words, else up when the cell above
// is strictly larger, else left) and returns its words and the number of
// recursive steps Python would take. It fails when Python would exceed its
// recursion limit: the deepest frame is firstDepth + steps.
func reconLCS(x, y []string, firstDepth int) ([]string, error) {
	n, m := len(x), len(y)
	maxSteps := pythonRecursionLimit - firstDepth
	// Every step lowers i or j by one and the trace stops at i == 0 or
	// j == 0, so at least min(n, m) steps are needed.
	if min(n, m) > maxSteps {
		return nil, errRougeRecursion
	}
	w := m + 1
	table := make([]int32, (n+1)*w)
	for i := 1; i <= n; i++ {
		for j := 1; j <= m; j++ {
			switch {
			case x[i-1] == y[j-1]:
				table[i*w+j] = table[(i-1)*w+j-1] + 1
			default:
				table[i*w+j] = max(table[(i-1)*w+j], table[i*w+j-1])
			}
		}
	}
	var words []string
	steps := 0
	for i, j := n, m; i > 0 && j > 0; steps++ {
		switch {
		case x[i-1] == y[j-1]:
			words = append(words, x[i-1])
			i, j = i-1, j-1
		case table[(i-1)*w+j] > table[i*w+j-1]:
			i--
		default:
			j--
		}
	}
	if steps > maxSteps {
		return nil, errRougeRecursion
	}
	return words, nil
}

// rougeLF returns rouge 1.0.1's summary-level ROUGE-L F for one hypothesis
// and one reference, or the error Python would raise.
func rougeLF(hyp, ref string, firstDepth int) (float64, error) {
	hs, rs := rougeSentences(hyp), rougeSentences(ref)
	if len(hs) == 0 || len(rs) == 0 {
		return 0, errRougeEmpty
	}
	m := distinct(rougeWords(rs))
	n := distinct(rougeWords(hs))
	union := make(map[string]struct{})
	hypWords := make([][]string, len(hs))
	for k, h := range hs {
		hypWords[k] = strings.Split(h, " ")
	}
	for _, r := range rs {
		refWords := strings.Split(r, " ")
		for _, hw := range hypWords {
			lcs, err := reconLCS(refWords, hw, firstDepth)
			if err != nil {
				return 0, err
			}
			for _, w := range lcs {
				union[w] = struct{}{}
			}
		}
	}
	llcs := float64(len(union))
	r := llcs / float64(m)
	p := llcs / float64(n)
	return 2.0 * ((p * r) / (p + r + 1e-8)), nil
}

// RougeL is LongBench's rouge_score: rouge 1.0.1's ROUGE-L F, or 0 where the
// Python package raises.
func RougeL(prediction, answer string, _ []string) float64 {
	f, err := rougeLF(prediction, answer, rougeFirstReconDepth)
	if err != nil {
		return 0
	}
	return f
}
