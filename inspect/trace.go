// Package inspect records what a memory policy did to a sequence's KV
// cache, pass by pass: which original token positions each layer (and KV
// head, where heads differ) evicted at which step, and how many tokens
// every layer held. The record is a Trace, written as JSON by
// `namm generate --trace FILE`, streamed event by event by the server's
// POST /v1/inspect (the memory inspector page at /), and drawn as a
// layers x tokens heatmap by `namm trace-plot`. The evictions come from
// the engine where the policy's answer is applied to the cache
// (engine.Session.SetObserver); nothing here repeats a policy's logic.
package inspect

import (
	"fmt"
	"slices"
	"sync"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/tokenizer"
)

// Format names the JSON format of a Trace and its version.
const Format = "namm-trace/1"

// Trace is one generation's record. Its JSON is the documented format
// (docs/serving.md, "The memory inspector").
type Trace struct {
	Header
	Steps     []Step  `json:"steps"`
	Generated []Token `json:"generated"`
	Summary   Summary `json:"summary"`
}

// Header is what is known before the first pass.
type Header struct {
	Format  string  `json:"format"`
	Model   string  `json:"model"`
	Memory  string  `json:"memory"` // the policy's full name
	Layers  int     `json:"layers"`
	KVHeads int     `json:"kv_heads"`
	Prompt  []Token `json:"prompt"`
}

// Token is one token of the sequence at its original position.
type Token struct {
	Pos  int    `json:"pos"`
	ID   int    `json:"id"`
	Text string `json:"text"` // the token's own text (tokenizer.TokenText)
}

// Step is one pass (a prefill chunk or a decoded token) and its policy
// step.
type Step struct {
	Step   int    `json:"step"`   // the pass's index, from 0
	Phase  string `json:"phase"`  // "prefill" or "decode"
	Start  int    `json:"start"`  // position of the pass's first token
	Tokens int    `json:"tokens"` // tokens the pass fed: positions [start, start+tokens)
	// KV is per layer the tokens held after the step (max over KV heads).
	KV []int `json:"kv"`
	// Evicted lists the positions evicted in this step, by layer; empty
	// when the step evicted nothing.
	Evicted []Positions `json:"evicted,omitempty"`
}

// Positions are original token positions of one layer: of every KV head of
// the layer when Head is absent, else of that head alone (heads that
// differ, as FastGen's, are listed one by one).
type Positions struct {
	Layer     int     `json:"layer"`
	Head      *int    `json:"head,omitempty"`
	Positions []int32 `json:"positions"`
}

// Summary closes a trace.
type Summary struct {
	Text         string `json:"text"` // the generated text
	FinishReason string `json:"finish_reason"`
	// Processed is the tokens the model ran through (the last generated
	// token is never fed back).
	Processed int `json:"processed"`
	// KV tokens held per layer: the mean over the passes and the peak, as
	// namm eval reports them; the full cache's over the same passes (it
	// holds every token processed).
	KVMean     float64 `json:"kv_mean"`
	KVPeak     float64 `json:"kv_peak"`
	FullKVMean float64 `json:"full_kv_mean"`
	FullKVPeak float64 `json:"full_kv_peak"`
	// Evicted is the tokens evicted, summed over layers (a token counts
	// for a layer once every KV head of the layer let it go).
	Evicted int `json:"evicted"`
	// Kept is per layer the positions still held at the end, worked out
	// from the steps' evictions.
	Kept []Positions `json:"kept"`
}

// TokenTexts turns ids at positions from..from+len(ids)-1 into Tokens.
func TokenTexts(tok *tokenizer.Tokenizer, ids []int, from int) []Token {
	out := make([]Token, len(ids))
	for i, id := range ids {
		out[i] = Token{Pos: from + i, ID: id, Text: tok.TokenText(id)}
	}
	return out
}

// NewHeader describes a generation about to run.
func NewHeader(model string, e *engine.Engine, memory string, tok *tokenizer.Tokenizer, prompt []int) Header {
	return Header{Format: Format, Model: model, Memory: memory, Layers: e.Config.NumLayers, KVHeads: e.Config.NumKVHeads,
		Prompt: TokenTexts(tok, prompt, 0)}
}

