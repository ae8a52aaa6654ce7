package gen

import (
	"fmt"
	"strings"
)

// RULER's niah template, answer prefix and needle (scripts/data/synthetic/constants.py, niah.py).
const (
	niahTemplate = "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?"
	niahPrefix   = " The special magic {type_needle_v} for {query} mentioned in the provided text are"
	niahNeedle   = "One of the special magic {type_needle_v} for {key} is: {value}."
	// noiseText is RULER's repeated-noise haystack; each of its sentences is one haystack unit.
	noiseText = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
)

var noiseSentences = splitNoise()

func splitNoise() []string {
	var out []string
	for _, s := range strings.SplitAfter(noiseText, ".") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// niahKind fixes a niah task's shape; options may change it.
type niahKind struct {
	name, desc              string
	keys, values, queries   int
	haystack, needle, keyTy string
}

func init() {
	for _, k := range []niahKind{
		{"niah_single", "one needle (a key with one value) in a haystack; return its value (RULER niah_single)", 1, 1, 1, "essay", "number", "word"},
		{"niah_multikey", "one needle among distractor needles with other keys; return the asked key's value (RULER niah_multikey)", 4, 1, 1, "essay", "number", "word"},
		{"niah_multivalue", "one key with several values hidden separately; return them all (RULER niah_multivalue)", 1, 4, 1, "essay", "number", "word"},
		{"niah_multiquery", "several keys hidden, several asked at once; return all their values (RULER niah_multiquery)", 4, 1, 4, "essay", "number", "word"},
	} {
		k := k
		opts := []opt{
			enumOpt("haystack", k.haystack, "essay: book text; noise: RULER's repeated sentences; needle: distractor needles", "essay", "noise", "needle"),
			enumOpt("needle", k.needle, "type of the values", "number", "uuid", "word"),
			enumOpt("key", k.keyTy, "type of the keys", "word", "number", "uuid"),
		}
		switch k.name {
		case "niah_multikey":
			opts = append(opts, intOpt("keys", fmt.Sprint(k.keys), "needles with distinct keys (one asked)", 1, 100))
		case "niah_multivalue":
			opts = append(opts, intOpt("values", fmt.Sprint(k.values), "values of the asked key", 1, 100))
		case "niah_multiquery":
			opts = append(opts, intOpt("queries", fmt.Sprint(k.queries), "keys hidden and asked", 1, 100))
		}
		register(&task{
			info:        TaskInfo{Name: k.name, Description: k.desc, Metric: "contains", MaxNewTokens: 128},
			opts:        append(opts, textOpts()...),
			newInstance: func(g *genContext, i int) (*instance, error) { return newNIAH(g, i, k) },
		})
	}
}

// newValue draws a needle key or value of type ty ("number", "uuid" or "word"), as RULER does.
func newValue(r *rng, ty string) string {
	switch ty {
	case "number":
		return fmt.Sprint(1000000 + r.intn(9000000))
	case "uuid":
		var b [16]byte
		for j := 0; j < 16; j += 8 {
			x := r.uint64()
			for k := 0; k < 8; k++ {
				b[j+k] = byte(x >> (8 * k))
			}
		}
		b[6] = b[6]&0x0f | 0x40 // version 4
		b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	default:
		return adjectives[r.intn(len(adjectives))] + "-" + nouns[r.intn(len(nouns))]
	}
}

// uniqueValues draws values of type ty not yet in used (and records them).
func uniqueValues(r *rng, ty string, n int, used map[string]bool) []string {
	out := make([]string, 0, n)
	for len(out) < n {
		v := newValue(r, ty)
		if !used[v] {
			used[v] = true
			out = append(out, v)
		}
	}
	return out
}

func fill(template string, kv ...string) string {
	return strings.NewReplacer(kv...).Replace(template)
}

func newNIAH(g *genContext, i int, k niahKind) (*instance, error) {
	s := g.spec
	k.keys = s.intOption("keys", k.keys)
	k.values = s.intOption("values", k.values)
	k.queries = s.intOption("queries", k.queries)
	k.keys = max(k.keys, k.queries)
	hay, needleTy, keyTy := s.option("haystack"), s.option("needle"), s.option("key")
	typeV := needleTy + "s" // RULER names the types in the plural: numbers, uuids, words

	r := g.rng(i)
	used := map[string]bool{}
	keys := uniqueValues(r, keyTy, k.keys, used)
	var needles, answers []string
	for _, key := range keys[:k.queries] { // the first keys are the asked ones
		for _, v := range uniqueValues(r, needleTy, k.values, used) {
			answers = append(answers, v)
			needles = append(needles, fill(niahNeedle, "{type_needle_v}", typeV, "{key}", key, "{value}", v))
		}
	}
	for _, key := range keys[k.queries:] {
		v := uniqueValues(r, needleTy, 1, used)[0]
		needles = append(needles, fill(niahNeedle, "{type_needle_v}", typeV, "{key}", key, "{value}", v))
	}
	// The first needle's depth is stratified over the samples; the others fall anywhere.
	depths := make([]float64, len(needles))
	depths[0] = g.stratifiedDepth(i, r)
	for j := 1; j < len(depths); j++ {
		depths[j] = r.float()
	}

	query := keys[0]
	if k.queries > 1 {
		query = strings.Join(keys[:k.queries-1], ", ") + ", and " + keys[k.queries-1]
	}
	template, prefix := niahTemplate, niahPrefix
	if k.queries*k.values == 1 { // RULER's singular wording
		sing := strings.NewReplacer("Some", "A", "are all", "is").Replace
		template = strings.ReplaceAll(sing(template), "are", "is")
		prefix = strings.ReplaceAll(sing(prefix), "are", "is")
		typeV = needleTy
	}
	prefix = fill(prefix, "{type_needle_v}", typeV, "{query}", query)
	head, tail, _ := strings.Cut(fill(template, "{type_needle_v}", typeV, "{query}", query), "{context}")
	in := &instance{answers: answers, answerPrefix: prefix, depth: depths[0]}
	wrap := func(context string) string { return head + context + tail + prefix }

	switch hay {
	case "essay":
		c, err := g.corpus()
		if err != nil {
			return nil, err
		}
		start := c.sentenceStart(r.intn(c.len()))
		in.minN, in.maxN, in.unitTokens = 0, 64*c.len(), 1.3
		in.build = func(n int) string { return wrap(c.insertAtSentences(start, n, depths, needles)) }
	case "noise":
		in.minN, in.maxN, in.unitTokens = 0, 1<<24, 6
		in.build = func(n int) string {
			return wrap(lineHaystack(n, depths, needles, func(j int) string { return noiseSentences[j%len(noiseSentences)] }, len(noiseSentences)))
		}
	case "needle":
		// Distractor needles with fresh keys and values, drawn once and grown on demand.
		dr := r.fork()
		var distractors []string
		in.minN, in.maxN, in.unitTokens = 0, 1<<22, 25
		in.build = func(n int) string {
			for len(distractors) < n {
				kv := uniqueValues(dr, keyTy, 1, used)[0]
				vv := uniqueValues(dr, needleTy, 1, used)[0]
				distractors = append(distractors, fill(niahNeedle, "{type_needle_v}", needleTy+"s", "{key}", kv, "{value}", vv))
			}
			return wrap(lineHaystack(n, depths, needles, func(j int) string { return distractors[j] }, 1))
		}
	}
	return in, nil
}

// lineHaystack writes n haystack units, perUnit to a line, lines joined by newlines, with
// each insert on its own line before line floor(frac*lines) (RULER's sentences.insert).
func lineHaystack(n int, fracs []float64, inserts []string, unit func(int) string, perLine int) string {
	lines := (n + perLine - 1) / perLine
	at := make([][]int, lines+1) // at[l]: inserts that go before line l
	for k, f := range fracs {
		l := min(int(f*float64(lines)), lines)
		at[l] = append(at[l], k)
	}
	var b strings.Builder
	b.Grow(n * 24)
	first := true
	nl := func() {
		if !first {
			b.WriteByte('\n')
		}
		first = false
	}
	for l := 0; l <= lines; l++ {
		for _, k := range at[l] {
			nl()
			b.WriteString(inserts[k])
		}
		if l == lines {
			break
		}
		nl()
		for j := l * perLine; j < min(n, (l+1)*perLine); j++ {
			if j > l*perLine {
				b.WriteByte(' ')
			}
			b.WriteString(unit(j))
		}
	}
	return b.String()
}
