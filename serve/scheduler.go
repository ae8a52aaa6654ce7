package serve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/runner"
	"github.com/namm-dev/namm/textgen"
	"github.com/namm-dev/namm/tokenizer"
)

// ErrQueueFull: every slot is busy and the queue holds its maximum; the
// server answers 429.
var ErrQueueFull = errors.New("the server is at capacity: every slot is busy and the queue is full")

// Job is one generation to schedule: the request (its memory policy a
// fresh instance: policies keep per-sequence state) and a callback per
// token.
type Job struct {
	Request textgen.Request
	OnEvent func(textgen.Event) error
}

// Outcome is a finished job: the generation and what its cache did.
type Outcome struct {
	textgen.Result
	// Waited is the time spent in the queue; Ran the time on a slot.
	Waited, Ran time.Duration
}

// Load is what a scheduler is doing now.
type Load struct {
	Slots, Busy, Queued int
	KVBytes             int64 // bytes of KV cache held by running jobs
}

// Scheduler runs generation jobs on the engine. The server calls Run once
// per request, from the request's goroutine. Implementations: Pool, batched
// (NewBatchPool) or with a session of its own per slot (NewSlotPool).
type Scheduler interface {
	// Run queues job, runs it, and returns when it is done. It returns
	// ErrQueueFull at once when the queue is full, and ctx.Err() when ctx
	// ends first, while queued or between tokens; either way the job's
	// slot is free when Run returns.
	Run(ctx context.Context, job Job) (Outcome, error)
	Load() Load
}

// Pool runs jobs on runners (package runner): a job takes one of the
// pool's slots, waiting in a bounded queue while none is free, and runs on
// the runner the slot belongs to until Run returns. Each runner batches the
// jobs on its slots: one step is one pass over the weights for all of them,
// and jobs join and leave between steps (continuous batching); a cancelled
// job leaves at the next step. Each job keeps its own session, memory policy
// and sampler (its own seeded generator), so its tokens do not depend on
// what it is batched with.
type Pool struct {
	runners  []*runner.Runner
	free     chan *runner.Runner // one entry per idle slot
	maxQueue int
	queued   atomic.Int64
	mu       sync.Mutex // orders the queue check with taking a slot
}

// NewBatchPool makes a pool of one runner whose batch holds up to slots
// jobs: every running job shares each pass over the weights. On the CPU
// this is what makes concurrent requests faster than one at a time.
func NewBatchPool(e *engine.Engine, tok *tokenizer.Tokenizer, slots, maxQueue int) *Pool {
	return newPool(e, tok, 1, slots, maxQueue)
}

// NewSlotPool makes a pool of slots runners of one job each: independent
// sessions over shared weights, each pass by itself (on a GPU, passes of
// several sessions may overlap).
func NewSlotPool(e *engine.Engine, tok *tokenizer.Tokenizer, slots, maxQueue int) *Pool {
	return newPool(e, tok, slots, 1, maxQueue)
}

func newPool(e *engine.Engine, tok *tokenizer.Tokenizer, runners, batch, maxQueue int) *Pool {
	p := &Pool{free: make(chan *runner.Runner, runners*batch), maxQueue: maxQueue}
	for range runners {
		r := runner.New(e, tok, batch)
		p.runners = append(p.runners, r)
		for range batch {
			p.free <- r
		}
	}
	return p
}

// Load implements Scheduler.
func (p *Pool) Load() Load {
	l := Load{Slots: cap(p.free), Busy: cap(p.free) - len(p.free), Queued: int(p.queued.Load())}
	for _, r := range p.runners {
		l.KVBytes += r.Load().KVBytes
	}
	return l
}

// acquire takes an idle slot, waiting in the queue if there is room.
func (p *Pool) acquire(ctx context.Context) (*runner.Runner, error) {
	p.mu.Lock()
	select {
	case r := <-p.free:
		p.mu.Unlock()
		return r, nil
	default:
	}
	if p.queued.Load() >= int64(p.maxQueue) {
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	p.queued.Add(1)
	p.mu.Unlock()
	defer p.queued.Add(-1)
	select {
	case r := <-p.free:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run implements Scheduler.
func (p *Pool) Run(ctx context.Context, job Job) (Outcome, error) {
	start := time.Now()
	r, err := p.acquire(ctx)
	if err != nil {
		return Outcome{Waited: time.Since(start)}, err
	}
	waited := time.Since(start)
	defer func() { p.free <- r }()
	res, err := textgen.Run(ctx, r, job.Request, job.OnEvent)
	return Outcome{Result: res, Waited: waited, Ran: time.Since(start) - waited}, err
}
