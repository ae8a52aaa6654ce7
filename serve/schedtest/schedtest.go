// Package schedtest checks that a serve.Scheduler keeps the contract the
// server relies on. Any implementation (the slot pool, a batched runner)
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
	"github.com/namm-dev/namm/serve"
	"github.com/namm-dev/namm/textgen"
	"github.com/namm-dev/namm/tokenizer"
)

// Factory makes a scheduler that runs at most slots jobs at once and queues
// at most queue more.
type Factory func(slots, queue int) serve.Scheduler

// Run checks: concurrent jobs give each the tokens it gets alone; a full
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
	return serve.Job{Policy: p, Request: textgen.Request{Prompt: tok.Encode(prompt, true), MaxTokens: n}, OnEvent: onEvent}
}

func concurrent(t *testing.T, e *engine.Engine, tok *tokenizer.Tokenizer, newScheduler Factory) {
	s := newScheduler(3, 8)
	prompts := []string{"One", "Two birds", "Three little pigs", "Four", "Five and six", "Seven"}
	got := [][]int{}
	for range prompts {
		got = append(got, nil)
	}
	errs := slices.Repeat([]error{nil}, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.Run(context.Background(), job(t, tok, p, 12, nil))
			got[i], errs[i] = out.Tokens, err
		}()
	}
	wg.Wait()
	for i, p := range prompts {
		if errs[i] != nil {
			t.Fatalf("%q: %v", p, errs[i])
		}
		want, err := e.Greedy(tok.Encode(p, true), 12, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got[i], want) {
			t.Errorf("%q: concurrent %v, alone %v", p, got[i], want)
		}
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
