package runner

import (
	"testing"

	"github.com/namm-dev/namm/task/gen"
	"github.com/namm-dev/namm/task/reader"
	"github.com/namm-dev/namm/tokenizer"
)

// TestPromptIDsFitAfterRetokenising: a prompt cut in the middle and
// tokenised again can come out longer than the limit (niah_single at 8k
// with Mistral's tokenizer: 8,065 tokens for a limit of 8,064, which a
// model of 8,192 positions then refused). PromptIDs keeps every prompt
// within MaxLen - maxNew, and gives the plain LongBench cut where it fits.
func TestPromptIDsFitAfterRetokenising(t *testing.T) {
	tok, err := tokenizer.LoadDir("../testdata/tokenizers/mistral-7b")
	if err != nil {
		t.Fatal(err)
	}
	xs, err := gen.Generate(gen.Spec{Task: "niah_single", Length: 8192, N: 6, Seed: 1}, tok)
	if err != nil {
		t.Fatal(err)
	}
	const maxLen, maxNew = 8192, 128
	limit := maxLen - maxNew
	r := &Runner{Tok: tok, MaxLength: maxLen}
	over := 0
	for _, x := range xs {
		ids, original, err := r.PromptIDs(x.Prompt, maxNew)
		if err != nil {
			t.Fatal(err)
		}
		if original != len(tok.Encode(x.Prompt, true)) {
			t.Fatalf("%s: original length %d", x.ID, original)
		}
		if len(ids) > limit {
			t.Fatalf("%s: %d prompt tokens for a limit of %d", x.ID, len(ids), limit)
		}
		if original <= limit {
			continue
		}
		// LongBench's cut, once.
		kept := reader.TruncateMiddle(tok.Encode(x.Prompt, true), limit)
		once := tok.Encode(tok.Decode(kept[:len(kept)/2], true)+tok.Decode(kept[len(kept)/2:], true), true)
		if len(once) > limit {
			over++
		} else if len(ids) != len(once) {
			t.Fatalf("%s: %d tokens where LongBench's cut fits with %d", x.ID, len(ids), len(once))
		}
	}
	if over == 0 {
		t.Fatal("no sample tokenises past the limit after the cut: the case this test is for is missing")
	}
	t.Logf("%d of %d samples tokenise past the limit after LongBench's cut", over, len(xs))
}
