package par

import (
	"sync/atomic"
	"testing"
)

// TestForRunsEachIterationOnce: every index is visited exactly once, for
// worker counts below, at and above n, and for n = 0.
func TestForRunsEachIterationOnce(t *testing.T) {
	for _, c := range [][2]int{{0, 4}, {1, 4}, {7, 1}, {7, 3}, {100, 0}, {5, 50}} {
		n, workers := c[0], c[1]
		counts := make([]atomic.Int32, n)
		For(n, workers, func(i int) { counts[i].Add(1) })
		for i := range counts {
			if got := counts[i].Load(); got != 1 {
				t.Fatalf("n=%d workers=%d: index %d ran %d times", n, workers, i, got)
			}
		}
	}
}
