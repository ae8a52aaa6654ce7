package train

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/task/gen"
	"github.com/namm-dev/namm/task/gen/haystack"
	"github.com/namm-dev/namm/tokenizer"
)

// GenSeedBase is the smallest task-generator seed the training data uses.
// Evaluation uses small seeds (gen.DefaultSeed is 1), so training examples
// never coincide with evaluation samples.
const GenSeedBase = 1_000_000

// Document is one training text.
type Document struct {
	Name string
	Text string
}

// DataOptions configure BuildTrainData.
type DataOptions struct {
	Tokens        int     // training tokens wanted, rounded up to whole sequences
	SeqLen        int     // tokens per sequence (L)
	Seed          int64   // in [0, 1e9); the same seed gives the same file
	SyntheticFrac float64 // share of sequences filled with synthetic task examples, in [0, 1]

	// Texts are the haystack texts to train on (their train split); nil means all.
	Texts []string
	// Extra are further training documents (e.g. more public-domain books), used whole.
	Extra []Document
	// Tasks are the task generators to draw examples from, each drawn equally often; nil
	// means all of gen.Tasks(). An entry may carry the generator's options as a task spec
	// does ("facts:kind=collect:distractors=24"), and a repeated entry is drawn more often.
	Tasks []string
	// TaskTexts, when set, is the generators' "texts" option (haystack texts joined by "+",
	// e.g. a corpus registered with haystack.Register); it overrides Texts for examples.
	TaskTexts string
	// MinExample is the shortest example prompt in tokens (default 640: some generators
	// cannot make shorter prompts).
	MinExample int
	// MaxExample caps the prompts of the examples drawn log-uniformly (0: the room left in
	// the sequence). Short examples pack many to a sequence: the retrieval signal per token.
	MaxExample int
	// LongShare is the share of examples that fill the room left in their sequence instead
	// (the long prompts a model must also read).
	LongShare float64
	// Workers is the number of goroutines (default GOMAXPROCS).
	Workers int
	// Progress, when set, is called after each sequence with the number done and the total.
	Progress func(done, total int)
}

// answerMargin is the room (tokens) kept after a prompt for its answer and EOS.
const answerMargin = 128

// DataStats summarise what BuildTrainData made.
type DataStats struct {
	Sequences          int            `json:"sequences"`
	TextSequences      int            `json:"text_sequences"`
	SyntheticSequences int            `json:"synthetic_sequences"`
	Examples           map[string]int `json:"examples"`          // task -> examples
	ExampleTokens      int            `json:"example_tokens"`    // tokens inside synthetic examples
	FailedExamples     int            `json:"failed_examples"`   // generator errors or too long (replaced by text)
	SourceTokens       map[string]int `json:"source_tokens"`     // document -> tokens of its train text
	SourceTokensTotal  int            `json:"source_tokens_all"` // sum of SourceTokens
	// TextPasses is how many times the text sequences go through the documents (each token is
	// seen that many times, rounded up, plus the few windows that top up synthetic sequences).
	TextPasses float64 `json:"text_passes"`
}

// docTokens is one tokenized document.
type docTokens struct {
	name string
	ids  []int32
}

type builder struct {
	tok      *tokenizer.Tokenizer
	opt      DataOptions
	bos, eos int // -1 when none
	docs     []docTokens
	cum      []float64 // cumulative token counts of docs, for length-weighted choice
	tasks    []taskDraw
	texts    string // the "texts" task option when Texts is restricted

	// The pure text sequences walk through the documents in order, epoch after epoch (each
	// epoch a new shuffle), so that no text token is seen more often than the passes say.
	textSeq   []int   // textSeq[i]: index of sequence i among the text sequences, -1 if synthetic
	epochs    [][]int // epochs[e]: document order of epoch e (made on demand)
	epochCum  [][]int // epochCum[e][k]: stream offset where the k-th document of epoch e starts
	epochMu   sync.Mutex
	streamLen int // tokens of one epoch: every document with its BOS and EOS
}

