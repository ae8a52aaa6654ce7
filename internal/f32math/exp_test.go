package f32math

import (
	"math"
	"testing"
)

func TestExpNeg(t *testing.T) {
	for x := float32(-90); x <= 0; x += 0.0137 {
		got, want := float64(ExpNeg(x)), math.Exp(float64(x))
		if math.Abs(got-want) > 3e-7*want+1.5e-38 {
			t.Fatalf("ExpNeg(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float32{0, float32(math.Inf(-1)), -87.34, -1e30} {
		if got, want := float64(ExpNeg(x)), math.Exp(float64(x)); math.Abs(got-want) > 3e-7*want+1.5e-38 {
			t.Fatalf("ExpNeg(%v) = %v, want %v", x, got, want)
		}
	}
}
