package metric

import (
	"strings"
	"unicode"
)

// Classification is LongBench's classification_score. The classes found
// (as substrings) in the prediction are collected; then, walking that list
// the way Python's "for x in list: list.remove(x)" does (a removal makes the
// loop skip the next element), a class that is a proper substring of the
// answer is removed. The score is 1/len(list) when the answer is in the list,
// else 0. (LongBench's difflib fallback sits behind "if em_match_list != 0",
// which is always true in Python, so it never runs and is not ported.)
func Classification(prediction, answer string, allClasses []string) float64 {
	var matches []string
	for _, c := range allClasses {
		if strings.Contains(prediction, c) {
			matches = append(matches, c)
		}
	}
	for i := 0; i < len(matches); i++ {
		term := matches[i]
		if strings.Contains(answer, term) && term != answer {
			// list.remove drops the first occurrence, which may precede i.
			for k, m := range matches {
				if m == term {
					matches = append(matches[:k:k], matches[k+1:]...)
					break
				}
			}
		}
	}
	for _, m := range matches {
		if m == answer {
			return 1.0 / float64(len(matches))
		}
	}
	return 0
}

// pyFindDigits is re.findall(r"\d+", s) for a str: maximal runs of Unicode
// decimal digits (category Nd).
func pyFindDigits(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		if unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// numberShare is the fraction of the numbers in prediction equal to want
// (0 when the prediction has no number).
func numberShare(prediction, want string) float64 {
	numbers := pyFindDigits(prediction)
	if len(numbers) == 0 {
		return 0
	}
	right := 0
	for _, n := range numbers {
		if n == want {
			right++
		}
	}
	return float64(right) / float64(len(numbers))
}

// firstNumberAfter returns the digits right after the first occurrence of
// prefix that is followed by at least one digit (re.findall(prefix+r"(\d+)")[0]).
func firstNumberAfter(s, prefix string) (string, bool) {
	for off := 0; ; {
		k := strings.Index(s[off:], prefix)
		if k < 0 {
			return "", false
		}
		rest := s[off+k+len(prefix):]
		if d := pyFindDigits(rest); len(d) > 0 && strings.HasPrefix(rest, d[0]) {
			return d[0], true
		}
		off += k + 1
	}
}

// Retrieval is LongBench's retrieval_score: the paragraph number of the
// answer ("Paragraph N") against every number in the prediction. An answer
// without "Paragraph N" makes Python raise IndexError; here it scores 0.
func Retrieval(prediction, answer string, _ []string) float64 {
	id, ok := firstNumberAfter(answer, "Paragraph ")
	if !ok {
		return 0
	}
	return numberShare(prediction, id)
}

// RetrievalZh is LongBench's retrieval_zh_score, with "段落N".
func RetrievalZh(prediction, answer string, _ []string) float64 {
	id, ok := firstNumberAfter(answer, "段落")
	if !ok {
		return 0
	}
	return numberShare(prediction, id)
}

// Count is LongBench's count_score: the fraction of the numbers in the
// prediction equal to the answer.
func Count(prediction, answer string, _ []string) float64 {
	return numberShare(prediction, answer)
}

// CodeSim is LongBench's code_sim_score: the first line of the prediction
// (after leading newlines) containing no '`', '#' or "//" (or "" when there
// is none), compared with fuzz.ratio, divided by 100.
func CodeSim(prediction, answer string, _ []string) float64 {
	line := ""
	for _, l := range strings.Split(strings.TrimLeft(prediction, "\n"), "\n") {
		if !strings.ContainsAny(l, "`#") && !strings.Contains(l, "//") {
			line = l
			break
		}
	}
	return float64(FuzzRatio(line, answer)) / 100
}
