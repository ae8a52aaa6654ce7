package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// matcher finds the non-overlapping matches of a split pattern, as byte spans.
type matcher interface {
	findAll(s string) [][2]int
}

// literalMatcher matches a fixed string (a Split or Replace "String" pattern).
type literalMatcher string

func (m literalMatcher) findAll(s string) [][2]int {
	if m == "" {
		return nil
	}
	var spans [][2]int
	for pos := 0; ; {
		i := strings.Index(s[pos:], string(m))
		if i < 0 {
			return spans
		}
		spans = append(spans, [2]int{pos + i, pos + i + len(m)})
		pos += i + len(m)
	}
}

// whitespaceRunTail is the ending shared by the GPT-2, Llama-3 and Qwen2
// patterns. RE2 has no lookahead, so goMatcher matches a plain `\s+` there and
// then gives back the last character when whitespace follows... which is
// exactly what backtracking into `(?!\S)` does.
const whitespaceRunTail = `\s+(?!\S)|\s+`

const wsGroupName = "nammwsrun"

// Oniguruma's \s for Unicode: U+0009..U+000D, U+0085 and the Zl, Zp, Zs
// categories. Go's \s is ASCII only.
const onigSpaceClass = `\t-\r\x{85}\p{Zs}\x{2028}\x{2029}`

// goMatcher runs a pattern translated to Go's RE2 syntax.
type goMatcher struct {
	re      *regexp.Regexp
	wsGroup int // submatch index of the rewritten whitespaceRunTail, or -1
}

func (m *goMatcher) findAll(s string) [][2]int {
	var spans [][2]int
	for pos := 0; pos < len(s); {
		loc := m.re.FindStringSubmatchIndex(s[pos:])
		if loc == nil {
			break
		}
		start, end := pos+loc[0], pos+loc[1]
		if end == start { // empty match: move on one character, as onig's find_iter does
			_, size := utf8.DecodeRuneInString(s[end:])
			pos = end + size
			continue
		}
		if m.wsGroup >= 0 && loc[2*m.wsGroup] >= 0 && end < len(s) {
			_, last := utf8.DecodeLastRuneInString(s[start:end])
			if end-last > start {
				end -= last
			}
		}
		spans = append(spans, [2]int{start, end})
		pos = end
	}
	return spans
}

// regexp2Matcher runs patterns RE2 cannot express (other lookarounds).
type regexp2Matcher struct{ re *regexp2.Regexp }

func (m *regexp2Matcher) findAll(s string) [][2]int {
	runes := []rune(s)
	// regexp2 reports rune indexes; convert to byte offsets.
	offsets := make([]int, len(runes)+1)
	for i, r := range runes {
		offsets[i+1] = offsets[i] + utf8.RuneLen(r)
	}
	var spans [][2]int
	match, err := m.re.FindRunesMatch(runes)
	for err == nil && match != nil {
		if match.Length > 0 {
			spans = append(spans, [2]int{offsets[match.Index], offsets[match.Index+match.Length]})
		}
		match, err = m.re.FindNextMatch(match)
	}
	return spans
}

// compileRegex compiles an Oniguruma-style pattern from tokenizer.json,
// preferring Go's regexp and falling back to regexp2 only when needed.
func compileRegex(pattern string) (matcher, error) {
	src := pattern
	special := false
	if i := strings.Index(src, whitespaceRunTail); i >= 0 {
		j := i + len(whitespaceRunTail)
		if (i == 0 || src[i-1] == '|') && (j == len(src) || src[j] == '|') {
			src = src[:i] + `(?P<` + wsGroupName + `>\s+)` + src[j:]
			special = true
		}
	}
	if translated, ok := translateToRE2(src); ok {
		if re, err := regexp.Compile(translated); err == nil {
			m := &goMatcher{re: re, wsGroup: -1}
			if special {
				m.wsGroup = re.SubexpIndex(wsGroupName)
			}
			return m, nil
		}
	}
	re, err := regexp2.Compile(pattern, regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("regex %q does not compile: %w", pattern, err)
	}
	return &regexp2Matcher{re: re}, nil
}

// translateToRE2 rewrites Oniguruma's Unicode shorthand classes (\s \d \w and
// their negations) into explicit Go classes. ok is false for a construct it
// cannot express inside a bracket (a negated shorthand).
func translateToRE2(p string) (string, bool) {
	classes := map[byte]string{
		's': onigSpaceClass,
		'd': `\p{Nd}`,
		'w': `\p{L}\p{M}\p{Nd}\p{Pc}`,
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			e := p[i+1]
			i++
			lower := e | 0x20
			body, isClass := classes[lower]
			if !isClass {
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			negated := e != lower
			switch {
			case inClass && negated:
				return "", false
			case inClass:
				b.WriteString(body)
			case negated:
				b.WriteString("[^" + body + "]")
			default:
				b.WriteString("[" + body + "]")
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// a ']' right after '[' or '[^' is a literal
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case c == '[' && inClass:
			return "", false // nested classes: leave to regexp2
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
