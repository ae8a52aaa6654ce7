package gen

import (
	"hash/fnv"
	"math/bits"
	"math/rand/v2"
)

// rng is a seeded random stream whose outputs are fixed by this file alone: PCG (whose
// algorithm math/rand/v2 specifies) for the bits, and our own derivations on top, so a
// given seed gives the same samples on every Go release.
type rng struct{ src *rand.PCG }

// newRNG derives an independent stream from a label (the canonical spec, a purpose) and numbers.
func newRNG(label string, nums ...int64) *rng {
	h := fnv.New64a()
	h.Write([]byte(label))
	var b [8]byte
	for _, n := range nums {
		for i := range b {
			b[i] = byte(uint64(n) >> (8 * i))
		}
		h.Write(b[:])
	}
	s := h.Sum64()
	return &rng{rand.NewPCG(s, s^0x9e3779b97f4a7c15)}
}

func (r *rng) uint64() uint64 { return r.src.Uint64() }

// intn returns a uniform integer in [0, n) (Lemire's method with rejection); n must be > 0.
func (r *rng) intn(n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.uint64(), un)
		}
	}
	return int(hi)
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.uint64()>>11) / (1 << 53) }

// shuffle permutes n elements with Fisher-Yates.
func (r *rng) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.intn(i+1))
	}
}

// perm returns a random permutation of 0..n-1.
func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// fork derives a new independent stream from this one.
func (r *rng) fork() *rng {
	a, b := r.uint64(), r.uint64()
	return &rng{rand.NewPCG(a, b)}
}
