package serve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/textgen"
	"github.com/namm-dev/namm/tokenizer"
)

// ErrQueueFull: every slot is busy and the queue holds its maximum; the
// server answers 429.
var ErrQueueFull = errors.New("the server is at capacity: every slot is busy and the queue is full")

// Job is one generation to schedule: its memory policy (a fresh instance;
// policies keep per-sequence state), the request, and a callback per token.
type Job struct {
	Policy  policy.Policy
	Request textgen.Request
	OnEvent func(textgen.Event) error
}

// Outcome is a finished job: the generation and what its cache did.
type Outcome struct {
	textgen.Result
	// EvictedTokens is the tokens the policy evicted, summed over layers
	// (tokens processed minus tokens held at the end, per layer).
	EvictedTokens int
	// Waited is the time spent in the queue; Ran the time on a slot.
	Waited, Ran time.Duration
}

// Load is what a scheduler is doing now.
type Load struct {
	Slots, Busy, Queued int
	KVBytes             int64 // bytes of KV cache held by running jobs
}

// Scheduler runs generation jobs on the engine. The server calls Run once
// per request, from the request's goroutine. Implementations: SlotPool
// (independent sessions over shared weights); a batched runner can take its
// place.
type Scheduler interface {
	// Run queues job, runs it, and returns when it is done. It returns
	// ErrQueueFull at once when the queue is full, and ctx.Err() when ctx
	// ends first, while queued or between tokens; either way the job's
	// slot is free when Run returns.
	Run(ctx context.Context, job Job) (Outcome, error)
	Load() Load
}

// SlotPool runs each job on its own engine session, at most Slots at once;
// at most MaxQueue more wait.
type SlotPool struct {
	e        *engine.Engine
	tok      *tokenizer.Tokenizer
	free     chan int // indices of idle slots
	maxQueue int
	queued   atomic.Int64
	kv       []atomic.Int64 // per slot, bytes of KV cache held
	mu       sync.Mutex     // orders the queue check with taking a slot
}

// NewSlotPool makes a pool of slots sessions over e's weights.
func NewSlotPool(e *engine.Engine, tok *tokenizer.Tokenizer, slots, maxQueue int) *SlotPool {
	p := &SlotPool{e: e, tok: tok, free: make(chan int, slots), maxQueue: maxQueue, kv: make([]atomic.Int64, slots)}
	for i := range slots {
		p.free <- i
	}
	return p
}

// Load implements Scheduler.
func (p *SlotPool) Load() Load {
	l := Load{Slots: cap(p.free), Busy: cap(p.free) - len(p.free), Queued: int(p.queued.Load())}
	for i := range p.kv {
		l.KVBytes += p.kv[i].Load()
	}
	return l
}

// acquire takes an idle slot, waiting in the queue if there is room.
func (p *SlotPool) acquire(ctx context.Context) (int, error) {
	p.mu.Lock()
	select {
	case slot := <-p.free:
		p.mu.Unlock()
		return slot, nil
	default:
	}
	if p.queued.Load() >= int64(p.maxQueue) {
		p.mu.Unlock()
		return 0, ErrQueueFull
	}
	p.queued.Add(1)
	p.mu.Unlock()
	defer p.queued.Add(-1)
	select {
	case slot := <-p.free:
		return slot, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Run implements Scheduler.
func (p *SlotPool) Run(ctx context.Context, job Job) (Outcome, error) {
	start := time.Now()
	slot, err := p.acquire(ctx)
	if err != nil {
		return Outcome{Waited: time.Since(start)}, err
	}
	waited := time.Since(start)
	defer func() {
		p.kv[slot].Store(0)
		p.free <- slot
	}()
	s, err := p.e.NewSession(job.Policy)
	if err != nil {
		return Outcome{}, err
	}
	defer s.Close() // device memory is not the collector's to free
	if err := s.SetModelInfo(p.tok.SpecialIDs(), p.tok.IsPunctuation); err != nil {
		return Outcome{}, err
	}
	decode := func(ids []int) string { return p.tok.Decode(ids, true) }
	res, err := textgen.Run(ctx, s, decode, job.Request, func(ev textgen.Event) error {
		p.kv[slot].Store(s.CacheBytes())
		if job.OnEvent != nil {
			return job.OnEvent(ev)
		}
		return nil
	})
	out := Outcome{Result: res, Waited: waited, Ran: time.Since(start) - waited}
	processed := len(s.Tokens())
	for _, held := range s.CacheTokens() {
		out.EvictedTokens += max(0, processed-held)
	}
	return out, err
}
