package evolve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/task/gen"
)

// BenchJobs makes population x len(samples) NAMM jobs over the first samples
// of spec, with Gaussian candidates of standard deviation sigma (seeded).
func BenchJobs(ev *Evaluator, spec gen.Spec, population, samples int, sigma float64, maxNew int, seed uint64) ([]Job, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	var jobs []Job
	for m := 0; m < population; m++ {
		p := make([]float32, namm.NumParams)
		for i := range p {
			p[i] = float32(sigma * r.NormFloat64())
		}
		for i := 0; i < samples; i++ {
			s, err := ev.Store.Sample(spec.String(), i)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, Job{Batch: fmt.Sprintf("bench-%d", seed), Index: len(jobs), Model: ev.Fingerprint,
				Spec: spec.String(), Sample: i, PromptHash: promptHash(s.Prompt), MaxNew: maxNew, Params: p})
		}
	}
	return jobs, nil
}

// BenchResult is the throughput of one worker count.
type BenchResult struct {
	Workers     int
	Jobs        int
	Seconds     float64
	EvalsPerSec float64
}

// BenchWorkers runs jobs through a NATS pool at url with each number of
// in-process workers in counts (each worker its own connection, all sharing
// ev's engine) and reports evaluations per second. A warm-up batch on one
// worker runs first (graph compilation, sample generation).
func BenchWorkers(ctx context.Context, ev *Evaluator, url string, jobs []Job, counts []int) ([]BenchResult, error) {
	pool, err := NewNATSPool(ctx, url, NATSOptions{Queue: "bench"})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	run := func(n int, batch []Job) (time.Duration, error) {
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var conns []*nats.Conn
		defer func() {
			cancel()
			for _, nc := range conns {
				nc.Close()
			}
			wg.Wait()
		}()
		for i := 0; i < n; i++ {
			nc, err := nats.Connect(url)
			if err != nil {
				return 0, err
			}
			conns = append(conns, nc)
			w := &Worker{Eval: ev}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.Run(wctx, nc) // ends when the bench cancels it; failed jobs fail the batch
			}()
		}
		start := time.Now()
		_, err := pool.Run(ctx, batch, nil)
		return time.Since(start), err
	}
	warm := make([]Job, 0, min(len(jobs), 2))
	for i := range cap(warm) {
		j := jobs[i]
		j.Batch, j.Index = "bench-warmup", i
		warm = append(warm, j)
	}
	if _, err := run(1, warm); err != nil {
		return nil, fmt.Errorf("bench warm-up: %w", err)
	}
	var out []BenchResult
	for k, n := range counts {
		batch := make([]Job, len(jobs))
		for i, j := range jobs {
			j.Batch = fmt.Sprintf("bench-w%d-%d", n, k)
			batch[i] = j
		}
		d, err := run(n, batch)
		if err != nil {
			return out, fmt.Errorf("bench with %d workers: %w", n, err)
		}
		out = append(out, BenchResult{Workers: n, Jobs: len(jobs), Seconds: d.Seconds(), EvalsPerSec: float64(len(jobs)) / d.Seconds()})
	}
	return out, nil
}
