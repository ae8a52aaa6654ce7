package evolve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/task/gen"
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

// TestNATSWrongModelWorker: a worker started with another model refuses
// the jobs (a negative ack, one message saying why) instead of failing the
// batch; the other worker answers every job and the batch completes.
func TestNATSWrongModelWorker(t *testing.T) {
	defer func(d time.Duration) { refuseDelay = d }(refuseDelay)
	refuseDelay = 100 * time.Millisecond
	base := tinyEvaluator(t)
	srv, err := StartEmbeddedNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := NewNATSPool(ctx, srv.URL(), NATSOptions{AckWait: time.Second, MaxDeliver: 20, Queue: "mixed"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var wg sync.WaitGroup
	var badMsgs []string
	var msgMu sync.Mutex
	var answered [2]atomic.Int32
	for i, fp := range []string{"sha256:0000000000000000", base.Fingerprint} { // the bad worker starts first
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		ev := NewEvaluator(base.Engine, base.Tok, fp)
		w := &Worker{Eval: ev, Messages: func(s string) {
			msgMu.Lock()
			badMsgs = append(badMsgs, fmt.Sprintf("worker %d: %s", i, s))
			msgMu.Unlock()
		}}
		w.beforeReply = func(Job) { answered[i].Add(1) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			w.Run(ctx, nc)
		}()
		if i == 0 {
			time.Sleep(200 * time.Millisecond) // first in line for the jobs
		}
	}
	st, _ := ParseStage("niah_single:len=100:n=4", 4, 1)
	sp := st.Train[0]
	var jobs []Job
	for i := range 4 {
		s, err := base.Store.Sample(sp.String(), i)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, Job{Batch: "b", Index: i, Model: base.Fingerprint, Spec: sp.String(), Sample: i, PromptHash: promptHash(s.Prompt), MaxNew: 1})
	}
	res, err := pool.Run(ctx, jobs, nil)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("the batch failed: %v\n%s", err, strings.Join(badMsgs, "\n"))
	}
	if len(res) != 4 || answered[0].Load() != 0 || answered[1].Load() < 4 {
		t.Errorf("%d results; the wrong-model worker answered %d jobs, the right one %d", len(res), answered[0].Load(), answered[1].Load())
	}
	joined := strings.Join(badMsgs, "\n")
	if !strings.Contains(joined, "worker 0: refusing jobs") || !strings.Contains(joined, "sha256:0000000000000000") || strings.Count(joined, "refusing") != 1 {
		t.Errorf("the wrong-model worker should say once why it refuses; messages:\n%s", joined)
	}
}

// TestWorkerIdle: a worker without jobs says once that it waits for the
// next run, and with IdleExit stops by itself.
func TestWorkerIdle(t *testing.T) {
	srv, err := StartEmbeddedNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := NewNATSPool(ctx, srv.URL(), NATSOptions{Queue: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var msgs []string
	var mu sync.Mutex
	w := &Worker{Eval: tinyEvaluator(t), Concurrency: 2, IdleNotice: 300 * time.Millisecond, IdleExit: 1500 * time.Millisecond,
		Messages: func(s string) { mu.Lock(); msgs = append(msgs, s); mu.Unlock() }}
	start := time.Now()
	err = w.Run(ctx, nc)
	if !errors.Is(err, ErrIdle) || time.Since(start) > 10*time.Second {
		t.Fatalf("Run: %v after %v, want ErrIdle after about 1.5 s", err, time.Since(start))
	}
	joined := strings.Join(msgs, "\n")
	if strings.Count(joined, "waiting for the next run") != 1 {
		t.Errorf("want one waiting message, got:\n%s", joined)
	}
}

// TestRemoveStaleStores: the store of a dead process goes, those of live
// ones and other files stay.
func TestRemoveStaleStores(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	dead := cmd.Process.Pid
	names := map[string]bool{ // name -> kept
		fmt.Sprintf("%s%d-123", storePrefix, dead):        false,
		fmt.Sprintf("%s%d-456", storePrefix, os.Getpid()): true,
		storePrefix + "789":                               true, // no process id: not ours to judge
		"other-dir":                                       true,
	}
	for name := range names {
		if err := os.MkdirAll(filepath.Join(tmp, name, "jetstream"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleStores(tmp)
	for name, kept := range names {
		_, err := os.Stat(filepath.Join(tmp, name))
		if (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", name, err == nil, kept)
		}
	}
}

// TestWorkerDoneCounts: two workers share a batch of jobs; both took part,
// and the results they say they sent cover the batch (at least once: a job
// can be delivered again).
func TestWorkerDoneCounts(t *testing.T) {
	base := tinyEvaluator(t)
	spec, err := gen.ParseSpec("niah_single:len=560:n=2:seed=2")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := BenchJobs(base, spec, 3, 2, 0.5, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartEmbeddedNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := NewNATSPool(ctx, srv.URL(), NATSOptions{AckWait: 10 * time.Second, MaxDeliver: 5, Queue: "done"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var workers []*Worker
	var wg sync.WaitGroup
	for i := range 2 {
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		ev := NewEvaluator(base.Engine, base.Tok, base.Fingerprint)
		// Each worker holds its job a moment, so that the other takes some.
		w := &Worker{Eval: ev, beforeReply: func(Job) { time.Sleep(50 * time.Millisecond) }, Messages: func(s string) { t.Logf("worker %d: %s", i, s) }}
		workers = append(workers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			if err := w.Run(ctx, nc); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}
	if _, err := pool.Run(ctx, jobs, nil); err != nil {
		t.Fatal(err)
	}
	// The coordinator can read a result before its worker has the server's
	// acknowledgement of it (and counts it): wait for the workers a moment.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if workers[0].Done()+workers[1].Done() >= int64(len(jobs)) {
			break
		}
	}
	cancel()
	wg.Wait()
	a, b := workers[0].Done(), workers[1].Done()
	if a+b < int64(len(jobs)) || a == 0 || b == 0 {
		t.Errorf("workers sent the results of %d and %d jobs, want both > 0, at least %d in all", a, b, len(jobs))
	}
}
