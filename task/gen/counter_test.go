package gen

import (
	"unicode"
	"unicode/utf8"
)

// wordCounter is the test tokenizer: one token per run of letters/digits, one per other
// non-space character, plus a BOS token when addSpecial. Its ids are meaningless.
type wordCounter struct{}

func (wordCounter) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial {
		ids = append(ids, 1)
	}
	inWord := false
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if !inWord {
				ids = append(ids, 2)
			}
			inWord = true
		case unicode.IsSpace(r):
			inWord = false
		default:
			ids = append(ids, 3)
			inWord = false
		}
	}
	return ids
}
