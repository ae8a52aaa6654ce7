package metric

import (
	"strings"
	"unicode"
)

// pyPunctuation is Python's string.punctuation.
const pyPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// zhPunctuation is the Chinese punctuation set of LongBench's
// normalize_zh_answer, verbatim (it ends with an ASCII '.').
const zhPunctuation = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."

// pyIsSpace reports whether Python's str.isspace() holds for r, which is what
// str.split() with no argument splits on. It differs from unicode.IsSpace by
// the ASCII separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pySplit is Python's str.split() with no argument.
func pySplit(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// pyIsWord reports whether r is a word character of Python's re module for
// str patterns (\w): alphanumeric or underscore.
func pyIsWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

// removeRunes drops every rune of s that is in set.
func removeRunes(s, set string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(set, r) {
			return -1
		}
		return r
	}, s)
}

// removeArticles is re.sub(r"\b(a|an|the)\b", " ", s) with Python's Unicode
// word boundaries: a maximal run of word characters equal to a, an or the
// becomes one space.
func removeArticles(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if !pyIsWord(rs[i]) {
			b.WriteRune(rs[i])
			i++
			continue
		}
		j := i
		for j < len(rs) && pyIsWord(rs[j]) {
			j++
		}
		w := string(rs[i:j])
		if w == "a" || w == "an" || w == "the" {
			b.WriteByte(' ')
		} else {
			b.WriteString(w)
		}
		i = j
	}
	return b.String()
}

// NormalizeAnswer is LongBench's (and SQuAD's) normalize_answer: lower case,
// drop ASCII punctuation, drop the articles a/an/the, collapse whitespace.
//
// Lower-casing uses Go's Unicode case mapping, which differs from Python's
// str.lower for a handful of context-dependent cases (final sigma, U+0130).
func NormalizeAnswer(s string) string {
	s = strings.ToLower(s)
	s = removeRunes(s, pyPunctuation)
	s = removeArticles(s)
	return strings.Join(pySplit(s), " ")
}

// normalizeZh is LongBench's normalize_zh_answer: lower case, drop ASCII and
// Chinese punctuation, drop all whitespace.
func normalizeZh(s string) string {
	s = strings.ToLower(s)
	s = removeRunes(s, pyPunctuation+zhPunctuation)
	return strings.Join(pySplit(s), "")
}

// tokenF1 is LongBench's f1_score over token lists: the multiset overlap
// (Counter intersection) gives precision and recall; no overlap scores 0.
func tokenF1(prediction, truth []string) float64 {
	counts := make(map[string]int, len(truth))
	for _, t := range truth {
		counts[t]++
	}
	same := 0
	for _, p := range prediction {
		if counts[p] > 0 {
			counts[p]--
			same++
		}
	}
	if same == 0 {
		return 0
	}
	precision := float64(same) / float64(len(prediction))
	recall := float64(same) / float64(len(truth))
	return (2 * precision * recall) / (precision + recall)
}

// QAF1 is LongBench's qa_f1_score: token F1 after NormalizeAnswer.
func QAF1(prediction, answer string, _ []string) float64 {
	return tokenF1(pySplit(NormalizeAnswer(prediction)), pySplit(NormalizeAnswer(answer)))
}

// ExactMatch scores 1 when prediction and answer are equal after
// NormalizeAnswer (SQuAD-style exact match), else 0. It is not a LongBench
// metric.
func ExactMatch(prediction, answer string, _ []string) float64 {
	if NormalizeAnswer(prediction) == NormalizeAnswer(answer) {
		return 1
	}
	return 0
}

// Contains scores 1 when the answer occurs in the prediction, ignoring case
// (RULER's string_match_all for one reference), else 0. Score averages it
// over all answers.
func Contains(prediction, answer string, _ []string) float64 {
	if strings.Contains(strings.ToLower(prediction), strings.ToLower(answer)) {
		return 1
	}
	return 0
}

// FirstNumber scores 1 when the prediction's first number is the answer's first number
// ("Part 12." against "Part 12"; "Part 1" does not match "Part 12", as "contains" would), else 0.
// It is namm's, not LongBench's: a label asked for once, and the rest of the prediction ignored.
func FirstNumber(prediction, answer string, _ []string) float64 {
	p, a := pyFindDigits(prediction), pyFindDigits(answer)
	if len(p) == 0 || len(a) == 0 || p[0] != a[0] {
		return 0
	}
	return 1
}
