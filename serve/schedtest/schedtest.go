// Package schedtest checks that a serve.Scheduler keeps the contract the
// server relies on. Any implementation (the batch pool, the slot pool)
// runs the same checks:
//
//	func TestMyScheduler(t *testing.T) {
//		schedtest.Run(t, e, tok, func(slots, queue int) serve.Scheduler { return New(e, slots, queue) })
//	}
package schedtest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/serve"
	"github.com/namm-dev/namm/textgen"
	"github.com/namm-dev/namm/tokenizer"
)

// Factory makes a scheduler that runs at most slots jobs at once and queues
// at most queue more.
type Factory func(slots, queue int) serve.Scheduler

// Run checks: concurrent jobs give each the tokens it gets alone (greedy
// ones the engine's greedy decoding, seeded sampled ones the same job on a
// scheduler of one slot); a full
// queue refuses at once with serve.ErrQueueFull; cancelling a running or a
// queued job returns its context's error and frees its place.
func Run(t *testing.T, e *engine.Engine, tok *tokenizer.Tokenizer, newScheduler Factory) {
	t.Run("ConcurrentEqualsAlone", func(t *testing.T) { concurrent(t, e, tok, newScheduler) })
	t.Run("QueueFull", func(t *testing.T) { queueFull(t, e, tok, newScheduler) })
	t.Run("Cancel", func(t *testing.T) { cancel(t, e, tok, newScheduler) })
}

func job(t *testing.T, tok *tokenizer.Tokenizer, prompt string, n int, onEvent func(textgen.Event) error) serve.Job {
	t.Helper()
	p, err := policy.New("full", policy.Budget{})
	if err != nil {
		t.Fatal(err)
	}
	return serve.Job{Request: textgen.Request{Prompt: tok.Encode(prompt, true), MaxTokens: n, Policy: p, StopTokens: []int{}}, OnEvent: onEvent}
}

func concurrent(t *testing.T, e *engine.Engine, tok *tokenizer.Tokenizer, newScheduler Factory) {
	prompts := []string{"One", "Two birds", "Three little pigs", "Four", "Five and six", "Seven"}
	// Each prompt runs greedily and sampled with a seed of its own.
	sampled := func(i int) serve.Job {
		j := job(t, tok, prompts[i], 12, nil)
		seed := uint64(7 + i)
		j.Request.Sampling = sample.Params{Temperature: 0.8 + 0.1*float64(i), TopP: 0.9, Seed: &seed}
		return j
	}
	wantSampled := make([][]int, len(prompts))
	for i := range prompts {
		out, err := newScheduler(1, 1).Run(context.Background(), sampled(i))
		if err != nil {
			t.Fatal(err)
		}
		wantSampled[i] = out.Tokens
	}
	s := newScheduler(3, 16)
	got := make([][]int, 2*len(prompts))
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for k := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := job(t, tok, prompts[k/2], 12, nil)
			if k%2 == 1 {
				j = sampled(k / 2)
			}
			out, err := s.Run(context.Background(), j)
			got[k], errs[k] = out.Tokens, err
		}()
	}
	wg.Wait()
	differ := 0 // sampled jobs whose tokens are not the greedy ones
	for k := range got {
		p := prompts[k/2]
		if errs[k] != nil {
			t.Fatalf("%q: %v", p, errs[k])
		}
		want := wantSampled[k/2]
		if k%2 == 0 {
			var err error
			if want, err = e.Greedy(tok.Encode(p, true), 12, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got[k], want) {
			t.Errorf("%q (sampled %v): concurrent %v, alone %v", p, k%2 == 1, got[k], want)
		}
		if k%2 == 1 && !slices.Equal(got[k], got[k-1]) {
			differ++
		}
	}
	if differ == 0 {
		t.Errorf("every sampled job gave the greedy tokens: the scheduler ignores the sampling settings")
	}
	if l := s.Load(); l.Busy != 0 || l.Queued != 0 {
		t.Errorf("load after every job finished: %+v", l)
	}
}

// blocked starts a job that stops at its first token until release closes;
// started is closed when it gets there.
func blocked(t *testing.T, s serve.Scheduler, tok *tokenizer.Tokenizer, ctx context.Context, release <-chan struct{}) (started chan struct{}, done chan error) {
	started, done = make(chan struct{}), make(chan error, 1)
	once := sync.Once{}
	go func() {
		_, err := s.Run(ctx, job(t, tok, "Hello", 4, func(textgen.Event) error {
			once.Do(func() { close(started) })
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}))
		done <- err
	}()
	return started, done
}

func queueFull(t *testing.T, e *engine.Engine, tok *tokenizer.Tokenizer, newScheduler Factory) {
	s := newScheduler(1, 1)
	release := make(chan struct{})
	started, first := blocked(t, s, tok, context.Background(), release)
	<-started
	_, second := blocked(t, s, tok, context.Background(), release)
	waitFor(t, "a queued job", func() bool { return s.Load().Queued == 1 })
	t0 := time.Now()
	_, err := s.Run(context.Background(), job(t, tok, "Hi", 2, nil))
	if !errors.Is(err, serve.ErrQueueFull) || time.Since(t0) > time.Second {
		t.Fatalf("a job beyond the queue: %v after %v, want serve.ErrQueueFull at once", err, time.Since(t0))
	}
	close(release)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

func cancel(t *testing.T, e *engine.Engine, tok *tokenizer.Tokenizer, newScheduler Factory) {
	s := newScheduler(1, 4)
	release := make(chan struct{})
	defer close(release)
	runCtx, stopRun := context.WithCancel(context.Background())
	started, running := blocked(t, s, tok, runCtx, release)
	<-started
	queueCtx, stopQueued := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		_, err := s.Run(queueCtx, job(t, tok, "Hi", 2, nil))
		queued <- err
	}()
	waitFor(t, "a queued job", func() bool { return s.Load().Queued == 1 })
	stopQueued()
	if err := wait(t, queued); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", err)
	}
	stopRun()
	if err := wait(t, running); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while running: %v", err)
	}
	waitFor(t, "the slot freed", func() bool { l := s.Load(); return l.Busy == 0 && l.Queued == 0 })
	out, err := s.Run(context.Background(), job(t, tok, "Hi", 3, nil))
	if err != nil || len(out.Tokens) != 3 {
		t.Fatalf("a job after the cancellations: %v, %v", out.Tokens, err)
	}
}

func wait(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no answer in 5 s")
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
