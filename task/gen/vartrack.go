package gen

import (
	"fmt"
	"sort"
	"strings"
)

// RULER's variable tracking template and answer prefix (constants.py).
const (
	vtTemplate = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above."
	vtPrefix   = " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assigned the value {query}, they are:"
	// vtExampleUnits is the haystack size of the one-shot example (RULER builds it at 500 tokens).
	vtExampleNoise, vtExampleWords = 60, 250
)

func init() {
	register(&task{
		info: TaskInfo{Name: "vartrack", Metric: "contains", MaxNewTokens: 30,
			Description: "variable tracking: chains VAR A = 12345, VAR B = VAR A, ... hidden in a haystack; return every variable bound to the asked value (RULER vt)"},
		opts: append([]opt{
			intOpt("hops", "4", "assignments after the first in each chain", 1, 50),
			intOpt("chains", "1", "chains (one asked, the others distract)", 1, 20),
			enumOpt("haystack", "noise", "noise: RULER's repeated sentences; essay: book text", "noise", "essay"),
		}, textOpts()...),
		newInstance: newVartrack,
	})
}

// vtChains draws chains of hops+1 distinct five-letter variable names, each chain bound to its
// own value, and returns the statements chain by chain.
func vtChains(r *rng, chains, hops int, used map[string]bool) (vars [][]string, stmts [][]string, values []string) {
	for c := 0; c < chains; c++ {
		var names []string
		for len(names) < hops+1 {
			var b [5]byte
			for j := range b {
				b[j] = byte('A' + r.intn(26))
			}
			if name := string(b[:]); !used[name] {
				used[name] = true
				names = append(names, name)
			}
		}
		value := ""
		for value == "" || used[value] {
			value = fmt.Sprint(10000 + r.intn(89999))
		}
		used[value] = true
		s := []string{fmt.Sprintf("VAR %s = %s", names[0], value)}
		for j := 0; j < hops; j++ {
			s = append(s, fmt.Sprintf("VAR %s = VAR %s", names[j+1], names[j]))
		}
		vars, stmts, values = append(vars, names), append(stmts, s), append(values, value)
	}
	return vars, stmts, values
}

// vtLayout flattens the chains into inserts with random positions, sorted within each chain
// so that every assignment comes after the one it refers to.
func vtLayout(r *rng, stmts [][]string, period string) (inserts []string, fracs []float64) {
	for _, chain := range stmts {
		f := make([]float64, len(chain))
		for j := range f {
			f[j] = r.float()
		}
		sort.Float64s(f)
		for j, s := range chain {
			inserts = append(inserts, s+period)
			fracs = append(fracs, f[j])
		}
	}
	return inserts, fracs
}

func newVartrack(g *genContext, i int) (*instance, error) {
	s := g.spec
	hops, chains, hay := s.intOption("hops", 4), s.intOption("chains", 1), s.option("haystack")
	r := g.rng(i)
	used := map[string]bool{}

	var c *corpus
	if hay == "essay" {
		var err error
		if c, err = g.corpus(); err != nil {
			return nil, err
		}
	}
	// haystackWith renders n units of the chosen haystack around the inserts.
	haystackWith := func(start, n int, inserts []string, fracs []float64) string {
		if hay == "essay" {
			return c.insertAtSentences(start, n, fracs, inserts)
		}
		return lineHaystack(n, fracs, inserts, func(j int) string { return noiseSentences[j%len(noiseSentences)] }, len(noiseSentences))
	}
	period := ""
	if hay == "essay" {
		period = "."
	}
	render := func(vars []string, value, context string) (string, string) {
		body := fill(vtTemplate, "{context}", context, "{query}", value)
		prefix := fill(vtPrefix, "{num_v}", fmt.Sprint(len(vars)), "{query}", value)
		return body, prefix
	}

	// One solved example first, as RULER does.
	exVars, exStmts, exValues := vtChains(r, chains, hops, used)
	exInserts, exFracs := vtLayout(r, exStmts, period)
	exStart, exN := 0, vtExampleNoise
	if hay == "essay" {
		exStart, exN = c.sentenceStart(r.intn(c.len())), vtExampleWords
	}
	exBody, exPrefix := render(exVars[0], exValues[0], haystackWith(exStart, exN, exInserts, exFracs))
	example := exBody + exPrefix + " " + strings.Join(exVars[0], " ") + "\n\n"

	vars, stmts, values := vtChains(r, chains, hops, used)
	inserts, fracs := vtLayout(r, stmts, period)
	start := 0
	in := &instance{answers: vars[0], depth: fracs[0], minN: 0}
	if hay == "essay" {
		start = c.sentenceStart(r.intn(c.len()))
		in.maxN, in.unitTokens = 64*c.len(), 1.3
	} else {
		in.maxN, in.unitTokens = 1<<24, 6
	}
	head, tail, _ := strings.Cut(fill(vtTemplate, "{query}", values[0]), "{context}")
	_, in.answerPrefix = render(vars[0], values[0], "")
	in.build = func(n int) string {
		return example + head + haystackWith(start, n, inserts, fracs) + tail + in.answerPrefix
	}
	return in, nil
}
