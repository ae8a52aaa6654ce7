// Package progress draws progress bars on terminals only: a log file or a
// pipe gets no bar (no carriage returns, no redraws), and the commands' own
// one-line messages say what happened.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar; the nil *Bar draws nothing, so callers need no
// checks.
type Bar struct {
	bar     *progressbar.ProgressBar
	stopped bool // Break ended the line
}

// New returns a bar of total steps on w, or nil when w is not a terminal.
func New(w io.Writer, total int, desc string) *Bar {
	if w == nil || total <= 0 || !IsTerminal(w) {
		return nil
	}
	return newBar(w, total, desc)
}

func newBar(w io.Writer, total int, desc string) *Bar {
	b := &Bar{}
	b.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return b
}

// Add advances the bar by n steps.
func (b *Bar) Add(n int) {
	if b != nil {
		_ = b.bar.Add(n)
	}
}

// Set moves the bar to step n.
func (b *Bar) Set(n int) {
	if b != nil {
		_ = b.bar.Set(n)
	}
}

// Describe changes the text before the bar.
func (b *Bar) Describe(s string) {
	if b != nil {
		b.bar.Describe(s)
	}
}

// Finish completes the bar and ends its line.
func (b *Bar) Finish() {
	if b != nil && !b.bar.IsFinished() {
		_ = b.bar.Finish()
	}
}

// Break ends the bar's line when it stops unfinished (an error, Ctrl-C), so
// that the next message starts on a line of its own.
func (b *Bar) Break() {
	if b != nil && !b.bar.IsFinished() && !b.stopped {
		b.stopped = true
		_ = b.bar.Exit() // runs the completion callback: the newline
	}
}
