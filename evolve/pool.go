package evolve

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Pool evaluates batches of jobs.
type Pool interface {
	// Run evaluates jobs (whose Index fields are 0..len-1) and returns their
	// results indexed like the jobs. onResult, if set, is called once per
	// finished job, from one goroutine at a time. The first failed job fails
	// the batch.
	Run(ctx context.Context, jobs []Job, onResult func(Result)) ([]Result, error)
	Close() error
}

// collector gathers one batch's results by index, keeping the first result
// of each job (a redelivered job may answer twice, with the same values).
type collector struct {
	mu       sync.Mutex
	batch    string
	results  []Result
	have     []bool
	left     int
	err      error
	onResult func(Result)
	done     chan struct{}
}

func newCollector(jobs []Job, onResult func(Result)) (*collector, error) {
	c := &collector{results: make([]Result, len(jobs)), have: make([]bool, len(jobs)), left: len(jobs),
		onResult: onResult, done: make(chan struct{})}
	for i, j := range jobs {
		if j.Index != i {
			return nil, fmt.Errorf("pool: job %d has Index %d", i, j.Index)
		}
		if i > 0 && j.Batch != jobs[0].Batch {
			return nil, fmt.Errorf("pool: job %d is of batch %q, job 0 of %q", i, j.Batch, jobs[0].Batch)
		}
	}
	if len(jobs) > 0 {
		c.batch = jobs[0].Batch
	} else {
		close(c.done)
	}
	return c, nil
}

// add records r; it reports whether r was new.
func (c *collector) add(r Result) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Batch != c.batch || r.Index < 0 || r.Index >= len(c.results) || c.have[r.Index] || c.left == 0 {
		return false
	}
	if r.Err != "" {
		c.failLocked(errors.New(r.Err))
		return true
	}
	c.results[r.Index], c.have[r.Index] = r, true
	c.left--
	if c.onResult != nil {
		c.onResult(r)
	}
	if c.left == 0 {
		close(c.done)
	}
	return true
}

func (c *collector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(err)
}

func (c *collector) failLocked(err error) {
	if c.err == nil && c.left > 0 {
		c.err = err
		c.left = 0
		close(c.done)
	}
}

func (c *collector) wait(ctx context.Context) ([]Result, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		c.fail(ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return c.results, nil
}

// LocalPool runs jobs on goroutines of this process, sharing one Evaluator.
type LocalPool struct {
	ev      *Evaluator
	workers int
}

// NewLocalPool returns a pool of workers goroutines (at least 1).
func NewLocalPool(ev *Evaluator, workers int) *LocalPool {
	return &LocalPool{ev: ev, workers: max(workers, 1)}
}

// Run implements Pool.
func (p *LocalPool) Run(ctx context.Context, jobs []Job, onResult func(Result)) ([]Result, error) {
	c, err := newCollector(jobs, onResult)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan Job)
	var wg sync.WaitGroup
	for range min(p.workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				c.add(p.ev.Run(j))
			}
		}()
	}
	go func() {
		defer close(next)
		for _, j := range jobs {
			select {
			case next <- j:
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
		}
	}()
	res, err := c.wait(ctx)
	cancel()
	wg.Wait()
	return res, err
}

// Close implements Pool.
func (p *LocalPool) Close() error { return nil }
