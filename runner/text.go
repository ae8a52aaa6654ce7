package runner

import (
	"strings"

	"github.com/namm-dev/namm/tokenizer"
)

// TextStream turns generated token ids, as they come, into text that is
// safe to show: it decodes everything generated so far and hands out the
// new suffix only once it no longer ends in a partial character (a
// character split over byte-fallback tokens decodes to U+FFFD until its
// last byte arrives), so streamed pieces join to the whole decoding.
type TextStream struct {
	tok     *tokenizer.Tokenizer
	ids     []int
	printed string
}

// NewTextStream starts an empty stream.
func (r *Runner) NewTextStream() *TextStream { return &TextStream{tok: r.Tok} }

// Add records a token and returns the text that became ready ("" if none).
func (s *TextStream) Add(id int) string {
	s.ids = append(s.ids, id)
	text := s.tok.Decode(s.ids, true)
	if !strings.HasPrefix(text, s.printed) || strings.HasSuffix(text, "\uFFFD") {
		return ""
	}
	piece := text[len(s.printed):]
	s.printed = text
	return piece
}

// Flush returns what is left of the whole decoding once the stream ends
// (a trailing partial character, or text whose decoding changed earlier
// characters: then nothing can be taken back, and only a suffix that
// extends what was handed out is returned).
func (s *TextStream) Flush() string {
	text := s.tok.Decode(s.ids, true)
	if !strings.HasPrefix(text, s.printed) {
		return ""
	}
	piece := text[len(s.printed):]
	s.printed = text
	return piece
}
