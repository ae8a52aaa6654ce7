// Package runner binds an engine and its tokenizer into the one recipe
// every command uses: tokenise with BOS, truncate the middle of a prompt
// that is too long, generate (greedily, or sampled with the request's
// settings and its own seeded generator) under a memory policy until a stop
// id, the token budget or Stop, decode. Requests are served through a batch
// (engine.Batch): up to Batch sequences advance one pass each per step,
// joining and leaving between steps, so concurrent callers (eval's
// samples, evolution's jobs, a server's users) share the weight reads.
//
// The API for a caller that streams: Submit a Request, read its tokens
// from Handle.Tokens as they come, Wait for the Result; cancelling the
// context passed to Submit takes the sequence out of the batch at the next
// step. Package textgen builds text on it (stop strings, streamed pieces).
package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/task/reader"
	"github.com/namm-dev/namm/tokenizer"
)

// Runner serves generation requests on one engine. It is safe for
// concurrent use.
type Runner struct {
	Engine *engine.Engine
	Tok    *tokenizer.Tokenizer
	// MaxLength is the context limit of truncation (PromptIDs): 0 means the
	// model's max_position_embeddings.
	MaxLength int
	// Batch is the most sequences per pass (0 means 1).
	Batch int

	stop []int

	mu      sync.Mutex
	queue   []*Handle
	running bool // the scheduling goroutine is on

	active  atomic.Int64 // sequences in the batch
	kvBytes atomic.Int64 // their KV cache, after the last step
}

// New returns a runner of up to batch sequences per pass.
func New(e *engine.Engine, tok *tokenizer.Tokenizer, batch int) *Runner {
	stop := append([]int(nil), e.Config.EOS...)
	if tok != nil {
		if id, ok := tok.EOS(); ok {
			stop = append(stop, id)
		}
	}
	return &Runner{Engine: e, Tok: tok, Batch: batch, stop: stop}
}

// StopIDs are the ids that end a generation: the config's EOS ids and the
// tokenizer's.
func (r *Runner) StopIDs() []int { return r.stop }

// MaxLen is the truncation limit in force.
func (r *Runner) MaxLen() int {
	if r.MaxLength > 0 {
		return r.MaxLength
	}
	return r.Engine.Config.MaxPositionEmbeddings
}

// PromptIDs tokenises a prompt with BOS and, when it is longer than
// MaxLen - maxNew tokens, keeps its first and last halves the way
// LongBench's pred.py does: both halves are decoded to text (special
// tokens dropped) and the joined text is tokenised again, a few tokens
// shorter where that text tokenises past the limit. It returns the ids fed
// to the model and the untruncated length.
func (r *Runner) PromptIDs(prompt string, maxNew int) (ids []int, original int, err error) {
	ids = r.Tok.Encode(prompt, true)
	original = len(ids)
	limit := r.MaxLen() - maxNew
	if limit <= 0 {
		return nil, original, fmt.Errorf("max length %d leaves no room for the prompt after %d new tokens", r.MaxLen(), maxNew)
	}
	if len(ids) <= limit {
		return ids, original, nil
	}
	// The joined text may tokenise longer than the ids it came from (the
	// junction's pieces merge differently): cut deeper by the excess and
	// retry, and as a last resort keep the ids themselves, so the prompt
	// and maxNew always fit the positions.
	for target := limit; target > 0; {
		kept := reader.TruncateMiddle(ids, target)
		half := len(kept) / 2
		out := r.Tok.Encode(r.Tok.Decode(kept[:half], true)+r.Tok.Decode(kept[half:], true), true)
		if len(out) <= limit {
			return out, original, nil
		}
		if target < limit-8 {
			break
		}
		target -= len(out) - limit
	}
	return reader.TruncateMiddle(ids, limit), original, nil
}

