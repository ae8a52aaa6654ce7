package evolve

import (
	"context"
	"fmt"
	"testing"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/namm"
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
