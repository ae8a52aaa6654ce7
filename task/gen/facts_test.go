package gen

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestFactsKindsAnswerable checks each kind's answer against the prompt itself: the asked
// entity's statements carry the answer (retrieve, chain), the update comes after the
// original value, count's answer is the number of the entity's events, list's answers all
// carry the asked value, collect's answers appear in the text in their order.
func TestFactsKindsAnswerable(t *testing.T) {
	for _, kind := range []string{"retrieve", "update", "chain", "count", "list", "collect"} {
		for _, x := range generate(t, "facts:len=900:n=6:kind="+kind) {
			checkCommon(t, "facts", x, 900)
			body := strings.TrimSuffix(x.Prompt, x.AnswerPrefix)
			q := body[strings.LastIndex(body, "\n")+1:]
			switch kind {
			case "retrieve", "chain":
				if len(x.Answers) != 1 || !strings.Contains(body, x.Answers[0]) {
					t.Fatalf("%s: answer %q not in the prompt", x.ID, x.Answers)
				}
			case "update":
				// the answer is a value stated after another value of the same entity and attribute
				i := strings.LastIndex(body, x.Answers[0])
				if i < 0 || !regexp.MustCompile(`(?i)(changed|switched|update|replaced)`).MatchString(body[:i+len(x.Answers[0])]) {
					t.Fatalf("%s: the updated value %q is not stated as an update", x.ID, x.Answers[0])
				}
			case "count":
				n, err := strconv.Atoi(x.Answers[0])
				if err != nil {
					t.Fatal(err)
				}
				// the asked person's name is in the question: "... did NAME SURNAME ..."
				found := 0
				for _, p := range firstNames {
					for _, l := range lastNames {
						name := p + " " + l
						if strings.Contains(q, name) {
							// an instruction may repeat the question: its mention is no event
							text := body[:len(body)-len(q)]
							found = strings.Count(text, name) - strings.Count(text, q)
						}
					}
				}
				if found != n {
					t.Fatalf("%s: %d events of the asked person in the text, answer %d", x.ID, found, n)
				}
			case "collect":
				if len(x.Answers) < 2 {
					t.Fatalf("%s: collect with %d answers", x.ID, len(x.Answers))
				}
				at := 0
				for _, a := range x.Answers {
					i := strings.Index(body[at:], a)
					if i < 0 {
						t.Fatalf("%s: %q not in the prompt after the answers before it", x.ID, a)
					}
					at += i + len(a)
				}
			case "list":
				if len(x.Answers) < 2 {
					t.Fatalf("%s: list with %d answers", x.ID, len(x.Answers))
				}
				for _, a := range x.Answers {
					if !strings.Contains(body, a) {
						t.Fatalf("%s: %q not in the prompt", x.ID, a)
					}
				}
			}
		}
	}
}

// TestRecordsPhrasingHeldOut checks that the held-out family shares no statement, question,
// instruction or update form with the training family, and that training prompts never use
// its key words.
func TestRecordsPhrasingHeldOut(t *testing.T) {
	held := strings.Join(append(append(append([]string{}, heldOutGrammar.state...), heldOutGrammar.ask...), heldOutGrammar.intro...), "\n")
	for _, w := range []string{"regist", "filed", "file "} {
		if !strings.Contains(strings.ToLower(held), w) {
			continue
		}
		for _, f := range [][]string{trainGrammar.state, trainGrammar.ask, trainGrammar.intro, trainGrammar.update, trainGrammar.openers, collectStates, collectQuestions} {
			for _, s := range f {
				if strings.Contains(strings.ToLower(s), w) {
					t.Fatalf("training phrasing %q uses the held-out word %q", s, w)
				}
			}
		}
	}
	for _, x := range generate(t, "facts:len=700:n=20") {
		if strings.Contains(x.Prompt, "registry") || strings.Contains(x.Prompt, "registered") {
			// the haystack text could say it; the inserted statements must not
			for _, s := range heldOutGrammar.state {
				head, _, _ := strings.Cut(s, "{")
				if head != "" && strings.Contains(x.Prompt, head) {
					t.Fatalf("%s: a training prompt holds the held-out form %q", x.ID, s)
				}
			}
		}
	}
	for _, x := range generate(t, "records:len=700:n=6") {
		checkCommon(t, "records", x, 700)
		if !strings.Contains(x.Prompt, "regist") || !strings.HasSuffix(x.Prompt, " Answer:") {
			t.Fatalf("%s: not a registry prompt: %q", x.ID, x.Prompt[len(x.Prompt)-200:])
		}
	}
}

// A lookalike shares a word of the asked entity's name (not "the" or "Project"), and is
// neither the asked entity nor one drawn before.
func TestLookalikeNames(t *testing.T) {
	r := newRNG("lookalike", 1)
	for _, c := range []entityClass{personClass, orgClass, objectClass} {
		for range 50 {
			target := c.name(r)
			used := map[string]bool{target: true}
			drawn := map[string]bool{target: true} // this test's own record of the names taken
			for range 10 {
				e := lookalikeOf(r, c, target, used)
				shared := false
				for _, w := range strings.Fields(e) {
					shared = shared || (w != "the" && w != "Project" && slices.Contains(strings.Fields(target), w))
				}
				if !shared && !strings.HasPrefix(target, "Project ") { // a project's one noun may find no twin
					t.Errorf("%q is no lookalike of %q", e, target)
				}
				if drawn[e] {
					t.Fatalf("%q drawn again (the asked entity %q)", e, target)
				}
				drawn[e] = true
			}
		}
	}
}
