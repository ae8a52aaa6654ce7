package tokenizer

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// piece is a part of the input on its way through the pipeline. atStart
// records whether it begins at offset 0 of the original text (Metaspace's
// "first" prepend scheme needs it).
type piece struct {
	text    string
	atStart bool
}

// normalizer rewrites one piece of text between added tokens.
type normalizer interface {
	normalize(s string) string
}

type normalizerSeq []normalizer

func (n normalizerSeq) normalize(s string) string {
	for _, x := range n {
		s = x.normalize(s)
	}
	return s
}

// prependNormalizer adds a prefix to every non-empty piece.
type prependNormalizer string

func (p prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

// replaceNormalizer replaces every match of a pattern with content.
type replaceNormalizer struct {
	pattern matcher
	content string
}

func (r replaceNormalizer) normalize(s string) string {
	return replaceAll(s, r.pattern, r.content)
}

func replaceAll(s string, m matcher, content string) string {
	spans := m.findAll(s)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp[0]])
		b.WriteString(content)
		prev = sp[1]
	}
	b.WriteString(s[prev:])
	return b.String()
}

type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string) string { return strings.ToLower(s) }

type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// preTokenizer splits pieces into words (and may rewrite them).
type preTokenizer interface {
	preTokenize(pieces []piece) []piece
}

type preTokenizerSeq []preTokenizer

func (p preTokenizerSeq) preTokenize(pieces []piece) []piece {
	for _, x := range p {
		pieces = x.preTokenize(pieces)
	}
	return pieces
}

// splitBehavior says what becomes of the matched parts when splitting.
type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

var splitBehaviors = map[string]splitBehavior{
	"Removed": splitRemoved, "Isolated": splitIsolated, "MergedWithPrevious": splitMergedWithPrevious,
	"MergedWithNext": splitMergedWithNext, "Contiguous": splitContiguous,
}

type span struct {
	start, end int
	match      bool
}

// splitPieces cuts s at the matches of m and groups the parts as tokenizers'
// NormalizedString::split does; empty parts are dropped.
func splitPieces(p piece, m matcher, behavior splitBehavior, invert bool, dst []piece) []piece {
	s := p.text
	var parts []span
	prev := 0
	for _, sp := range m.findAll(s) {
		if sp[0] > prev {
			parts = append(parts, span{prev, sp[0], invert})
		}
		parts = append(parts, span{sp[0], sp[1], !invert})
		prev = sp[1]
	}
	if prev < len(s) {
		parts = append(parts, span{prev, len(s), invert})
	}
	var out []span
	switch behavior {
	case splitRemoved:
		for _, x := range parts {
			if !x.match {
				out = append(out, x)
			}
		}
	case splitIsolated:
		out = parts
	case splitMergedWithPrevious:
		prevMatch := false
		for _, x := range parts {
			if x.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = x.end
			} else {
				out = append(out, x)
			}
			prevMatch = x.match
		}
	case splitMergedWithNext:
		prevMatch := false
		for i := len(parts) - 1; i >= 0; i-- {
			x := parts[i]
			if x.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].start = x.start
			} else {
				out = append(out, x)
			}
			prevMatch = x.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	case splitContiguous:
		prevMatch := false
		for _, x := range parts {
			if x.match == prevMatch && len(out) > 0 {
				out[len(out)-1].end = x.end
			} else {
				out = append(out, x)
			}
			prevMatch = x.match
		}
	}
	for _, x := range out {
		if x.end > x.start {
			dst = append(dst, piece{text: s[x.start:x.end], atStart: p.atStart && x.start == 0})
		}
	}
	return dst
}

// splitPreTokenizer is tokenizers' Split.
type splitPreTokenizer struct {
	pattern  matcher
	behavior splitBehavior
	invert   bool
}

func (sp splitPreTokenizer) preTokenize(pieces []piece) []piece {
	var out []piece
	for _, p := range pieces {
		out = splitPieces(p, sp.pattern, sp.behavior, sp.invert, out)
	}
	return out
}

// gpt2Pattern is the split ByteLevel applies when use_regex is true.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// byteLevelPreTokenizer is tokenizers' ByteLevel: optional prefix space,
// optional GPT-2 split, then bytes mapped to visible characters.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	split          matcher // nil when use_regex is false
}

func (bl byteLevelPreTokenizer) preTokenize(pieces []piece) []piece {
	var out []piece
	for _, p := range pieces {
		if bl.addPrefixSpace && !strings.HasPrefix(p.text, " ") {
			p.text = " " + p.text
		}
		if bl.split != nil {
			out = splitPieces(p, bl.split, splitIsolated, false, out)
		} else if p.text != "" {
			out = append(out, p)
		}
	}
	for i := range out {
		out[i].text = byteLevelEncode(out[i].text)
	}
	return out
}

// prependScheme is Metaspace's rule for adding the replacement in front.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspacePreTokenizer is tokenizers' Metaspace (SentencePiece's "▁").
type metaspacePreTokenizer struct {
	replacement string
	scheme      prependScheme
	split       bool
}

