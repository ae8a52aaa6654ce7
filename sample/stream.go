package sample

import (
	"strings"
)

// Stream turns generated tokens into text as they come, and ends the text
// at the first stop string, which may span several tokens. Text that could
// still be the start of a stop string, or that ends in a partial UTF-8
// character, is held back until the next tokens decide it.
type Stream struct {
	decode func(ids []int) string
	stops  []string
	ids    []int
	// Incremental decoding as in text-generation-inference: the text of
	// ids[prefix:] minus that of ids[prefix:read] is what the tokens since
	// read added (decoders treat a sequence's first token specially, e.g.
	// SentencePiece drops its leading space, so both start at prefix).
	prefix, read int
	text         string // all decoded text so far
	sent         int    // bytes of text already returned by Push
	stopped      bool
}

// NewStream decodes with decode (ids -> text); stops are the stop strings
// (empty ones are ignored).
func NewStream(decode func(ids []int) string, stops []string) *Stream {
	var st []string
	for _, s := range stops {
		if s != "" {
			st = append(st, s)
		}
	}
	return &Stream{decode: decode, stops: st}
}

// Push adds a token and returns the text that is now final (possibly
// empty), and whether a stop string ended the text (the stop string itself
// is not returned, and later Pushes return nothing).
func (s *Stream) Push(id int) (string, bool) {
	if s.stopped {
		return "", true
	}
	s.ids = append(s.ids, id)
	before := s.decode(s.ids[s.prefix:s.read])
	after := s.decode(s.ids[s.prefix:])
	if len(after) > len(before) && strings.HasPrefix(after, before) && !strings.HasSuffix(after, "\uFFFD") {
		s.text += after[len(before):]
		s.prefix, s.read = s.read, len(s.ids)
	}
	// Held-back text (heldBack) keeps every possible start of a stop string
	// unsent, so the search starts at the first unsent byte.
	if at := s.firstStop(s.sent); at >= 0 {
		s.stopped = true
		out := s.text[s.sent:at]
		s.text, s.sent = s.text[:at], at
		return out, true
	}
	end := len(s.text) - s.heldBack()
	if end <= s.sent {
		return "", false
	}
	out := s.text[s.sent:end]
	s.sent = end
	return out, false
}

// Flush returns the text held back (at the end of generation, when no more
// tokens can complete a stop string).
func (s *Stream) Flush() string {
	if s.stopped {
		return ""
	}
	// Tokens whose text never completed (a partial character at the end).
	if s.read < len(s.ids) {
		before := s.decode(s.ids[s.prefix:s.read])
		after := s.decode(s.ids[s.prefix:])
		if strings.HasPrefix(after, before) {
			s.text += after[len(before):]
		}
		s.read = len(s.ids)
	}
	out := s.text[s.sent:]
	s.sent = len(s.text)
	return out
}

// Text is all the final text so far (what Push and Flush returned).
func (s *Stream) Text() string { return s.text[:s.sent] }

// firstStop is the byte offset of the earliest stop string at or after
// from, or -1.
func (s *Stream) firstStop(from int) int {
	best := -1
	for _, st := range s.stops {
		if i := strings.Index(s.text[from:], st); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	return best
}

// heldBack is the length of the longest suffix of the unsent text that is
// a proper prefix of a stop string.
func (s *Stream) heldBack() int {
	n := 0
	tail := s.text[s.sent:]
	for _, st := range s.stops {
		for k := min(len(st)-1, len(tail)); k > n; k-- {
			if strings.HasSuffix(tail, st[:k]) {
				n = k
				break
			}
		}
	}
	return n
}
