package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens.
type addedToken struct {
	id         int
	content    string
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
	special    bool
}

// addedMatcher finds added tokens in text, leftmost first and longest among
// those starting at the same place (Aho-Corasick LeftmostLongest in
// tokenizers), then applies the single_word, lstrip and rstrip rules.
type addedMatcher struct {
	byFirstByte map[byte][]addedPattern // longest first
}

type addedPattern struct {
	text  string // as matched (normalized content for normalized tokens)
	token *addedToken
}

func newAddedMatcher(patterns []addedPattern) *addedMatcher {
	m := &addedMatcher{byFirstByte: map[byte][]addedPattern{}}
	for _, p := range patterns {
		if p.text == "" {
			continue
		}
		m.byFirstByte[p.text[0]] = append(m.byFirstByte[p.text[0]], p)
	}
	for _, list := range m.byFirstByte {
		sort.SliceStable(list, func(i, j int) bool { return len(list[i].text) > len(list[j].text) })
	}
	return m
}

// segment is a part of the input: either an added token or plain text.
type segment struct {
	text  string
	token *addedToken // nil for plain text
	start int         // byte offset in the original input (for atStart)
}

// split cuts s into plain-text and added-token segments.
func (m *addedMatcher) split(s string, base int, dst []segment) []segment {
	if len(m.byFirstByte) == 0 {
		return append(dst, segment{text: s, start: base})
	}
	done := 0 // end of the last emitted segment
	for i := 0; i < len(s); {
		p, ok := m.longestAt(s, i)
		if !ok {
			i++
			continue
		}
		start, stop := i, i+len(p.text)
		tok := p.token
		if tok.singleWord {
			startOK := start == 0 || !endsWithWordChar(s[:start])
			stopOK := stop == len(s) || !startsWithWordChar(s[stop:])
			if !startOK || !stopOK {
				i = stop
				continue
			}
		}
		if tok.lstrip {
			trimmed := strings.TrimRightFunc(s[:start], unicode.IsSpace)
			start = max(len(trimmed), done)
		}
		if tok.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if start > done {
			dst = append(dst, segment{text: s[done:start], start: base + done})
		}
		dst = append(dst, segment{text: s[start:stop], token: tok, start: base + start})
		done = stop
		i = stop
	}
	if done < len(s) {
		dst = append(dst, segment{text: s[done:], start: base + done})
	}
	return dst
}

func (m *addedMatcher) longestAt(s string, i int) (addedPattern, bool) {
	for _, p := range m.byFirstByte[s[i]] {
		if strings.HasPrefix(s[i:], p.text) {
			return p, true
		}
	}
	return addedPattern{}, false
}

func isWordChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

func endsWithWordChar(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}
