// Package f32math has float32 functions for the host's hot loops, where
// math's float64 functions dominate the cost.
package f32math

import "math"

// ExpNeg is e^x for x <= 0 in float32, within ~2 ulp of math.Exp (and 0 for
// -Inf): range reduction x = n ln2 + r, |r| <= ln2/2, and a degree-7
// polynomial. Softmaxes (the engine's attention on the host, the NAMM's BAM
// scorer) call it once per attention weight.
func ExpNeg(x float32) float32 {
	if x < -87.33 { // below the smallest normal float32
		return 0
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693145751953125
		ln2lo = 1.42860682030941723212e-6
	)
	n := float32(int32(x*log2e - 0.5)) // round to nearest for x <= 0 (truncation is toward zero)
	r := x - n*ln2hi - n*ln2lo
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
