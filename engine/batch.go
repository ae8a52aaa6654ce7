package engine

import (
	"errors"
	"fmt"

	"github.com/namm-dev/namm/policy"
)

// Batching. A Batch advances several sequences together, one pass each per
// Step: a prefill chunk for a sequence with prompt left, else one decoded
// token. Every sequence keeps its own Session: its positions, its KV cache
// (per layer and KV head, its own evictions and holes) and its own memory
// policy (each may be a NAMM with other parameters: the members of a CMA-ES
// population). Sequences join (Add) and leave (when done) between steps:
// continuous batching.
//
// On the pure-Go backend one step is one pass over the stacked rows of
// every sequence (forwardHost): each weight is read once for the whole
// batch, which is where batching pays on a CPU; attention, statistics and
// the policy's step stay per sequence. With layer graphs (compiled
// backends with Options.NoFuse, and the graph reference on the pure-Go
// one) a step is one graph per layer for every sequence
// (model.LayerBatch). With fused pass graphs (the GPU's default) a step
// runs the passes of sequences of one width (prefill chunks, or decoded
// tokens) and one cache capacity as one graph of every layer, the cache
// appends in place and the logits, in runs of power-of-two lengths
// (fusedbatch.go); a sequence alone in the batch runs its whole prefill,
// or its decoded token, by itself.

// Seq is one sequence of a Batch: a prompt to prefill, then decoding of up
// to MaxNew tokens, stopping after any id in Stop.
type Seq struct {
	Session *Session
	Prompt  []int
	MaxNew  int
	Stop    []int
	// Choose, if set, picks each token from its logits (a sampler; the
	// logits are valid during the call); nil picks greedily (Argmax).
	Choose func(logits []float32) int
	// OnToken, if set, is called with each generated token as it comes;
	// OnLogits with the logits each one was chosen from (valid during the
	// call).
	OnToken  func(id int)
	OnLogits func(logits []float32)

	// Out holds the generated tokens; Err is set when the sequence failed
	// (its reason; the others go on). Done is set once it left the batch.
	Out  []int
	Err  error
	Done bool

	start int // tokens the session held when the sequence joined
	fed   int // prompt tokens fed so far
	next  int // the token to decode next (after the prefill)
}

// Batch advances sequences together (see above). It is not safe for
// concurrent use; one goroutine drives it.
type Batch struct {
	e      *Engine
	active []*Seq
}

// NewBatch starts an empty batch.
func (e *Engine) NewBatch() *Batch { return &Batch{e: e} }

// Len is the number of sequences in the batch.
func (b *Batch) Len() int { return len(b.active) }

// ErrEmptyPrompt is the error of a sequence without prompt tokens.
var ErrEmptyPrompt = errors.New("engine: empty prompt")

// Add lets a sequence join at the next Step. Its session may hold earlier
// tokens (a conversation): the prompt continues them. A sequence that
// cannot run (no prompt, more tokens than the model's positions, a session
// of another engine) is marked Done with its Err at once and does not join.
func (b *Batch) Add(s *Seq) {
	switch {
	case s.Session == nil || s.Session.e != b.e:
		s.Err = errors.New("engine: a batch sequence needs a session of the batch's engine")
	case len(s.Prompt) == 0:
		s.Err = ErrEmptyPrompt
	case s.MaxNew < 1:
		s.Err = fmt.Errorf("engine: max new tokens must be >= 1, got %d", s.MaxNew)
	default:
		s.start = len(s.Session.tokens)
		if n, limit := s.start+len(s.Prompt)+s.MaxNew, b.e.Config.MaxPositionEmbeddings; limit > 0 && n > limit {
			s.Err = fmt.Errorf("%w: %d tokens held, a prompt of %d and %d new ones exceed the model's %d (max_position_embeddings)", ErrPastPositions, s.start, len(s.Prompt), s.MaxNew, limit)
		}
	}
	if s.Err != nil {
		s.Done = true
		return
	}
	s.Session.batched = true
	b.active = append(b.active, s)
}

// Step runs one pass of every sequence in the batch and returns those that
// finished in it (done or failed), which leave the batch.
func (b *Batch) Step() []*Seq {
	if len(b.active) == 0 {
		return nil
	}
	if s := b.active[0]; b.e.fuses() && len(b.active) == 1 && (s.fed == 0 || s.fed == len(s.Prompt)) {
		// Alone: the session's own prefill (its whole prompt) or decode.
		b.stepAlone(s)
		return b.sweep()
	}
	var seqs []*Session
	var ins []*passInput
	var owners []*Seq
	for _, s := range b.active {
		in, err := b.begin(s)
		if err != nil {
			b.fail(s, err)
			continue
		}
		seqs, ins, owners = append(seqs, s.Session), append(ins, in), append(owners, s)
	}
	if len(ins) == 0 {
		return b.sweep()
	}
	outs, errs := b.forward(seqs, ins)
	for i, s := range owners {
		in, err := ins[i], errs[i]
		if err == nil {
			err = b.end(s, in, outs[i])
		}
		if err != nil {
			b.fail(s, err)
			continue
		}
		b.advance(s, in, outs[i].logits)
	}
	return b.sweep()
}