// Request is one sequence to generate.
type Request struct {
	Prompt []int // token ids, BOS included (PromptIDs)
	MaxNew int   // generation budget, >= 1
	// Policy is the sequence's memory policy, fresh (policies keep
	// per-sequence state); nil is the full cache.
	Policy policy.Policy
	// Stop ends the generation after any of these ids; nil uses StopIDs.
	Stop []int
	// Sampling picks the tokens (the zero value: greedy). Each request
	// draws from its own generator, so a seeded request gets the same
	// tokens whatever it is batched with.
	Sampling sample.Params
	// OnStep, if set, sees each pass's policy step (what it evicted, the
	// tokens each layer holds after it), on the batch's goroutine: it must
	// not block.
	OnStep func(engine.PolicyStep)
}

// Result is a finished request.
type Result struct {
	Tokens      []int               // generated, the stop id included
	Stats       engine.SessionStats // the sequence's cache use
	CacheTokens []int               // per layer, the tokens held at the end
	Processed   int                 // tokens the sequence ran through the model
	Seconds     float64             // from admission into the batch to the end
}

// EvictedTokens is the tokens the policy evicted, summed over layers.
func (r Result) EvictedTokens() int {
	n := 0
	for _, held := range r.CacheTokens {
		n += max(0, r.Processed-held)
	}
	return n
}

// Handle follows a submitted request.
type Handle struct {
	req     Request
	ctx     context.Context
	tokens  chan sample.Choice
	done    chan struct{}
	stopped atomic.Bool
	res     Result
	err     error
	seq     *engine.Seq
	start   time.Time
}

// Tokens delivers the generated tokens as they come (with log
// probabilities when the sampling settings ask for them); it is closed
// when the request ends (see Wait for how).
func (h *Handle) Tokens() <-chan sample.Choice { return h.tokens }

// Stop ends the request at the next step as if it had reached its budget:
// Wait returns its result (with the tokens generated until then). A
// caller that found a stop string in the text uses it.
func (h *Handle) Stop() { h.stopped.Store(true) }

// Wait blocks until the request ends and returns its result, or its error
// (the context's when cancelled).
func (h *Handle) Wait() (Result, error) {
	<-h.done
	return h.res, h.err
}

// Submit queues a request; it joins the batch at the next step with room.
// A request whose context ends leaves the batch at the next step with the
// context's error.
func (r *Runner) Submit(ctx context.Context, req Request) *Handle {
	if ctx == nil {
		ctx = context.Background()
	}
	h := &Handle{req: req, ctx: ctx, tokens: make(chan sample.Choice, max(req.MaxNew, 0)+1), done: make(chan struct{})}
	r.mu.Lock()
	r.queue = append(r.queue, h)
	if !r.running {
		r.running = true
		go r.loop()
	}
	r.mu.Unlock()
	return h
}

// Generate runs a request to its end (Submit, then Wait), calling onToken,
// if set, with each token as it comes.
func (r *Runner) Generate(ctx context.Context, req Request, onToken func(int)) (Result, error) {
	h := r.Submit(ctx, req)
	for c := range h.tokens {
		if onToken != nil {
			onToken(c.ID)
		}
	}
	return h.Wait()
}

// Answer is a generated answer to a text prompt.
type Answer struct {
	Result
	Text           string // the generation decoded, special tokens dropped
	PromptTokens   int    // fed to the model, after truncation
	OriginalTokens int    // before truncation
	Truncated      bool
}

// Answer tokenises and truncates prompt, generates up to maxNew tokens
// under p (fresh; nil: full cache) and decodes them: score-one-sample's
// part shared by eval and evolve.
func (r *Runner) Answer(ctx context.Context, prompt string, maxNew int, p policy.Policy) (Answer, error) {
	ids, original, err := r.PromptIDs(prompt, maxNew)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{PromptTokens: len(ids), OriginalTokens: original, Truncated: original > r.MaxLen()-maxNew}
	a.Result, err = r.Generate(ctx, Request{Prompt: ids, MaxNew: maxNew, Policy: p}, nil)
	if err != nil {
		return a, err
	}
	a.Text = r.Tok.Decode(a.Tokens, true)
	return a, nil
}

