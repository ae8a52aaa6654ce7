package policy

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSelectTopKDecode: one decode step of an 8k-token head over a budget
// of 8191 (one eviction), the common case of H2O/TOVA/L2 while decoding.
func BenchmarkSelectTopKDecode(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	scores := make([]float64, 8192)
	for i := range scores {
		scores[i] = rng.Float64()
	}
	for b.Loop() {
		SelectTopK(scores, 8191, Protect{Recent: 4096})
	}
}

// BenchmarkSelectTopKPrefill: a prefill chunk over budget (128 evictions).
func BenchmarkSelectTopKPrefill(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	scores := make([]float64, 8192+128)
	for i := range scores {
		scores[i] = rng.Float64()
	}
	for b.Loop() {
		SelectTopK(scores, 8192, Protect{Recent: 4096})
	}
}
