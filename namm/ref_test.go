package namm

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
)

// Independent float64 re-computations of the reference, written naively
// from namm-reference.md.

func refHann(k int) float64 { return 0.5 - 0.5*math.Cos(2*math.Pi*float64(k)/32) }

var refTwiddle = func() (t [17][32]complex128) {
	for f := range 17 {
		for k := range 32 {
			t[f][k] = cmplx.Exp(complex(0, -2*math.Pi*float64(f*k)/32))
		}
	}
	return t
}()

// refSpectrum is |DFT| of the Hann-windowed 32 samples, 17 bins.
func refSpectrum(x []float64) []float64 {
	out := make([]float64, 17)
	for f := range 17 {
		var s complex128
		for k := range 32 {
			s += complex(refHann(k)*x[k], 0) * refTwiddle[f][k]
		}
		out[f] = cmplx.Abs(s)
	}
	return out
}

// refStepOmega applies one reference step to one token: signal tail ++ a
// (528 values), 32 frames, EMA with masks, plus a^32 omega_old. newIdx is
// the token's index among the step's new tokens, or -1 for an old token.
func refStepOmega(tail, a []float64, newIdx int, old []float64) []float64 {
	x := append(append([]float64{}, tail...), a...)
	g := math.Pow(0.99, 16)
	out := make([]float64, 17)
	for t := range 32 {
		if newIdx >= 0 && newIdx/16 > t {
			continue
		}
		spec := refSpectrum(x[16*t : 16*t+32])
		for f := range 17 {
			out[f] += (1 - g) * math.Pow(g, float64(31-t)) * spec[f]
		}
	}
	for f := range 17 {
		out[f] += math.Pow(0.99, 512) * old[f]
	}
	return out
}

// refBAM scores tokens with BAM in float64 by direct loops over the flat
// parameter vector.
func refBAM(flat []float64, x [][]float64) []float64 {
	s := len(x)
	wqkv := func(r, c int) float64 { return flat[r*96+c] }
	bqkv := func(c int) float64 { return flat[2400+c] }
	wo := func(r, c int) float64 { return flat[2496+r*50+c] }
	bo := func(c int) float64 { return flat[4096+c] }
	w := func(c int) float64 { return flat[4146+c] }
	b := flat[4171]
	qkv := make([][]float64, s)
	for i := range s {
		qkv[i] = make([]float64, 96)
		for c := range 96 {
			v := bqkv(c)
			for r := range 25 {
				v += x[i][r] * wqkv(r, c)
			}
			qkv[i][c] = v
		}
	}
	out := make([]float64, s)
	for i := range s {
		logits := make([]float64, s)
		m := math.Inf(-1)
		for j := range s {
			if j < i {
				logits[j] = math.Inf(-1)
				continue
			}
			d := 0.0
			for c := range 32 {
				d += qkv[i][c] * qkv[j][32+c]
			}
			logits[j] = d / math.Sqrt(32)
			m = math.Max(m, logits[j])
		}
		sum := 0.0
		for j := range s {
			logits[j] = math.Exp(logits[j] - m)
			sum += logits[j]
		}
		att := make([]float64, 32)
		for j := range s {
			for c := range 32 {
				att[c] += logits[j] / sum * qkv[j][64+c]
			}
		}
		o := make([]float64, 50)
		for u := range 50 {
			o[u] = bo(u)
			for c := range 32 {
				o[u] += att[c] * wo(c, u)
			}
		}
		sc := b
		for f := range 25 {
			h := x[i][f]*(1+o[25+f]) + o[f]
			sc += h * w(f)
		}
		out[i] = sc
	}
	return out
}

func randFlat(r *rand.Rand, scale float64) []float64 {
	flat := make([]float64, NumParams)
	for i := range flat {
		flat[i] = r.NormFloat64() * scale
	}
	return flat
}

// recencyFlat is a parameter vector whose score is cos(r f_3) - cos(R f_3)
// with R = keepAge + 0.5: BAM's attention contributes nothing (all its
// weights are zero, so o = b_o = 0 and h = x), w picks the slowest cosine
// (index 7), which decreases in r for r f_3 < pi (r < ~10,500). Tokens older
// than keepAge get negative scores.
func recencyFlat(keepAge int) []float64 {
	flat := make([]float64, NumParams)
	f3 := 1 / math.Pow(50000, 3.0/4)
	flat[4146+7] = 1
	flat[4171] = -float64(float32(math.Cos((float64(keepAge) + 0.5) * f3)))
	return flat
}
