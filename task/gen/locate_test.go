package gen

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/namm-dev/namm/task/gen/haystack"
)

// headerRE finds a section header at a line start in any of locate's layouts: the label word
// and its number.
var headerRE = regexp.MustCompile(`(?m)^(?:\[|--- |### |\()?([A-Z][a-z]+) (?:number )?(\d+)\b`)

// TestLocateAnswerable reads each sample as a user would: the sections by their headers, and
// the quotation's text found in exactly one of them, whose label is the answer.
func TestLocateAnswerable(t *testing.T) {
	for _, spec := range []string{"locate:len=4000:n=12", "locate:len=1500:n=8:sections=3", "locate:len=8000:n=4"} {
		for _, x := range generate(t, spec) {
			ctx := x.Context
			heads := headerRE.FindAllStringSubmatchIndex(ctx, -1)
			if len(heads) < 3 {
				t.Fatalf("%s: %d section headers found", x.ID, len(heads))
			}
			type section struct{ label, text string }
			var secs []section
			for k, h := range heads {
				end := len(ctx)
				if k+1 < len(heads) {
					end = heads[k+1][0]
				}
				secs = append(secs, section{ctx[h[2]:h[3]] + " " + ctx[h[4]:h[5]], ctx[h[1]:end]})
				if ctx[h[2]:h[3]] == "Paragraph" {
					t.Fatalf("%s: a section labelled like LongBench's passage_retrieval", x.ID)
				}
			}
			for _, p := range quotedPieces(t, x) {
				var in []string
				for _, s := range secs {
					if strings.Contains(s.text, p) {
						in = append(in, s.label)
					}
				}
				if len(in) != 1 || in[0] != x.Answers[0] {
					t.Fatalf("%s: quoted %q is in %v, answer %v", x.ID, p, in, x.Answers)
				}
			}
			if !strings.Contains(x.Prompt[len(x.Prompt)-len(x.AnswerPrefix)-len(x.Input)-200:], x.Input) {
				t.Fatalf("%s: the quotation is not asked about at the end", x.ID)
			}
		}
	}
}

// TestLocateQuotationUnique: in a text full of a repeated formula (as the Bible's "And the LORD
// spake unto Moses, saying,") a quotation is still found in one section only: a quotation whose
// words stand elsewhere is drawn again.
func TestLocateQuotationUnique(t *testing.T) {
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, "And the keeper spoke unto the crowd of the harbour, saying, peace be with you all. Verse %d tells of boat %d and its sail. ", i, i*7)
	}
	if err := haystack.Register("refrain", b.String()); err != nil {
		t.Fatal(err)
	}
	for _, x := range generate(t, "locate:len=3000:n=40:texts=refrain") {
		for _, p := range quotedPieces(t, x) {
			if n := strings.Count(x.Context, p); n > 1 {
				t.Fatalf("%s: the quoted %q stands %d times in the sections", x.ID, p, n)
			}
		}
	}
}

// quotedPieces returns the quotation of a locate sample as it stands in the text: whole, or
// (shuffled sentences) each sentence of four words or more on its own.
func quotedPieces(t *testing.T, x Sample) []string {
	t.Helper()
	if strings.Contains(x.Context, x.Input) {
		return []string{x.Input}
	}
	var pieces []string
	for _, s := range regexp.MustCompile(`[^.!?]+[.!?]["')_]*`).FindAllString(x.Input, -1) {
		if s = strings.TrimSpace(s); len(strings.Fields(s)) >= 4 {
			pieces = append(pieces, s)
		}
	}
	if len(pieces) == 0 {
		t.Fatalf("%s: no quotation found in %q", x.ID, x.Input)
	}
	return pieces
}