// BuildTrainData makes the training token file: SyntheticFrac of the
// sequences are packed with task examples (prompt, answers, EOS; seeds >=
// GenSeedBase, haystack train split) topped up with text, the rest are
// windows of the training texts starting with BOS, with EOS and BOS between
// documents. Each sequence depends only on (Seed, its index), so the result is
// the same for any number of workers.
func BuildTrainData(tok *tokenizer.Tokenizer, opt DataOptions) (*TokenFile, DataStats, error) {
	var stats DataStats
	if err := checkOptions(&opt); err != nil {
		return nil, stats, err
	}
	b, err := newBuilder(tok, opt)
	if err != nil {
		return nil, stats, err
	}
	stats.SourceTokens = map[string]int{}
	for _, d := range b.docs {
		stats.SourceTokens[d.name] = len(d.ids)
		stats.SourceTokensTotal += len(d.ids)
	}
	count := (opt.Tokens + opt.SeqLen - 1) / opt.SeqLen
	b.textSeq = make([]int, count)
	texts := 0
	for i := range count {
		b.textSeq[i] = -1
		if !b.synthetic(i) {
			b.textSeq[i] = texts
			texts++
		}
	}
	stats.TextPasses = float64(texts*(opt.SeqLen-1)) / float64(b.streamLen)
	f := NewTokenFile(TokenHeader{VocabSize: tok.VocabSize(), SeqLen: opt.SeqLen, Count: count, BOS: b.bos, EOS: b.eos})
	per := make([]seqStats, count)
	f.Roles = make([]byte, count*opt.SeqLen)
	err = parallel(count, opt.Workers, opt.Progress, func(i int) error {
		ids, st := b.sequence(i)
		per[i] = st
		copy(f.Roles[i*opt.SeqLen:(i+1)*opt.SeqLen], st.roles)
		return f.SetSeq(i, ids)
	})
	if err != nil {
		return nil, stats, err
	}
	stats.Sequences = count
	stats.Examples = map[string]int{}
	for _, st := range per {
		if st.synthetic {
			stats.SyntheticSequences++
		} else {
			stats.TextSequences++
		}
		for _, t := range st.tasks {
			stats.Examples[t]++
		}
		stats.ExampleTokens += st.exampleTokens
		stats.FailedExamples += st.failed
	}
	return f, stats, nil
}

