package gen

import (
	"fmt"
	"math"
)

// fitHint carries what one sample's fit learned to the next sample's, so that most samples
// need only one or two full tokenizations.
type fitHint struct {
	n     int     // haystack units of the previous sample
	slope float64 // its tokens per unit
}

// fit finds the largest haystack size it can whose prompt has at most target tokens, stopping
// once the prompt is within slack (default 1%) of target (or when one more unit would exceed it). It
// interpolates on the measured token counts (regula falsi, then bisection) so that each
// sample costs a few tokenizations of the whole prompt.
func fit(in *instance, tok Counter, target int, hint fitHint, slack float64) (string, int, fitHint, error) {
	count := func(n int) (string, int) {
		p := in.build(n)
		return p, len(tok.Encode(p, true))
	}
	if slack <= 0 {
		slack = 0.01
	}
	slack = min(slack, 0.1)
	accept := target - int(float64(target)*slack)
	aim := float64(target) - max(1, float64(target)*slack/2)

	lo := in.minN
	loPrompt, cLo := count(lo)
	if cLo > target {
		return "", 0, hint, fmt.Errorf("len=%d is too short: the prompt has %d tokens with the smallest haystack", target, cLo)
	}
	base := cLo
	hi, cHi := in.maxN+1, math.MaxInt
	slope := in.unitTokens
	if hint.slope > 0 {
		slope = hint.slope
	}
	if slope <= 0 {
		slope = 1
	}
	next := lo + int((aim-float64(cLo))/slope)
	if hint.n > 0 {
		next = hint.n
	}
	for iter := 0; cLo < accept && hi-lo > 1; iter++ {
		if iter >= 8 { // interpolation is stalling: bisect
			next = lo + (hi-lo)/2
		}
		next = min(max(next, lo+1), hi-1)
		p, c := count(next)
		if c <= target {
			lo, loPrompt, cLo = next, p, c
		} else {
			hi, cHi = next, c
		}
		if hi <= in.maxN && cHi > cLo {
			slope = float64(cHi-cLo) / float64(hi-lo)
		} else if lo > in.minN && cLo > base {
			slope = float64(cLo-base) / float64(lo-in.minN)
		}
		next = lo + int(math.Round((aim-float64(cLo))/slope))
	}
	h := hint
	if lo > in.minN && cLo > base {
		h = fitHint{n: lo, slope: float64(cLo-base) / float64(lo-in.minN)}
	}
	return loPrompt, cLo, h, nil
}
