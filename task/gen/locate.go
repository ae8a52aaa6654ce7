package gen

import (
	"fmt"
	"strconv"
	"strings"
)

// The locate task: the text is cut into numbered sections (each from another place of the
// haystack), a quotation is taken from one of them, and the answer is that section's label
// ("Part 7"). It is passage retrieval composed from a grammar, for training: the label word,
// the header's layout, the instruction, the question and where the quotation stands vary from
// sample to sample, and the quotation is one to three sentences from anywhere in the
// section's opening, or a run of words cut from a sentence. It never uses LongBench's
// template nor its label "Paragraph", so that passage_retrieval stays a task the base models
// never saw.

func init() {
	register(&task{
		info: TaskInfo{Name: "locate", Metric: "first_number", MaxNewTokens: 16,
			Description: "numbered sections of text and a quotation from one of them, in varied phrasings; return the section's label (passage retrieval for training)"},
		opts: append([]opt{
			intOpt("sections", "", "number of sections (default len/300, at least 3)", 2, 10000),
		}, textOpts()...),
		newInstance: newLocate,
	})
}

// locateWindow is how far into its section a quotation may reach at most, in words.
const locateWindow = 150

var (
	locateLabels = []string{"Section", "Part", "Chapter", "Document", "Passage", "Excerpt", "Entry",
		"Article", "Note", "Page", "Segment", "Extract", "Item", "Record", "Text"}
	// locateHeaders lay out a section's header: {L} label word, {N} number, {T} the text.
	locateHeaders = []string{"{L} {N}: {T}", "[{L} {N}] {T}", "{L} {N}.\n{T}", "--- {L} {N} ---\n{T}",
		"{L} {N} — {T}", "### {L} {N}\n{T}", "({L} {N}) {T}", "{L} number {N}:\n{T}"}
	locateIntros = []string{
		"", "Below are {C} {l}s of text, each with its number.\n\n",
		"Read the {C} numbered {l}s that follow. A quotation from one of them comes after them.\n\n",
		"The text below is divided into {l}s.\n\n", "Here are several {l}s from different books and speeches.\n\n",
		"Question: {Q}\nRead the {l}s below, then answer.\n\n",
		"Keep track of the numbers of the {l}s below; you will be asked where a sentence comes from.\n\n",
	}
	locateQuestions = []string{
		"Which {l} contains the following text?\n\"{Q}\"", "In which {l} does this appear: \"{Q}\"",
		"The quotation \"{Q}\" is taken from one of the {l}s above. Which one?",
		"Quotation: {Q}\nWhich {l} is it from?", "Find the {l} that this passage comes from: \"{Q}\"",
		"Where was this written? \"{Q}\" Give the number of the {l}.",
		"\"{Q}\"\nWhich of the {l}s above says this?", "Name the {l} in which the words \"{Q}\" occur.",
	}
	locatePrefixes = []string{"Answer:", "The answer is", "A:", "It is from", "Answer: it comes from", "Response:"}
)

func newLocate(g *genContext, i int) (*instance, error) {
	c, err := g.corpus()
	if err != nil {
		return nil, err
	}
	p := g.spec.intOption("sections", max(3, g.spec.Length/tokensPerParagraph))
	r := g.rng(i)
	rg := newRegions(c, r, p)
	// The quotation's window, small enough that every section holds it at the asked length.
	window := min(locateWindow, rg.cap, max(20, g.spec.Length*9/(20*p)))
	order := r.perm(p) // order[j]: region shown as section j+1
	depth := g.stratifiedDepth(i, r)
	target := min(int(depth*float64(p)), p-1)
	label := pickOne(r, locateLabels)
	header := pickOne(r, locateHeaders)
	first := 1
	if r.intn(4) == 0 { // not always counted from 1
		first = 1 + r.intn(90)
	}

	// The quotation: whole sentences of the section's opening window (one to three, in their
	// order or shuffled), or a run of 6-14 words from anywhere in the window. A quotation
	// whose text also stands elsewhere in the sections (a refrain, a formula of the Bible) is
	// drawn again, against the sections as long as the asked length can make them.
	start := rg.starts[order[target]]
	var sentences [][2]int // [from, words]
	for from, w := 0, 0; w < window; w++ {
		if c.isSentenceEnd(start + w) {
			if w+1-from >= 6 {
				sentences = append(sentences, [2]int{from, w + 1 - from})
			}
			from = w + 1
		}
	}
	longest := min(rg.cap, window+2*g.spec.Length/p) // words a section may reach (a token is < 1 word)
	var all strings.Builder
	for k := range p {
		all.WriteString(rg.text(k, longest))
		all.WriteString("\n")
	}
	unique := func(pieces []string) bool {
		for _, piece := range pieces {
			if strings.Count(all.String(), piece) != 1 {
				return false
			}
		}
		return true
	}
	draw := func() []string {
		if len(sentences) == 0 || r.intn(3) == 0 {
			n := min(window, 6+r.intn(9))
			return []string{c.text(start+r.intn(window-n+1), n)}
		}
		k := min(len(sentences), 1+r.intn(3))
		at := r.intn(len(sentences) - k + 1)
		var quote []string
		for _, s := range sentences[at : at+k] {
			quote = append(quote, c.text(start+s[0], s[1]))
		}
		if r.intn(2) == 0 {
			r.shuffle(len(quote), func(a, b int) { quote[a], quote[b] = quote[b], quote[a] })
		}
		return quote
	}
	quote := draw()
	for try := 1; try < 32 && !unique(quote); try++ {
		quote = draw()
	}
	q := strings.Join(quote, " ")
	lower, plural := strings.ToLower(label), strings.ToLower(label)+"s"
	if label == "Entry" {
		plural = "entries"
	}
	question := fill(pickOne(r, locateQuestions), "{l}s", plural, "{l}", lower, "{Q}", q)
	intro := fill(pickOne(r, locateIntros), "{C}", strconv.Itoa(p), "{l}s", plural, "{l}", lower, "{Q}", strings.ReplaceAll(question, " above", " below"))
	prefix := pickOne(r, locatePrefixes)
	after := "\n\n" + question + "\n" + prefix
	answer := fmt.Sprintf("%s %d", label, first+target)
	in := &instance{
		answers: []string{answer}, answerPrefix: prefix, depth: depth,
		minN: p * window, maxN: p * rg.cap, unitTokens: 1.3,
		parts: &promptParts{before: intro, after: after, input: q},
	}
	in.build = func(n int) string {
		var b strings.Builder
		b.WriteString(intro)
		for j, k := range order {
			if j > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString(fill(header, "{L}", label, "{N}", strconv.Itoa(first+j), "{T}", rg.text(k, quota(n, p, k))))
		}
		b.WriteString(after)
		return b.String()
	}
	in.check = func(prompt string) error {
		ctx := prompt[len(intro) : len(prompt)-len(after)]
		for _, s := range quote {
			if n := strings.Count(ctx, s); n != 1 {
				return fmt.Errorf("locate: quoted text %q occurs %d times in the sections", s, n)
			}
		}
		return nil
	}
	return in, nil
}