func checkOptions(opt *DataOptions) error {
	switch {
	case opt.SeqLen < 16:
		return fmt.Errorf("train data: seq-len %d is too short (want >= 16)", opt.SeqLen)
	case opt.Tokens < opt.SeqLen:
		return fmt.Errorf("train data: tokens %d is less than one sequence of %d", opt.Tokens, opt.SeqLen)
	case opt.Seed < 0 || opt.Seed >= 1_000_000_000:
		return fmt.Errorf("train data: seed %d out of range [0, 1e9)", opt.Seed)
	case !(opt.SyntheticFrac >= 0 && opt.SyntheticFrac <= 1):
		return fmt.Errorf("train data: synthetic-frac %g out of range [0, 1]", opt.SyntheticFrac)
	case !(opt.LongShare >= 0 && opt.LongShare <= 1):
		return fmt.Errorf("train data: long-share %g out of range [0, 1]", opt.LongShare)
	}
	if opt.MinExample <= 0 {
		opt.MinExample = 640
	}
	if opt.MaxExample < 0 || (opt.MaxExample > 0 && opt.MaxExample < opt.MinExample) {
		return fmt.Errorf("train data: max-example %d is below min-example %d", opt.MaxExample, opt.MinExample)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	return nil
}

func newBuilder(tok *tokenizer.Tokenizer, opt DataOptions) (*builder, error) {
	if tok == nil {
		return nil, errors.New("train data: nil tokenizer")
	}
	b := &builder{tok: tok, opt: opt, bos: -1, eos: -1}
	if id, ok := tok.BOS(); ok {
		b.bos = id
	}
	if id, ok := tok.EOS(); ok {
		b.eos = id
	}
	names := opt.Texts
	if names == nil {
		names = haystack.Names()
	} else {
		b.texts = strings.Join(names, "+")
	}
	var docs []Document
	for _, n := range names {
		text, err := haystack.Split(n, haystack.Train)
		if err != nil {
			return nil, fmt.Errorf("train data: %w", err)
		}
		docs = append(docs, Document{Name: n, Text: text})
	}
	docs = append(docs, opt.Extra...)
	if len(docs) == 0 {
		return nil, errors.New("train data: no training texts")
	}
	b.docs = tokenizeDocs(tok, docs, opt.Workers)
	total := 0.0
	for _, d := range b.docs {
		if len(d.ids) == 0 {
			return nil, fmt.Errorf("train data: document %q is empty", d.name)
		}
		total += float64(len(d.ids))
		b.cum = append(b.cum, total)
	}
	if opt.Tasks == nil {
		for _, t := range gen.Tasks() {
			b.tasks = append(b.tasks, taskDraw{info: t, name: t.Name})
		}
	} else {
		for _, s := range opt.Tasks {
			d, err := parseTaskDraw(s)
			if err != nil {
				return nil, err
			}
			b.tasks = append(b.tasks, d)
		}
	}
	if opt.SyntheticFrac > 0 && len(b.tasks) == 0 {
		return nil, errors.New("train data: synthetic-frac > 0 but no tasks")
	}
	if opt.TaskTexts != "" {
		b.texts = opt.TaskTexts
	}
	for _, d := range b.docs {
		b.streamLen += len(d.ids)
		if b.bos >= 0 {
			b.streamLen++
		}
		if b.eos >= 0 {
			b.streamLen++
		}
	}
	return b, nil
}

// tokenizeDocs encodes every document (no special tokens), in parallel.
func tokenizeDocs(tok *tokenizer.Tokenizer, docs []Document, workers int) []docTokens {
	out := make([]docTokens, len(docs))
	_ = parallel(len(docs), workers, nil, func(i int) error {
		ids := tok.Encode(docs[i].Text, false)
		out[i] = docTokens{name: docs[i].Name, ids: make([]int32, len(ids))}
		for j, id := range ids {
			out[i].ids[j] = int32(id)
		}
		return nil
	})
	return out
}

// seqStats describe one built sequence.
type seqStats struct {
	synthetic     bool
	tasks         []string
	exampleTokens int
	failed        int
	roles         []byte // [SeqLen] Role* of each token
}

// synthetic reports whether sequence i is packed with task examples: the first draw of its
// random stream decides.
func (b *builder) synthetic(i int) bool {
	r := rand.New(rand.NewPCG(uint64(b.opt.Seed), uint64(i)))
	return r.Float64() < b.opt.SyntheticFrac
}

// sequence builds sequence i from its own random stream.
func (b *builder) sequence(i int) ([]int, seqStats) {
	r := rand.New(rand.NewPCG(uint64(b.opt.Seed), uint64(i)))
	L := b.opt.SeqLen
	seq := make([]int, 0, L)
	var st seqStats
	if r.Float64() >= b.opt.SyntheticFrac {
		for len(st.roles) < L {
			st.roles = append(st.roles, RoleText)
		}
		// BOS first, as at inference, where position 0 always holds it.
		if b.bos < 0 {
			return b.streamWindow(b.textSeq[i]*L, L), st
		}
		return append([]int{b.bos}, b.streamWindow(b.textSeq[i]*(L-1), L-1)...), st
	}
	st.synthetic = true
	// Some generators need more room than MinExample; a failure is retried with another
	// draw, three times in a row at most.
	for k, fails := 0, 0; L-len(seq) >= b.opt.MinExample+answerMargin && k < 64 && fails < 3; k++ {
		ids, promptLen, task, ok := b.example(r, i, k, L-len(seq))
		if !ok {
			st.failed++
			fails++
			continue
		}
		fails = 0
		for j := range ids {
			role := RolePrompt
			if j >= promptLen {
				role = RoleAnswer
			}
			st.roles = append(st.roles, role)
		}
		seq = append(seq, ids...)
		st.tasks = append(st.tasks, task)
		st.exampleTokens += len(ids)
	}
	for len(st.roles) < L {
		st.roles = append(st.roles, RoleText)
	}
	return b.fillText(r, seq, L-len(seq)), st
}

// Token roles, written beside the token file (OUT.roles: one byte per token)
// so the trainer can weight the loss: the answers of task examples carry the
// retrieval signal but are a tiny share of the tokens.
const (
	RoleText   byte = 0 // free text
	RolePrompt byte = 1 // a task example's prompt (haystack, question)
	RoleAnswer byte = 2 // a task example's answer and its EOS
)

// example generates one task example of at most room tokens: BOS, prompt, " " answers joined
// by ", " and ".", EOS.
func (b *builder) example(r *rand.Rand, i, k, room int) ([]int, int, string, bool) {
	draw := b.tasks[r.IntN(len(b.tasks))]
	task := draw.info
	hi := room - answerMargin
	length := hi
	if r.Float64() >= b.opt.LongShare { // log-uniform in [MinExample, min(hi, MaxExample)]
		lo, up := float64(b.opt.MinExample), float64(hi)
		if b.opt.MaxExample > 0 {
			up = math.Max(lo, math.Min(up, float64(b.opt.MaxExample)))
		}
		length = int(math.Exp(math.Log(lo) + r.Float64()*(math.Log(up)-math.Log(lo))))
	}
	spec := gen.Spec{Task: task.Name, Length: length, N: 1, Slack: 0.08, Seed: GenSeedBase + b.opt.Seed*1_000_000_000 + int64(i)*64 + int64(k),
		Options: maps.Clone(draw.options)}
	for _, o := range task.Options {
		switch {
		case o.Key == "split":
			spec.Options = setOption(spec.Options, "split", haystack.Train)
		case o.Key == "texts" && b.texts != "":
			spec.Options = setOption(spec.Options, "texts", b.texts)
		}
	}
	xs, err := gen.Generate(spec, b.tok)
	if err != nil || len(xs) == 0 {
		return nil, 0, "", false
	}
	ids := b.tok.Encode(xs[0].Prompt+" "+strings.Join(xs[0].Answers, ", ")+".", true)
	promptLen := xs[0].Length // tokens of the prompt with BOS, as gen counted them
	if b.bos >= 0 && (len(ids) == 0 || ids[0] != b.bos) {
		ids = append([]int{b.bos}, ids...)
		promptLen++
	}
	if b.eos >= 0 {
		ids = append(ids, b.eos)
	}
	if len(ids) > room {
		return nil, 0, "", false
	}
	return ids, min(promptLen, len(ids)-1), draw.name, true
}

// taskDraw is one entry of DataOptions.Tasks: a generator and the options it is asked with.
type taskDraw struct {
	info    gen.TaskInfo
	name    string // as given, e.g. "facts:kind=collect"; the statistics count examples by it
	options map[string]string
}

// parseTaskDraw reads "task[:key=value...]". Length, count and seed belong to the builder.
func parseTaskDraw(s string) (taskDraw, error) {
	spec, err := gen.ParseSpec(s)
	if err != nil {
		return taskDraw{}, fmt.Errorf("train data: %w", err)
	}
	for _, p := range strings.Split(s, ":")[1:] {
		if key, _, _ := strings.Cut(p, "="); key == "len" || key == "n" || key == "seed" {
			return taskDraw{}, fmt.Errorf("train data: task %q: %s is set by the builder, not the task", s, key)
		}
	}
	all := gen.Tasks()
	i := slices.IndexFunc(all, func(t gen.TaskInfo) bool { return t.Name == spec.Task })
	return taskDraw{info: all[i], name: strings.TrimSpace(s), options: spec.Options}, nil
}

func setOption(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// fillText appends n tokens of text: BOS, then a length-weighted random document from a random
// offset; where a document ends, EOS and BOS, then the start of another.
func (b *builder) fillText(r *rand.Rand, seq []int, n int) []int {
	if n <= 0 {
		return seq
	}
	if b.bos >= 0 {
		seq = append(seq, b.bos)
		n--
	}
	d := b.pickDoc(r)
	off := r.IntN(len(d.ids))
	for n > 0 {
		take := min(n, len(d.ids)-off)
		for _, id := range d.ids[off : off+take] {
			seq = append(seq, int(id))
		}
		n -= take
		off += take
		if n > 0 {
			if b.eos >= 0 {
				seq = append(seq, b.eos)
				n--
			}
			if n > 0 && b.bos >= 0 {
				seq = append(seq, b.bos)
				n--
			}
			d, off = b.pickDoc(r), 0
		}
	}
	return seq
}

// streamWindow returns n tokens of the document stream from offset p: epoch after epoch, each
// epoch every document once (BOS, its tokens, EOS) in an order shuffled by the seed and epoch.
func (b *builder) streamWindow(p, n int) []int {
	out := make([]int, 0, n)
	for len(out) < n {
		e, o := p/b.streamLen, p%b.streamLen
		order, cum := b.epoch(e)
		k := sort.SearchInts(cum, o+1) - 1 // the document whose span holds o
		d := b.docs[order[k]]
		j := o - cum[k] // offset inside the document's span: BOS, its ids, EOS
		start := len(out)
		if b.bos >= 0 {
			if j == 0 {
				out = append(out, b.bos)
			} else {
				j-- // from here on an offset into d.ids (len(d.ids): only EOS is left)
			}
		}
		take := min(len(d.ids)-j, n-len(out))
		for _, id := range d.ids[j : j+take] {
			out = append(out, int(id))
		}
		if b.eos >= 0 && j+take == len(d.ids) && len(out) < n {
			out = append(out, b.eos)
		}
		p += len(out) - start
	}
	return out
}

// epoch returns epoch e's document order and the stream offset of each of its documents.
func (b *builder) epoch(e int) ([]int, []int) {
	b.epochMu.Lock()
	defer b.epochMu.Unlock()
	for len(b.epochs) <= e {
		k := len(b.epochs)
		r := rand.New(rand.NewPCG(uint64(b.opt.Seed)^0x9e3779b97f4a7c15, uint64(k)))
		order := r.Perm(len(b.docs))
		cum := make([]int, len(order))
		off := 0
		for j, d := range order {
			cum[j] = off
			off += len(b.docs[d].ids)
			if b.bos >= 0 {
				off++
			}
			if b.eos >= 0 {
				off++
			}
		}
		b.epochs = append(b.epochs, order)
		b.epochCum = append(b.epochCum, cum)
	}
	return b.epochs[e], b.epochCum[e]
}

func (b *builder) pickDoc(r *rand.Rand) docTokens {
	x := r.Float64() * b.cum[len(b.cum)-1]
	i := sort.SearchFloat64s(b.cum, x)
	return b.docs[min(i, len(b.docs)-1)]
}

// BuildValData makes the held-out validation file: the eval split of each haystack text (all
// when names is nil), as one stream of BOS document EOS, cut into sequences of seqLen tokens
// (the incomplete last one dropped); extra documents (e.g. a corpus's eval split) are appended after them.
func BuildValData(tok *tokenizer.Tokenizer, seqLen int, names []string, extra ...Document) (*TokenFile, error) {
	if names == nil {
		names = haystack.Names()
	}
	var docs []Document
	for _, n := range names {
		text, err := haystack.Split(n, haystack.Eval)
		if err != nil {
			return nil, fmt.Errorf("validation data: %w", err)
		}
		docs = append(docs, Document{Name: n, Text: text})
	}
	docs = append(docs, extra...)
	bos, eos := -1, -1
	if id, ok := tok.BOS(); ok {
		bos = id
	}
	if id, ok := tok.EOS(); ok {
		eos = id
	}
	var stream []int
	for _, d := range tokenizeDocs(tok, docs, runtime.GOMAXPROCS(0)) {
		if bos >= 0 {
			stream = append(stream, bos)
		}
		for _, id := range d.ids {
			stream = append(stream, int(id))
		}
		if eos >= 0 {
			stream = append(stream, eos)
		}
	}
	count := len(stream) / seqLen
	if count == 0 {
		return nil, fmt.Errorf("validation data: the eval texts have %d tokens, less than one sequence of %d", len(stream), seqLen)
	}
	f := NewTokenFile(TokenHeader{VocabSize: tok.VocabSize(), SeqLen: seqLen, Count: count, BOS: bos, EOS: eos})
	for i := range count {
		if err := f.SetSeq(i, stream[i*seqLen:(i+1)*seqLen]); err != nil {
			return nil, fmt.Errorf("validation data: %w", err)
		}
	}
	return f, nil
}

// ReadTextDir reads every *.txt file of dir (sorted by name) as a document.
func ReadTextDir(dir string) ([]Document, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("train data: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("train data: no *.txt files in %s", dir)
	}
	sort.Strings(paths)
	var docs []Document
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("train data: %w", err)
		}
		docs = append(docs, Document{Name: strings.TrimSuffix(filepath.Base(p), ".txt"), Text: string(data)})
	}
	return docs, nil
}

// parallel runs fn(0..n-1) on workers goroutines (internal/par), returning
// the first error; after an error the remaining items are skipped.
func parallel(n, workers int, progress func(done, total int), fn func(i int) error) error {
	var (
		done     int
		mu       sync.Mutex
		firstErr error
	)
	par.For(n, workers, func(i int) {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			return
		}
		err := fn(i)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		done++
		if progress != nil {
			progress(done, n)
		}
	})
	return firstErr
}
