// Package gen generates RULER-style synthetic long-context tasks (needle in a haystack,
// variable tracking, common and frequent words extraction, question answering) and
// LongBench-style passage retrieval and passage counting, at a length given in tokens of the
// model's tokenizer.
//
// Generation is deterministic: the same Spec and tokenizer give byte-identical samples.
// Generate is safe for concurrent use.
// Haystacks come from the public-domain texts of package haystack, eval split by default.
//
// Prompts follow RULER's templates (scripts/data/synthetic/constants.py) with the answer
// prefix appended, as RULER does for base models, and LongBench's (config/dataset2prompt.json).
// Two deliberate differences: trailing spaces of templates are dropped (a prompt ending in a
// space makes a lone space token), and LongBench's "from Wikipedia" says "from books and
// speeches", since the paragraphs come from the haystack texts.
package gen

import (
	"fmt"
	"sort"
	"strings"
)

// Counter measures text in the model's tokens (the engine passes its tokenizer).
type Counter interface {
	Encode(text string, addSpecial bool) []int
}

// Sample is one generated task instance.
type Sample struct {
	ID           string   // canonical spec and index, unique within and across specs
	Task         string   // task name, e.g. "niah_single"
	Prompt       string   // the whole input, ending with AnswerPrefix
	Answers      []string // reference answers, never empty; see Metric for how they are used
	Metric       string   // "contains", "qa_f1", "retrieval" or "count"
	MaxNewTokens int      // generation budget (RULER's tokens_to_generate, LongBench's maxlen)
	Length       int      // tokens of Prompt, len(tok.Encode(Prompt, true)) (special tokens included)

	// AnswerPrefix is the end of Prompt that starts the model's answer (RULER's answer_prefix,
	// LongBench's "The answer is:"); a chat template can wrap Prompt minus this suffix as
	// the user turn and put AnswerPrefix after it.
	AnswerPrefix string
	// Depth is where the (first) answer was placed, as a fraction of the context: 0 at its
	// start, 1 at its end; -1 for tasks without a single position (cwe, fwe, passage_count).
	Depth float64

	// Context and Input are Prompt's two parts in LongBench's terms, both substrings of it:
	// the long text (documents, paragraphs, the text that hides the facts) and the question
	// about it (for passage_retrieval the abstract; for passage_count, whose question is the
	// template's, Input is empty). Tasks whose prompt has no such split (niah_*, vartrack,
	// cwe, fwe) leave both empty.
	Context string
	Input   string
}

// TaskInfo describes a task for listings and validation.
type TaskInfo struct {
	Name         string
	Description  string
	Metric       string
	MaxNewTokens int
	Options      []OptionInfo
}

// OptionInfo is one task option (Spec.Options key).
type OptionInfo struct {
	Key     string
	Default string // "" when the default depends on the length
	Help    string
}

// task is one registered generator.
type task struct {
	info TaskInfo
	opts []opt
	// newInstance draws sample i's random choices; the instance then builds prompts of any size.
	newInstance func(g *genContext, i int) (*instance, error)
}

var registry = map[string]*task{}

func register(t *task) {
	for _, o := range t.opts {
		t.info.Options = append(t.info.Options, o.OptionInfo)
	}
	registry[t.info.Name] = t
}

