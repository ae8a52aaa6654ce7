package evolve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/namm-dev/namm/evolve/cmaes"
)

// realConfig is a one-generation run on the tiny model: prompts just over
// 512 tokens so that every NAMM member runs one eviction step.
func realConfig(t testing.TB, out string) Config {
	t.Helper()
	ev := tinyEvaluator(t)
	st, err := ParseStage("niah_single:len=560:n=3", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Model: ev.Fingerprint, BaseModel: "tiny-llama", Stages: []Stage{st}, Generations: 1,
		Population: 4, Samples: 1, ValSamples: 1, Seed: 3, Sigma0: 0.5, CMA: cmaes.ModeSep, EvalEvery: 10,
		MaxNew: 3, NormSamples: 1, Out: out}
}

// startWorkers runs n workers, each with its own connection, and returns
// their connections; kill(i) closes worker i's connection.
func startWorkers(t *testing.T, ctx context.Context, url string, n int, hook func(worker int, nc *nats.Conn, j Job)) (wait func()) {
	t.Helper()
	base := tinyEvaluator(t)
	var wg sync.WaitGroup
	for i := range n {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("worker-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ev := NewEvaluator(base.Engine, base.Tok, base.Fingerprint)
		ev.Name = fmt.Sprintf("worker-%d", i)
		w := &Worker{Eval: ev}
		if hook != nil {
			w.beforeReply = func(j Job) { hook(i, nc, j) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			err := w.Run(ctx, nc)
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrWorkerConnClosed) {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}
	return wg.Wait
}

// TestNATSWorkerKilled: three workers on an embedded server, one of them
// killed (connection closed, job unacknowledged) in the middle of the
// generation; the run completes and its log (fitness of every member, cache
// sizes, validation, optimiser trajectory) equals the local pool's bit for bit.
func TestNATSWorkerKilled(t *testing.T) {
	ev := tinyEvaluator(t)
	localDir, natsDir := t.TempDir(), t.TempDir()
	local := &Trainer{Cfg: realConfig(t, localDir), Eval: ev, Pool: NewLocalPool(ev, 2), Messages: tlog{t}}
	if err := local.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	srv, err := StartEmbeddedNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "nats://127.0.0.1:") {
		t.Fatalf("embedded server at %s, want loopback", srv.URL())
	}
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := NewNATSPool(ctx, srv.URL(), NATSOptions{AckWait: time.Second, MaxDeliver: 5, Queue: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var killed atomic.Bool
	var genJobs atomic.Int32
	wait := startWorkers(t, ctx, srv.URL(), 3, func(worker int, nc *nats.Conn, j Job) {
		if !strings.HasSuffix(j.Batch, "-gen") {
			return
		}
		genJobs.Add(1)
		if worker == 0 && !killed.Load() {
			killed.Store(true)
			nc.Close() // dies holding an evaluated, unacknowledged job
		}
	})
	defer func() { cancel(); wait() }()
	remote := &Trainer{Cfg: realConfig(t, natsDir), Eval: ev, Pool: pool, Messages: tlog{t}}
	if err := remote.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !killed.Load() {
		t.Fatal("worker 0 never ran a generation job, so it was not killed")
	}
	// 4 member jobs, plus the killed worker's job evaluated a second time.
	if n := genJobs.Load(); n < 5 {
		t.Errorf("%d generation job evaluations, want at least 5 (4 + the redelivered one)", n)
	}
	want, got := logWithoutTimes(t, localDir), logWithoutTimes(t, natsDir)
	if len(got) != len(want) {
		t.Fatalf("NATS log has %d lines, local %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("log line %d differs:\nNATS  %s\nlocal %s", i, got[i], want[i])
		}
	}
	var e LogEntry
	if err := jsonLine(want[0], &e); err != nil {
		t.Fatal(err)
	}
	// The members evict differently, so the comparison is not of constants.
	if e.KVMean == e.RefKVMean {
		t.Errorf("members' mean cache %v equals the full cache's: nothing was evicted", e.KVMean)
	}
}

// TestNATSMaxDeliver: a job no worker ever answers fails the batch after
// MaxDeliver deliveries, with the job named.
func TestNATSMaxDeliver(t *testing.T) {
	ev := tinyEvaluator(t)
	srv, err := StartEmbeddedNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := NewNATSPool(ctx, srv.URL(), NATSOptions{AckWait: 200 * time.Millisecond, MaxDeliver: 2, Queue: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A worker that takes jobs and never answers them.
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go func() {
		w := &Worker{Eval: ev, Concurrency: 3} // two hold deliveries 1 and 2, the third pulls (the server checks MaxDeliver on a pull)
		w.beforeReply = func(Job) { <-ctx.Done() }
		w.Run(ctx, nc)
	}()
	st, _ := ParseStage("niah_single:len=100:n=1", 1, 1)
	sp := st.Train[0]
	s, err := ev.Store.Sample(sp.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	jobs := []Job{{Batch: "b", Index: 0, Model: ev.Fingerprint, Spec: sp.String(), PromptHash: promptHash(s.Prompt), MaxNew: 1}}
	_, err = pool.Run(ctx, jobs, nil)
	if err == nil || !strings.Contains(err.Error(), "delivered 2 times") || !strings.Contains(err.Error(), "niah_single") {
		t.Errorf("got %v, want a max-deliveries error naming the job", err)
	}
}
