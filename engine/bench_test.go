package engine

import (
	"fmt"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/namm-dev/namm/model"
)

// The benchmarks run the llama2.c "stories15M"-like shape (model.Shapes
// "llama15m") with random weights, so they need no files. The backend is
// NAMM_BENCH_BACKEND (default "go:ops_sequential", the faster scheduler for
// decode). Besides wall time they report CPU time per op: on a shared
// machine it is the steadier number.

func benchEngine(b *testing.B) *Engine {
	b.Helper()
	cfg, err := model.ShapeConfig("llama15m")
	if err != nil {
		b.Fatal(err)
	}
	spec := os.Getenv("NAMM_BENCH_BACKEND")
	if spec == "" {
		spec = "go:ops_sequential"
	}
	be, err := OpenBackend(spec)
	if err != nil {
		b.Fatal(err)
	}
	return New(cfg, model.RandomWeights(cfg, dtypes.Float32, 1), be, Options{Backend: spec})
}

func randomIDs(n, vocab int) []int {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// cpuNanos is the process's user+system CPU time.
func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkDecodeLlama15M decodes one token per op after a 1,024-token
// prompt (full cache; the cache grows by b.N tokens during the run).
func BenchmarkDecodeLlama15M(b *testing.B) {
	for _, ctx := range []int{1024} {
		b.Run(fmt.Sprintf("ctx%d", ctx), func(b *testing.B) {
			e := benchEngine(b)
			s, err := e.NewSession(nil)
			if err != nil {
				b.Fatal(err)
			}
			logits, err := s.Prefill(randomIDs(ctx, e.Config.VocabSize))
			if err != nil {
				b.Fatal(err)
			}
			// One warm-up token compiles the decode graphs.
			if logits, err = s.Decode(Argmax(logits)); err != nil {
				b.Fatal(err)
			}
			c0 := cpuNanos()
			for b.Loop() {
				if logits, err = s.Decode(Argmax(logits)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkPrefillChunk runs one prefill chunk (128 tokens) per op on an
// empty cache, with the last token's logits.
func BenchmarkPrefillChunk(b *testing.B) {
	e := benchEngine(b)
	ids := randomIDs(e.ChunkSize(), e.Config.VocabSize)
	run := func() {
		s, err := e.NewSession(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Prefill(ids); err != nil {
			b.Fatal(err)
		}
	}
	run() // compile
	c0 := cpuNanos()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkPrefillLlama15M prefills a whole 4,096-token prompt per op (in
// 128-token chunks; the attention over the growing cache is most of it):
// the docs' 4k CPU profile is this benchmark with -cpuprofile.
func BenchmarkPrefillLlama15M(b *testing.B) {
	for _, ctx := range []int{4096} {
		b.Run(fmt.Sprintf("ctx%d", ctx), func(b *testing.B) {
			e := benchEngine(b)
			ids := randomIDs(ctx, e.Config.VocabSize)
			c0 := cpuNanos()
			for b.Loop() {
				s, err := e.NewSession(nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Prefill(ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(ctx*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
