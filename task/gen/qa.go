package gen

import (
	"fmt"
	"strings"
)

// RULER's qa template (constants.py) and document format (qa.py).
const (
	qaTemplate = "Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}"
	qaPrefix   = " Answer:"
)

// relation is a kind of synthetic fact: "The capital of <subject> is <answer>."
type relation struct {
	fact, question string // with {s} for the subject and {a} for the answer
	subject        func(r *rng) string
	answer         func(r *rng) string
}

func pickSuffix(r *rng, s ...string) string { return s[r.intn(len(s))] }

var (
	country = func(r *rng) string {
		return inventName(r, 2+r.intn(2), pickSuffix(r, "ia", "and", "ora", "esh", "ovia", "ara"))
	}
	town = func(r *rng) string {
		return inventName(r, 1+r.intn(2), pickSuffix(r, "marsh", "ford", "wick", "holm", "gate", "by", "ton", "mere", "stead"))
	}
	person = func(r *rng) string {
		return inventName(r, 2, pickSuffix(r, "", "a", "o", "ric", "wen")) + " " + inventName(r, 2, pickSuffix(r, "son", "er", "ley", "wood", "ridge", "more"))
	}
	thing = func(r *rng) string { return inventName(r, 2, "") }
)

var relations = []relation{
	{"The capital of {s} is {a}.", "What is the capital of {s}?", country, town},
	{"The town of {s} was founded by {a}.", "Who founded the town of {s}?", town, person},
	{"The currency of {s} is called the {a}.", "What is the currency of {s} called?", country, thing},
	{"The captain of the ship {s} is {a}.", "Who is the captain of the ship {s}?", thing, person},
	{"The {s} was invented by {a}.", "Who invented the {s}?", func(r *rng) string {
		return strings.ToLower(inventName(r, 2, pickSuffix(r, "scope", "graph", "meter", "phone", "lith")))
	}, person},
}

func init() {
	register(&task{
		info: TaskInfo{Name: "qa", Metric: "qa_f1", MaxNewTokens: 32,
			Description: "question answering: a synthetic fact (\"The capital of Veloria is Dunmarsh.\") in one of many text documents, with distractor facts about other subjects; return the entity"},
		opts: append([]opt{
			intOpt("distractors", "4", "facts of the same kind about other subjects, in other documents", 0, 1000),
			intOpt("docwords", "120", "words per document (documents end at a sentence end)", 20, 5000),
		}, textOpts()...),
		newInstance: newQA,
	})
}

// uniqueNames draws n distinct names not in used.
func uniqueNames(r *rng, gen func(*rng) string, n int, used map[string]bool) []string {
	out := make([]string, 0, n)
	for len(out) < n {
		if s := gen(r); !used[s] {
			used[s] = true
			out = append(out, s)
		}
	}
	return out
}

func newQA(g *genContext, i int) (*instance, error) {
	s := g.spec
	nDistract, docWords := s.intOption("distractors", 4), s.intOption("docwords", 120)
	c, err := g.corpus()
	if err != nil {
		return nil, err
	}
	r := g.rng(i)
	rel := relations[r.intn(len(relations))]
	used := map[string]bool{}
	subjects := uniqueNames(r, rel.subject, nDistract+1, used)
	answers := uniqueNames(r, rel.answer, nDistract+1, used)
	facts := make([]string, len(subjects))
	fracs := make([]float64, len(subjects))
	for k := range subjects {
		facts[k] = fill(rel.fact, "{s}", subjects[k], "{a}", answers[k])
		fracs[k] = r.float()
	}
	fracs[0] = g.stratifiedDepth(i, r)
	question := fill(rel.question, "{s}", subjects[0])
	head, tail, _ := strings.Cut(fill(qaTemplate, "{query}", question), "{context}")

	// Documents: runs of about docWords words of the stream, each ending at a sentence end
	// when one comes within another docWords words.
	start := c.sentenceStart(r.intn(c.len()))
	var ends []int // ends[d]: word offset where document d ends
	docsUpTo := func(n int) []int {
		for len(ends) == 0 || ends[len(ends)-1] < n {
			from := 0
			if len(ends) > 0 {
				from = ends[len(ends)-1]
			}
			e := from + docWords
			for e < from+2*docWords && !c.isSentenceEnd(start+e-1) {
				e++
			}
			if !c.isSentenceEnd(start + e - 1) {
				e = from + docWords
			}
			ends = append(ends, e)
		}
		k := 0
		for ends[k] < n {
			k++
		}
		out := append([]int(nil), ends[:k]...)
		return append(out, n) // the last document is cut at n
	}

	in := &instance{
		answers: answers[:1], answerPrefix: qaPrefix, depth: fracs[0],
		minN: docWords, maxN: 64 * c.len(), unitTokens: 1.3,
		parts: &promptParts{before: head, after: tail + qaPrefix, input: question},
	}
	in.build = func(n int) string {
		docEnds := docsUpTo(n)
		byDoc := make([][]string, len(docEnds))
		for k, f := range fracs {
			d := min(int(f*float64(len(docEnds))), len(docEnds)-1)
			byDoc[d] = append(byDoc[d], facts[k])
		}
		var b strings.Builder
		b.WriteString(head)
		from := 0
		for d, e := range docEnds {
			if d > 0 {
				b.WriteString("\n\n")
			}
			fmt.Fprintf(&b, "Document %d:\n", d+1)
			mid := make([]float64, len(byDoc[d]))
			for k := range mid {
				mid[k] = 0.5
			}
			b.WriteString(c.insertAtSentences(start+from, e-from, mid, byDoc[d]))
			from = e
		}
		b.WriteString(tail)
		b.WriteString(qaPrefix)
		return b.String()
	}
	return in, nil
}