// forward runs one pass of each sequence and returns its output or its
// error. A failure inside the backend (a panic: a device out of memory,
// say) fails every sequence of the step and breaks their sessions.
func (b *Batch) forward(seqs []*Session, ins []*passInput) (outs []passOutput, errs []error) {
	e := b.e
	defer func() {
		if r := recover(); r != nil {
			for i, s := range seqs {
				errs[i] = s.breakOn(r)
			}
		}
	}()
	errs = make([]error, len(ins))
	var err error
	switch {
	case e.fuses():
		outs, errs = e.forwardFusedGroups(seqs, ins)
	case e.hostProjections():
		outs, err = e.forwardHost(seqs, ins)
	default:
		outs, err = e.forwardLayers(seqs, ins)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return outs, errs
}

// end lets a sequence's policy act on its pass, and closes its prompt
// after the last chunk.
func (b *Batch) end(s *Seq, in *passInput, out passOutput) (err error) {
	defer s.Session.recoverPass(&err)
	if err := s.Session.endPass(in, out); err != nil {
		return err
	}
	if in.pass.LastPrefill {
		return s.Session.endPrompt()
	}
	return nil
}

// Run steps until every sequence is done.
func (b *Batch) Run() {
	for b.Len() > 0 {
		b.Step()
	}
}

// begin lays out a sequence's next pass: the next prefill chunk (its
// boundaries on absolute multiples of the chunk size, as Session.Prefill),
// or the token to decode.
func (b *Batch) begin(s *Seq) (_ *passInput, err error) {
	sess := s.Session
	if sess.broken != nil {
		return nil, sess.broken
	}
	defer sess.recoverPass(&err)
	if s.fed == 0 {
		if err := sess.reservePrompt(len(s.Prompt)); err != nil {
			return nil, err
		}
	}
	if s.fed < len(s.Prompt) {
		cs := b.e.opts.ChunkSize
		pos := len(sess.tokens)
		n := min(cs-pos%cs, len(s.Prompt)-s.fed)
		last := s.fed+n == len(s.Prompt)
		pass := policy.Pass{Phase: policy.Prefill, Start: pos, NewTokens: n, LastPrefill: last, PromptLen: s.start + len(s.Prompt)}
		return sess.beginPass(s.Prompt[s.fed:s.fed+n], pass, b.e.prefillWidth(n), last)
	}
	pass := policy.Pass{Phase: policy.Decode, Start: len(sess.tokens), NewTokens: 1, PromptLen: -1}
	return sess.beginPass([]int{s.next}, pass, 1, true)
}

// advance records a finished pass: prompt tokens fed, or a token generated
// from its logits.
func (b *Batch) advance(s *Seq, in *passInput, logits []float32) {
	if in.pass.Phase == policy.Prefill {
		s.fed += in.nReal
		if !in.pass.LastPrefill {
			return
		}
	}
	if s.OnLogits != nil {
		s.OnLogits(logits)
	}
	if s.Choose != nil {
		s.next = s.Choose(logits)
	} else {
		s.next = Argmax(logits)
	}
	s.Out = append(s.Out, s.next)
	if s.OnToken != nil {
		s.OnToken(s.next)
	}
	if contains(s.Stop, s.next) || len(s.Out) >= s.MaxNew {
		s.Done = true
	}
}

// stepAlone runs a lone sequence's whole prefill, or its decoded token,
// by itself (fused pass graphs).
func (b *Batch) stepAlone(s *Seq) {
	var logits []float32
	var err error
	sess := s.Session
	if s.fed < len(s.Prompt) {
		logits, err = sess.Prefill(s.Prompt)
		if err == nil {
			s.fed = len(s.Prompt)
		}
	} else {
		logits, err = sess.Decode(s.next)
	}
	if err != nil {
		b.fail(s, err)
		return
	}
	b.advance(s, &passInput{pass: policy.Pass{Phase: policy.Decode}}, logits)
}

func (b *Batch) fail(s *Seq, err error) {
	s.Err, s.Done = err, true
}

// sweep removes the finished sequences and returns them.
func (b *Batch) sweep() []*Seq {
	var done []*Seq
	kept := b.active[:0]
	for _, s := range b.active {
		if s.Done {
			done = append(done, s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(b.active[len(kept):])
	b.active = kept
	return done
}

// Remove takes a sequence out of the batch before its next pass, marking it
// Done with err: a cancelled request's error, or nil for one that ends as
// it is (its caller found a stop string).
func (b *Batch) Remove(s *Seq, err error) {
	if s.Done {
		return
	}
	b.fail(s, err)
	b.sweep()
}