func (ms metaspacePreTokenizer) preTokenize(pieces []piece) []piece {
	var out []piece
	for _, p := range pieces {
		p.text = strings.ReplaceAll(p.text, " ", ms.replacement)
		if !strings.HasPrefix(p.text, ms.replacement) &&
			(ms.scheme == prependAlways || (ms.scheme == prependFirst && p.atStart)) {
			p.text = ms.replacement + p.text
		}
		if ms.split {
			out = splitPieces(p, literalMatcher(ms.replacement), splitMergedWithNext, false, out)
		} else if p.text != "" {
			out = append(out, p)
		}
	}
	return out
}

// digitsPreTokenizer is tokenizers' Digits.
type digitsPreTokenizer struct{ individual bool }

func (d digitsPreTokenizer) preTokenize(pieces []piece) []piece {
	var out []piece
	var m matcher = digitRuns{}
	behavior := splitIsolated
	if d.individual {
		m = digitEach{}
	}
	for _, p := range pieces {
		out = splitPieces(p, m, behavior, false, out)
	}
	return out
}

type digitRuns struct{}

func (digitRuns) findAll(s string) [][2]int { return runsOf(s, unicode.IsNumber, true) }

type digitEach struct{}

func (digitEach) findAll(s string) [][2]int { return runsOf(s, unicode.IsNumber, false) }

// runsOf returns the spans of characters satisfying f, as runs or one by one.
func runsOf(s string, f func(rune) bool, merge bool) [][2]int {
	var spans [][2]int
	for i, r := range s {
		if !f(r) {
			continue
		}
		end := i + utf8.RuneLen(r)
		if merge && len(spans) > 0 && spans[len(spans)-1][1] == i {
			spans[len(spans)-1][1] = end
		} else {
			spans = append(spans, [2]int{i, end})
		}
	}
	return spans
}

// decoder turns tokens back into text pieces (tokenizers' decode_chain).
type decoder interface {
	decodeChain(tokens []string) []string
}

type decoderSeq []decoder

func (d decoderSeq) decodeChain(tokens []string) []string {
	for _, x := range d {
		tokens = x.decodeChain(tokens)
	}
	return tokens
}

type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var buf []byte
	for _, t := range tokens {
		buf = byteLevelBytes(t, buf)
	}
	return []string{lossyUTF8(buf)}
}

type replaceDecoder struct {
	pattern matcher
	content string
}

func (r replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = replaceAll(t, r.pattern, r.content)
	}
	return out
}

// byteFallbackDecoder turns runs of "<0xXX>" tokens into text; a run that is
// not valid UTF-8 gives one U+FFFD per byte.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken reads a byte-fallback token "<0xXX>".
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(t[3])
	lo, ok2 := hexDigit(t[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing copies of
// content from every token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (s stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		for n := 0; n < s.start; n++ {
			r, size := utf8.DecodeRuneInString(t)
			if size == 0 || r != s.content {
				break
			}
			t = t[size:]
		}
		for n := 0; n < s.stop; n++ {
			r, size := utf8.DecodeLastRuneInString(t)
			if size == 0 || r != s.content {
				break
			}
			t = t[:len(t)-size]
		}
		out[i] = t
	}
	return out
}

// metaspaceDecoder turns "▁" back into spaces and drops the space it
// prepended to the first token.
type metaspaceDecoder struct {
	replacement string
	scheme      prependScheme
}

func (m metaspaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		// tokenizers drops every replacement of the first token, not only a leading one
		if i == 0 && m.scheme != prependNever {
			out[i] = strings.ReplaceAll(t, m.replacement, "")
		} else {
			out[i] = strings.ReplaceAll(t, m.replacement, " ")
		}
	}
	return out
}

// postProcessor adds special tokens around an encoded sequence.
type postProcessor interface {
	process(ids []int) []int
}

type postProcessorSeq []postProcessor

func (p postProcessorSeq) process(ids []int) []int {
	for _, x := range p {
		ids = x.process(ids)
	}
	return ids
}

// templateProcessor is TemplateProcessing's single-sequence template,
// resolved to ids: before, the sequence, after.
type templateProcessor struct{ before, after []int }

func (t templateProcessor) process(ids []int) []int {
	out := make([]int, 0, len(t.before)+len(ids)+len(t.after))
	out = append(out, t.before...)
	out = append(out, ids...)
	return append(out, t.after...)
}

// identityProcessor is a post-processor that changes no ids (ByteLevel).
type identityProcessor struct{}

func (identityProcessor) process(ids []int) []int { return ids }

var gpt2MatcherOnce struct {
	sync.Once
	m matcher
}

// gpt2Matcher is the compiled gpt2Pattern, shared by all tokenizers.
func gpt2Matcher() matcher {
	gpt2MatcherOnce.Do(func() {
		m, err := compileRegex(gpt2Pattern)
		if err != nil {
			panic("tokenizer: the built-in GPT-2 pattern does not compile: " + err.Error())
		}
		gpt2MatcherOnce.m = m
	})
	return gpt2MatcherOnce.m
}
