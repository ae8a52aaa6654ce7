package evolve

import (
	"context"
	"fmt"
	"testing"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/task/gen"
)

// BenchmarkCMAGeneration times one Ask + Tell at the NAMM size (n = 4172,
// lambda = 32) in each covariance mode; full mode eigendecomposes a
// 4172 x 4172 matrix every generation.
func BenchmarkCMAGeneration(b *testing.B) {
	for _, mode := range []cmaes.Mode{cmaes.ModeSep, cmaes.ModeFull} {
		b.Run(string(mode), func(b *testing.B) {
			c, err := cmaes.New(cmaes.Config{N: namm.NumParams, Mode: mode, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				xs := c.Ask()
				fit := make([]float64, len(xs))
				for k, x := range xs {
					fit[k] = -x[0] * x[0]
				}
				if err := c.Tell(xs, fit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNATSWorkers measures evaluations per second through an embedded
// NATS server with 1, 2 and 4 in-process workers on the tiny model.
func BenchmarkNATSWorkers(b *testing.B) {
	ev := tinyEvaluator(b)
	st, err := ParseStage("niah_single:len=560:n=4", 4, 1)
	if err != nil {
		b.Fatal(err)
	}
	jobs, err := BenchJobs(ev, st.Train[0], 4, 2, 0.065, 3, 1)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := StartEmbeddedNATS()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			var evals, secs float64
			for b.Loop() {
				res, err := BenchWorkers(context.Background(), ev, srv.URL(), jobs, []int{n})
				if err != nil {
					b.Fatal(err)
				}
				evals += float64(res[0].Jobs)
				secs += res[0].Seconds
			}
			b.ReportMetric(evals/secs, "evals/s")
		})
	}
}

// TestBatchedJobsMatchOneByOne: NAMM jobs of different population members
// (each its own parameters) evaluated several to a pass through the
// evaluator's runner score exactly as one job at a time.
func TestBatchedJobsMatchOneByOne(t *testing.T) {
	shared := tinyEvaluator(t)
	spec, err := gen.ParseSpec("niah_single:len=700:n=3:seed=2")
	if err != nil {
		t.Fatal(err)
	}
	// Its own evaluator: the shared one's runner batch stays 1.
	ev := NewEvaluator(shared.Engine, shared.Tok, shared.Fingerprint)
	jobs, err := BenchJobs(ev, spec, 3, 3, 0.5, 4, 7)
	if err != nil {
		t.Fatal(err)
	}
	one, err := NewLocalPool(ev, 1).Run(context.Background(), jobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.Runner.Batch = 4
	for i := range jobs {
		jobs[i].Batch = "batched"
	}
	batched, err := NewLocalPool(ev, 4).Run(context.Background(), jobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv := map[float64]bool{}
	for i := range jobs {
		kv[one[i].KVMean] = true
		a, b := batched[i], one[i]
		if a.Score != b.Score || a.KVMean != b.KVMean || a.KVPeak != b.KVPeak || a.NewTok != b.NewTok {
			t.Errorf("job %d: batched %+v, one by one %+v", i, a, b)
		}
	}
	if len(kv) < 4 {
		t.Errorf("%d distinct KV means over %d jobs: the members did not evict differently", len(kv), len(jobs))
	}
}