// loop is the scheduler: it admits queued requests while the batch has
// room, runs a step, and hands out tokens and results, until nothing is
// left.
func (r *Runner) loop() {
	b := r.Engine.NewBatch()
	var active []*Handle
	for {
		r.mu.Lock()
		for len(r.queue) > 0 && b.Len() < max(r.Batch, 1) {
			h := r.queue[0]
			r.queue = r.queue[1:]
			if r.admit(b, h) {
				active = append(active, h)
			}
		}
		r.active.Store(int64(b.Len()))
		if b.Len() == 0 {
			r.kvBytes.Store(0)
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for _, h := range active {
			if err := h.ctx.Err(); err != nil {
				b.Remove(h.seq, err)
			} else if h.stopped.Load() {
				b.Remove(h.seq, nil)
			}
		}
		if err := step(b); err != nil {
			for _, h := range active {
				b.Remove(h.seq, err)
			}
		}
		var done []*Handle
		kept := active[:0]
		var kv int64
		for _, h := range active {
			if h.seq.Done {
				done = append(done, h)
			} else {
				kept = append(kept, h)
				kv += h.seq.Session.CacheBytes()
			}
		}
		clear(active[len(kept):])
		active = kept
		// The load is current before a finished request's Wait returns.
		r.active.Store(int64(len(active)))
		r.kvBytes.Store(kv)
		for _, h := range done {
			r.finish(h)
		}
	}
}

// Load is what a runner is doing now: the sequences in its batch, the
// requests waiting for a place, and the KV cache the batch holds (bytes,
// as of the last step).
type Load struct {
	Active, Queued int
	KVBytes        int64
}

// Load reports the runner's load; it is safe to call at any time.
func (r *Runner) Load() Load {
	r.mu.Lock()
	queued := len(r.queue)
	r.mu.Unlock()
	return Load{Active: int(r.active.Load()), Queued: queued, KVBytes: r.kvBytes.Load()}
}

// admit starts a request's session and adds it to the batch; a request that
// cannot start ends at once with its reason.
func (r *Runner) admit(b *engine.Batch, h *Handle) bool {
	if err := h.ctx.Err(); err != nil {
		h.end(err)
		return false
	}
	if err := h.req.Sampling.Validate(); err != nil {
		h.end(fmt.Errorf("runner: sampling: %w", err))
		return false
	}
	s, err := r.Engine.NewSession(h.req.Policy)
	if err == nil && r.Tok != nil && h.req.Policy != nil {
		err = s.SetModelInfo(r.Tok.SpecialIDs(), r.Tok.IsPunctuation)
	}
	if err != nil {
		h.end(err)
		return false
	}
	if h.req.OnStep != nil {
		s.SetObserver(h.req.OnStep)
	}
	stop := h.req.Stop
	if stop == nil {
		stop = r.stop
	}
	h.start = time.Now()
	h.seq = &engine.Seq{Session: s, Prompt: h.req.Prompt, MaxNew: h.req.MaxNew, Stop: stop}
	if h.req.Sampling == (sample.Params{}) {
		h.seq.OnToken = func(id int) { h.tokens <- sample.Choice{TokenLogprob: sample.TokenLogprob{ID: id}} }
	} else {
		sampler := sample.New(h.req.Sampling)
		h.seq.Choose = func(logits []float32) int {
			c := sampler.Next(logits)
			h.tokens <- c
			return c.ID
		}
	}
	b.Add(h.seq)
	if h.seq.Done {
		s.Close()
		h.end(h.seq.Err)
		return false
	}
	return true
}

// finish hands out a request's result and frees its session.
func (r *Runner) finish(h *Handle) {
	s := h.seq.Session
	defer s.Close()
	if h.seq.Err != nil {
		h.end(h.seq.Err)
		return
	}
	h.res = Result{Tokens: h.seq.Out, Stats: s.Stats(), CacheTokens: s.CacheTokens(), Processed: len(s.Tokens()),
		Seconds: time.Since(h.start).Seconds()}
	h.end(nil)
}

func (h *Handle) end(err error) {
	if err == nil && h.seq == nil {
		err = errors.New("runner: request never ran")
	}
	h.err = err
	close(h.tokens)
	close(h.done)
}

// step runs one step of the batch; a panic in it (a graph that fails to
// build) becomes an error for the sequences in the batch, not a crash of
// the process serving them.
func step(b *engine.Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("runner: %v", p)
		}
	}()
	b.Step()
	return nil
}
