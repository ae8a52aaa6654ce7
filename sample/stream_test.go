package sample

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/namm-dev/namm/tokenizer"
)

// The streamed text equals the whole sequence decoded at once, cut before
// the earliest stop string, for SentencePiece (byte fallback: characters
// split over tokens) and byte-level BPE tokenizers; no piece is a partial
// character.
func TestStreamMatchesWholeDecode(t *testing.T) {
	words := []string{"the", " cat", " sat", "é", "北京", "🙂", "\n", " stop", "STOP", "ST", "OP", " ", "on", "mat", "x"}
	for _, dir := range []string{"../testdata/models/tiny-llama", "../testdata/models/tiny-qwen2"} {
		tok, err := tokenizer.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		decode := func(ids []int) string { return tok.Decode(ids, true) }
		r := rand.New(rand.NewPCG(9, 9))
		for trial := range 300 {
			var b strings.Builder
			for range 1 + r.IntN(25) {
				b.WriteString(words[r.IntN(len(words))])
			}
			ids := tok.Encode(b.String(), false)
			full := decode(ids)
			var stops []string
			switch trial % 4 {
			case 1:
				stops = []string{"STOP"}
			case 2:
				stops = []string{"t s", "北", "\n\n"}
			case 3:
				stops = []string{"🙂", "at on", ""}
			}
			want, wantStop := full, false
			for _, st := range stops {
				if st == "" {
					continue
				}
				if i := strings.Index(full, st); i >= 0 && i <= len(want) {
					want, wantStop = full[:i], true
				}
			}
			s := NewStream(decode, stops)
			var got strings.Builder
			stopped := false
			for _, id := range ids {
				piece, stop := s.Push(id)
				if !utf8.ValidString(piece) || strings.Contains(piece, "\uFFFD") && !strings.Contains(full, "\uFFFD") {
					t.Fatalf("%s: piece %q is not whole characters", dir, piece)
				}
				got.WriteString(piece)
				if stop {
					stopped = true
					break
				}
			}
			if !stopped {
				got.WriteString(s.Flush())
			}
			if got.String() != want || stopped != wantStop {
				t.Fatalf("%s, stops %q, text %q:\n got %q (stopped %v)\nwant %q (stopped %v)", dir, stops, full, got.String(), stopped, want, wantStop)
			}
			if s.Text() != want {
				t.Fatalf("Text() = %q, want %q", s.Text(), want)
			}
		}
	}
}

// A stop string split over tokens is held back, not sent, until it is
// known not to be one.
func TestStreamHoldsBackStopPrefix(t *testing.T) {
	pieces := []string{"Hello", " wor", "ld", " EN", "X", " EN", "D", " more"}
	decode := func(ids []int) string {
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(pieces[id])
		}
		return b.String()
	}
	s := NewStream(decode, []string{" END"})
	want := []string{"Hello", " wor", "ld", "", " ENX", ""}
	for i, w := range want {
		got, stop := s.Push(i)
		if got != w || stop != (i == 6) {
			t.Fatalf("push %d: got %q (stop %v), want %q", i, got, stop, w)
		}
	}
	if got, stop := s.Push(6); got != "" || !stop {
		t.Fatalf("push 6: got %q, %v; want the stop", got, stop)
	}
	if s.Text() != "Hello world ENX" {
		t.Fatalf("text %q", s.Text())
	}
}
