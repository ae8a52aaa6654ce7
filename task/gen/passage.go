package gen

import (
	"fmt"
	"strconv"
	"strings"
)

// LongBench's passage_retrieval_en and passage_count prompts (config/dataset2prompt.json), with
// "from Wikipedia" changed to the source of our paragraphs. Contexts are "Paragraph k: text"
// joined by blank lines, as in LongBench's data.
const (
	retrievalTemplate = "Here are {n} paragraphs from books and speeches, along with an abstract. Please determine which paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n{input}\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\n"
	retrievalPrefix   = "The answer is:"
	countTemplate     = "There are some paragraphs below sourced from books and speeches. Some of them may be duplicates. Please carefully read these paragraphs and determine how many unique paragraphs there are after removing duplicates. In other words, how many non-repeating paragraphs are there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs after removing duplicates. The output format should only contain the number, such as 1, 2, 3, and so on.\n\n"
	countPrefix       = "The final answer is:"
	// tokensPerParagraph sets the default paragraph count (LongBench: 30 paragraphs in ~10k tokens).
	tokensPerParagraph = 300
	abstractWindow     = 100 // the abstract comes from sentences within a paragraph's first words
)

func init() {
	register(&task{
		info: TaskInfo{Name: "passage_retrieval", Metric: "retrieval", MaxNewTokens: 32,
			Description: "numbered paragraphs and an abstract (sentences of one of them, shuffled); return \"Paragraph K\" (LongBench passage_retrieval_en)"},
		opts: append([]opt{
			intOpt("paragraphs", "", "number of paragraphs (default len/300, at least 3)", 2, 10000),
		}, textOpts()...),
		newInstance: newRetrieval,
	})
	register(&task{
		info: TaskInfo{Name: "passage_count", Metric: "count", MaxNewTokens: 32,
			Description: "numbered paragraphs, some repeated; return how many are unique (LongBench passage_count)"},
		opts: append([]opt{
			intOpt("paragraphs", "", "number of paragraphs shown, repeats included (default len/300, at least 3)", 2, 10000),
		}, textOpts()...),
		newInstance: newCount,
	})
}

// regions gives p paragraphs disjoint places in the corpus, evenly spaced from a random start
// (so they come from different texts), each starting at a sentence start.
type regions struct {
	c      *corpus
	starts []int
	cap    int // words each region can hold without reaching the next
}

func newRegions(c *corpus, r *rng, p int) regions {
	s0 := r.intn(c.len())
	span := c.len() / p
	rg := regions{c: c, starts: make([]int, p), cap: span}
	for k := range rg.starts {
		rg.starts[k] = c.sentenceStart(s0 + k*span)
	}
	for k := range rg.starts {
		next := s0 + (k+1)*span
		if k+1 < p {
			next = rg.starts[k+1]
		}
		rg.cap = min(rg.cap, next-rg.starts[k])
	}
	return rg
}

// quota splits n words over p paragraphs as evenly as possible.
func quota(n, p, k int) int {
	q := n / p
	if k < n%p {
		q++
	}
	return q
}

func (rg regions) text(k, words int) string { return rg.c.text(rg.starts[k], words) }

func defaultParagraphs(s Spec) int {
	return s.intOption("paragraphs", max(3, s.Length/tokensPerParagraph))
}

func newRetrieval(g *genContext, i int) (*instance, error) {
	c, err := g.corpus()
	if err != nil {
		return nil, err
	}
	p := defaultParagraphs(g.spec)
	r := g.rng(i)
	rg := newRegions(c, r, p)
	order := r.perm(p) // order[j]: region shown as paragraph j+1
	depth := g.stratifiedDepth(i, r)
	target := min(int(depth*float64(p)), p-1)

	// Abstract: up to three sentences of 8+ words from the start of the target paragraph, shuffled.
	start := rg.starts[order[target]]
	var sentences []string
	for from, w := 0, 0; w < min(abstractWindow, rg.cap); w++ {
		if c.isSentenceEnd(start + w) {
			if w+1-from >= 8 {
				sentences = append(sentences, c.text(start+from, w+1-from))
			}
			from = w + 1
		}
	}
	if len(sentences) == 0 { // one long sentence: use its opening words
		sentences = []string{c.text(start, min(40, rg.cap))}
	}
	r.shuffle(len(sentences), func(a, b int) { sentences[a], sentences[b] = sentences[b], sentences[a] })
	abstract := strings.Join(sentences[:min(3, len(sentences))], " ")

	head, tail, _ := strings.Cut(fill(retrievalTemplate, "{n}", strconv.Itoa(p), "{input}", abstract), "{context}")
	in := &instance{
		answers: []string{fmt.Sprintf("Paragraph %d", target+1)}, answerPrefix: retrievalPrefix, depth: depth,
		minN: p * min(abstractWindow, rg.cap), maxN: p * rg.cap, unitTokens: 1.3,
		parts: &promptParts{before: head, after: tail + retrievalPrefix, input: abstract},
	}
	in.build = func(n int) string {
		var b strings.Builder
		b.WriteString(head)
		for j, k := range order {
			if j > 0 {
				b.WriteString("\n\n")
			}
			fmt.Fprintf(&b, "Paragraph %d: %s", j+1, rg.text(k, quota(n, p, k)))
		}
		b.WriteString(tail)
		b.WriteString(retrievalPrefix)
		return b.String()
	}
	in.check = func(prompt string) error {
		ctx := prompt[len(head):strings.LastIndex(prompt, "\n\nThe following is an abstract.")]
		for _, s := range sentences[:min(3, len(sentences))] {
			if strings.Count(ctx, s) != 1 {
				return fmt.Errorf("abstract sentence %q occurs %d times in the paragraphs", s, strings.Count(ctx, s))
			}
		}
		return nil
	}
	return in, nil
}

func newCount(g *genContext, i int) (*instance, error) {
	c, err := g.corpus()
	if err != nil {
		return nil, err
	}
	slots := defaultParagraphs(g.spec)
	r := g.rng(i)
	unique := max(2, slots/4)
	unique += r.intn(slots - unique + 1)
	rg := newRegions(c, r, unique)
	shown := make([]int, slots) // shown[j]: region of paragraph j+1
	for j := range shown {
		if j < unique {
			shown[j] = j
		} else {
			shown[j] = r.intn(unique)
		}
	}
	r.shuffle(slots, func(a, b int) { shown[a], shown[b] = shown[b], shown[a] })

	head, tail, _ := strings.Cut(countTemplate, "{context}")
	in := &instance{
		answers: []string{strconv.Itoa(unique)}, answerPrefix: countPrefix, depth: -1,
		minN: unique * min(20, rg.cap), maxN: unique * rg.cap, unitTokens: 1.3 * float64(slots) / float64(unique),
		parts: &promptParts{before: head, after: tail + countPrefix},
	}
	in.build = func(n int) string {
		var b strings.Builder
		b.WriteString(head)
		for j, k := range shown {
			if j > 0 {
				b.WriteString("\n\n")
			}
			fmt.Fprintf(&b, "Paragraph %d: %s", j+1, rg.text(k, quota(n, unique, k)))
		}
		b.WriteString(tail)
		b.WriteString(countPrefix)
		return b.String()
	}
	return in, nil
}