// Recorder turns a session's policy steps into Steps. Observe runs on the
// batch's goroutine; the other methods may be called from any goroutine.
type Recorder struct {
	mu     sync.Mutex
	trace  Trace
	onStep func(Step) // called under no lock, in step order
}

// NewRecorder starts a trace; onStep (may be nil) sees each step as it is
// recorded, on the batch's goroutine: it must not block.
func NewRecorder(h Header, onStep func(Step)) *Recorder {
	return &Recorder{trace: Trace{Header: h, Steps: []Step{}, Generated: []Token{}}, onStep: onStep}
}

// Observe records one policy step (engine.Session.SetObserver).
func (r *Recorder) Observe(ps engine.PolicyStep) {
	r.mu.Lock()
	st := Step{Step: len(r.trace.Steps), Phase: "prefill", Start: ps.Pass.Start, Tokens: ps.Pass.NewTokens,
		KV: slices.Clone(ps.Tokens), Evicted: evictions(ps.Evicted)}
	if ps.Pass.Phase == policy.Decode {
		st.Phase = "decode"
	}
	r.trace.Steps = append(r.trace.Steps, st)
	r.mu.Unlock()
	if r.onStep != nil {
		r.onStep(st)
	}
}

// evictions lists a step's evictions by layer: one entry for a layer whose
// heads all evicted the same positions, one per head otherwise.
func evictions(ev [][][]int32) []Positions {
	var out []Positions
	for l, heads := range ev {
		if len(heads) == 0 {
			continue
		}
		same := true
		for _, h := range heads[1:] {
			same = same && slices.Equal(h, heads[0])
		}
		if same {
			if len(heads[0]) > 0 {
				out = append(out, Positions{Layer: l, Positions: slices.Clone(heads[0])})
			}
			continue
		}
		for k, h := range heads {
			if len(h) > 0 {
				out = append(out, Positions{Layer: l, Head: &k, Positions: slices.Clone(h)})
			}
		}
	}
	return out
}

// AddGenerated records generated tokens (their positions follow the
// prompt's and the tokens generated before).
func (r *Recorder) AddGenerated(tok *tokenizer.Tokenizer, ids ...int) []Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := TokenTexts(tok, ids, len(r.trace.Prompt)+len(r.trace.Generated))
	r.trace.Generated = append(r.trace.Generated, t...)
	return t
}

// Finish closes the trace with the generation's text and finish reason and
// returns it (its summary worked out from the steps).
func (r *Recorder) Finish(text, finishReason string) Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trace.Summary = summarise(&r.trace, text, finishReason)
	return r.trace
}

func summarise(t *Trace, text, finishReason string) Summary {
	s := Summary{Text: text, FinishReason: finishReason, Kept: []Positions{}}
	var sumKV, sumFull float64
	for _, st := range t.Steps {
		total := 0
		for _, n := range st.KV {
			total += n
		}
		layers := float64(max(len(st.KV), 1))
		sumKV += float64(total) / layers
		s.KVPeak = max(s.KVPeak, float64(total)/layers)
		s.Processed = st.Start + st.Tokens
		sumFull += float64(s.Processed)
	}
	if n := float64(len(t.Steps)); n > 0 {
		s.KVMean, s.FullKVMean = sumKV/n, sumFull/n
	}
	s.FullKVPeak = float64(s.Processed)
	kept := t.Kept()
	for l, heads := range kept {
		union := map[int32]bool{}
		for _, h := range heads {
			for _, p := range h {
				union[p] = true
			}
		}
		s.Evicted += s.Processed - len(union)
		same := true
		for _, h := range heads[1:] {
			same = same && slices.Equal(h, heads[0])
		}
		if same {
			s.Kept = append(s.Kept, Positions{Layer: l, Positions: heads[0]})
			continue
		}
		for k, h := range heads {
			s.Kept = append(s.Kept, Positions{Layer: l, Head: &k, Positions: h})
		}
	}
	return s
}