// Tasks lists every task, sorted by name.
func Tasks() []TaskInfo {
	out := make([]TaskInfo, 0, len(registry))
	for _, t := range registry {
		out = append(out, t.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func taskNames() []string {
	var names []string
	for _, t := range Tasks() {
		names = append(names, t.Name)
	}
	return names
}

// Generate makes spec.N samples of spec.Task whose prompts have close to spec.Length tokens
// (never more; at least 98% of it at lengths the haystack granularity allows) as counted by tok.
func Generate(spec Spec, tok Counter) ([]Sample, error) {
	if tok == nil {
		return nil, fmt.Errorf("gen: nil tokenizer")
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	t := registry[spec.Task]
	g, err := newGenContext(spec, tok)
	if err != nil {
		return nil, fmt.Errorf("gen %s: %w", spec, err)
	}
	samples := make([]Sample, 0, spec.N)
	var hint fitHint
	for i := 0; i < spec.N; i++ {
		in, err := t.newInstance(g, i)
		if err != nil {
			return nil, fmt.Errorf("gen %s sample %d: %w", spec, i, err)
		}
		prompt, length, h, err := fit(in, tok, spec.Length, hint, spec.Slack)
		if err != nil {
			return nil, fmt.Errorf("gen %s sample %d: %w", spec, i, err)
		}
		hint = h
		if length < spec.Length*9/10 {
			return nil, fmt.Errorf("gen %s sample %d: the haystack ran out at %d tokens; use a shorter len, fewer paragraphs, or split=train", spec, i, length)
		}
		if in.check != nil {
			if err := in.check(prompt); err != nil {
				return nil, fmt.Errorf("gen %s sample %d: %w", spec, i, err)
			}
		}
		context, input, err := in.parts.of(prompt)
		if err != nil {
			return nil, fmt.Errorf("gen %s sample %d: %w", spec, i, err)
		}
		samples = append(samples, Sample{
			ID:           fmt.Sprintf("%s#%d", spec, i),
			Task:         spec.Task,
			Prompt:       prompt,
			Answers:      in.answers,
			Metric:       t.info.Metric,
			MaxNewTokens: t.info.MaxNewTokens,
			Length:       length,
			AnswerPrefix: in.answerPrefix,
			Depth:        in.depth,
			Context:      context,
			Input:        input,
		})
	}
	return samples, nil
}

// instance is one sample's random choices, able to build its prompt at any haystack size.
type instance struct {
	// build returns the prompt with n haystack units (words, sentences, lines: task-specific).
	// It must be deterministic, and its token count should grow with n.
	build      func(n int) string
	minN, maxN int     // allowed range of n
	unitTokens float64 // rough tokens per unit, for the first guess

	answers      []string
	answerPrefix string
	depth        float64
	check        func(prompt string) error // optional final consistency check
	parts        *promptParts              // where the context lies in the prompt; nil: no split
}

// promptParts splits a prompt built as before + context + after, where after holds input.
type promptParts struct {
	before, after, input string
}

// of returns the prompt's context and input ("", "" when p is nil).
func (p *promptParts) of(prompt string) (context, input string, err error) {
	if p == nil {
		return "", "", nil
	}
	if len(prompt) < len(p.before)+len(p.after) || !strings.HasPrefix(prompt, p.before) ||
		!strings.HasSuffix(prompt, p.after) || !strings.Contains(p.after, p.input) {
		return "", "", fmt.Errorf("the prompt is not its template around the context")
	}
	return prompt[len(p.before) : len(prompt)-len(p.after)], p.input, nil
}

// genContext is what every sample of one Generate call shares.
type genContext struct {
	spec  Spec
	tok   Counter
	label string // canonical spec: the root of every random stream
	depth []int  // depthSlot[i]: sample i's stratum of [0,1), a permutation of 0..N-1
}

func newGenContext(spec Spec, tok Counter) (*genContext, error) {
	g := &genContext{spec: spec, tok: tok, label: spec.String()}
	g.depth = newRNG(g.label, -1).perm(spec.N)
	return g, nil
}

// rng returns sample i's random stream.
func (g *genContext) rng(i int) *rng { return newRNG(g.label, int64(i)) }

// stratifiedDepth places sample i's answer in its own 1/N stratum of [0,1], so that the depths
// of a spec's samples spread uniformly.
func (g *genContext) stratifiedDepth(i int, r *rng) float64 {
	return (float64(g.depth[i]) + r.float()) / float64(g.spec.N)
}

// corpus returns the haystack text stream chosen by the split and texts options.
func (g *genContext) corpus() (*corpus, error) {
	var names []string
	if t := g.spec.Options["texts"]; t != "" {
		names = strings.Split(t, "+")
		sort.Strings(names)
	}
	return loadCorpus(g.spec.option("split"), names)
}

func (g *genContext) count(text string) int { return len(g.tok.Encode(text, true)) }
