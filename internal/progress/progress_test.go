package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestNoBarOffTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var buf bytes.Buffer
	for _, out := range []any{&buf, w, nil} {
		var b *Bar
		switch o := out.(type) {
		case *bytes.Buffer:
			b = New(o, 10, "x")
		case *os.File:
			b = New(o, 10, "x")
		default:
			b = New(nil, 10, "x")
		}
		if b != nil {
			t.Fatalf("a bar on %T, not a terminal", out)
		}
		b.Add(1) // the nil bar is inert
		b.Set(5)
		b.Describe("y")
		b.Break()
		b.Finish()
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %q off a terminal", buf.String())
	}
}

// TestBreakEndsTheLine: a bar stopped halfway leaves the cursor on a new
// line, so an error message is not glued to it.
func TestBreakEndsTheLine(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, 10, "eval")
	b.Add(3)
	b.Break()
	b.Break()
	buf.WriteString("interrupted")
	if !strings.Contains(buf.String(), "\ninterrupted") || strings.Contains(buf.String(), "\n\ninterrupted") {
		t.Fatalf("want the message on the line after the bar, no blank line: %q", buf.String())
	}
}