// Kept works out from the steps, per layer and KV head, the positions held
// after the last step, ascending: every position processed, less those
// evicted.
func (t *Trace) Kept() [][][]int32 {
	processed := 0
	if n := len(t.Steps); n > 0 {
		processed = t.Steps[n-1].Start + t.Steps[n-1].Tokens
	}
	gone := make([][]map[int32]bool, t.Layers)
	for l := range gone {
		gone[l] = make([]map[int32]bool, t.KVHeads)
		for k := range gone[l] {
			gone[l][k] = map[int32]bool{}
		}
	}
	for _, st := range t.Steps {
		for _, ev := range st.Evicted {
			for k := range t.KVHeads {
				if ev.Head != nil && *ev.Head != k {
					continue
				}
				for _, p := range ev.Positions {
					gone[ev.Layer][k][p] = true
				}
			}
		}
	}
	out := make([][][]int32, t.Layers)
	for l := range out {
		out[l] = make([][]int32, t.KVHeads)
		for k := range out[l] {
			out[l][k] = []int32{}
			for p := range int32(processed) {
				if !gone[l][k][p] {
					out[l][k] = append(out[l][k], p)
				}
			}
		}
	}
	return out
}

// Bounds on a trace read from a file (Check): far beyond any model namm
// runs, small enough that its per-layer, per-position tables fit in memory.
const (
	maxTraceLayers = 4096
	maxTraceHeads  = 4096
	maxTraceCells  = 1 << 23 // layers x positions: 64 layers x 128k tokens
)

// Check reports the first thing in t that no trace of namm generate --trace
// holds (a layer or head out of range, a negative position, a step past
// the bounds), naming the step and the field, so that a hand-edited or
// damaged file is refused before it is drawn.
func (t *Trace) Check() error {
	if t.Layers < 1 || t.Layers > maxTraceLayers {
		return fmt.Errorf("layers %d: want 1 to %d", t.Layers, maxTraceLayers)
	}
	if t.KVHeads < 1 || t.KVHeads > maxTraceHeads {
		return fmt.Errorf("kv_heads %d: want 1 to %d", t.KVHeads, maxTraceHeads)
	}
	for i, st := range t.Steps {
		if st.Step != i {
			return fmt.Errorf("steps[%d]: step %d, want %d (steps are numbered from 0 in order)", i, st.Step, i)
		}
		if st.Start < 0 || st.Tokens < 0 || st.Start > maxTraceCells/t.Layers-st.Tokens {
			return fmt.Errorf("steps[%d]: start %d, tokens %d: want positions from 0 to %d", i, st.Start, st.Tokens, maxTraceCells/t.Layers)
		}
		for j, ev := range st.Evicted {
			if ev.Layer < 0 || ev.Layer >= t.Layers {
				return fmt.Errorf("steps[%d].evicted[%d]: layer %d of a %d-layer trace", i, j, ev.Layer, t.Layers)
			}
			if ev.Head != nil && (*ev.Head < 0 || *ev.Head >= t.KVHeads) {
				return fmt.Errorf("steps[%d].evicted[%d]: head %d of %d KV heads", i, j, *ev.Head, t.KVHeads)
			}
			for _, p := range ev.Positions {
				if p < 0 {
					return fmt.Errorf("steps[%d].evicted[%d]: position %d", i, j, p)
				}
			}
		}
	}
	return nil
}

// EvictedAt is per layer and position the step at which the last KV head
// of the layer evicted the token (-1: some head still holds it), over n
// positions.
func (t *Trace) EvictedAt(n int) [][]int {
	at := make([][]int, t.Layers)
	heads := make([][]int, t.Layers) // heads gone per position
	for l := range at {
		at[l] = make([]int, n)
		heads[l] = make([]int, n)
		for i := range at[l] {
			at[l][i] = -1
		}
	}
	for _, st := range t.Steps {
		for _, ev := range st.Evicted {
			for _, p := range ev.Positions {
				if int(p) >= n {
					continue
				}
				if ev.Head == nil {
					heads[ev.Layer][p] = t.KVHeads
				} else {
					heads[ev.Layer][p]++
				}
				if heads[ev.Layer][p] == t.KVHeads {
					at[ev.Layer][p] = st.Step
				}
			}
		}
	}
	return at
}
