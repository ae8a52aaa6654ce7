package namm

import (
	"math"

	"github.com/viterin/vek/vek32"

	"github.com/namm-dev/namm/internal/mat"
)

// Settings of the reference NAMM (namm-reference.md §1). A NAMM file records
// them and Load refuses any other value.
const (
	NFFT      = 32   // STFT window length
	Hop       = 16   // STFT hop: one frame per 16 queries
	Bins      = 17   // onesided frequency bins, NFFT/2 + 1
	StepEvery = 512  // a NAMM step runs when the processed count is a multiple of this
	EMAGamma  = 0.99 // EMA coefficient per query
	RecDims   = 8    // recency embedding width
	RecMaxFrq = 50000.0
	FeatDims  = RecDims + Bins // 25: BAM input width
	normFloor = 1e-7           // z = (omega - mu) / max(sqrt(var), normFloor)
)

var (
	// emaA is the EMA coefficient per frame, gamma^Hop.
	emaA = float32(math.Pow(EMAGamma, Hop))
	// emaB = 1 - gamma^Hop, the weight of a new frame.
	emaB = float32(1 - math.Pow(EMAGamma, Hop))
	// hann is the periodic Hann window w[k] = 0.5 - 0.5 cos(2 pi k / NFFT).
	hann [NFFT]float32
	// recFreq are the recency frequencies f_k = 50000^(-k/4), k = 0..3.
	recFreq [RecDims / 2]float64
	// dftFlat is the windowed DFT as a [NFFT][NFFT] row-major table: frame .
	// table gives the 17 bins' real parts, then the imaginary parts of bins
	// 1-15 (those of bins 0 and 16, sines of multiples of pi, are 0). 32
	// columns fit mat.MulStrided's kernel exactly, with no scalar tail.
	dftFlat [NFFT * NFFT]float32
)

func init() {
	for k := range NFFT {
		hann[k] = float32(0.5 - 0.5*math.Cos(2*math.Pi*float64(k)/NFFT))
	}
	for k := range recFreq {
		recFreq[k] = 1 / math.Pow(RecMaxFrq, float64(k)/float64(RecDims/2))
	}
	for k, row := range dftTable() {
		copy(dftFlat[k*NFFT:], row[:Bins])
		copy(dftFlat[k*NFFT+Bins:], row[Bins+1:2*Bins-1])
	}
}

// frameMagnitudes writes the onesided STFT magnitudes of n frames
// (frames [n][32]) into out [n][17]:
// out[i][f] = | sum_k hann[k] frames[i][k] e^{-2 pi i f k / 32} |, as one
// product with the windowed DFT table (internal/mat: AVX2 where the CPU has
// it). ri is scratch of at least n*32 values.
func frameMagnitudes(frames []float32, n int, ri, out []float32) {
	ri, out = ri[:n*NFFT], out[:n*Bins]
	mat.MulStrided(ri, frames[:n*NFFT], dftFlat[:], n, NFFT, NFFT, NFFT)
	for i := range n {
		row, o := ri[i*NFFT:(i+1)*NFFT], out[i*Bins:(i+1)*Bins]
		o[0] = row[0] * row[0]
		for f := 1; f < Bins-1; f++ {
			re, im := row[f], row[Bins+f-1]
			o[f] = re*re + im*im
		}
		o[Bins-1] = row[Bins-1] * row[Bins-1]
	}
	vek32.Sqrt_Inplace(out) // correctly rounded, as float32(math.Sqrt(float64))
}

func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }

// headFeatures is the per-token state NAMM keeps for one (layer, KV head):
// the unnormalised EMA of the spectrogram and the attention values of the
// last two 16-query blocks. Index i is the i-th cached token of the head, in
// chronological order, as in LayerView.Positions.
//
// The reference buffers 512 attention rows and folds 32 frames at each step.
// The EMA is a linear recurrence over frames, and frame t needs only queries
// 16t-16 .. 16t+15, so the same value is reached by folding each frame as soon
// as its 16-query block is complete (streaming form, tested equal to the
// batch form):
//
//	omega <- a*omega + (1-a)*S_t   for every token present when block t ends,
//
// which after the 32 blocks of a step equals
// sum_t (1-a) a^(31-t) m_t S_t + a^32 omega_old. Tokens that arrive inside
// the step start at omega = 0 with a zero tail, exactly the reference's masks:
// their frames before arrival are not folded.
type headFeatures struct {
	n     int
	omega []float32 // [n][Bins]
	prev  []float32 // [n][Hop]: values of the previous complete block (the "tail")
	cur   []float32 // [n][Hop]: values of the block being filled

	frames, ri, mag []float32 // foldBlock's scratch: frames, their DFT, magnitudes
}

// grow appends zero state for m new tokens.
func (h *headFeatures) grow(m int) {
	h.n += m
	h.omega = append(h.omega, make([]float32, m*Bins)...)
	h.prev = append(h.prev, make([]float32, m*Hop)...)
	h.cur = append(h.cur, make([]float32, m*Hop)...)
}

// addRow stores the attention of one query (slot = its position mod 16) to
// every tracked token. row may be longer than n (padding); extra is ignored.
func (h *headFeatures) addRow(slot int, row []float32) {
	n := min(h.n, len(row))
	for i := range n {
		h.cur[i*Hop+slot] = row[i]
	}
	for i := n; i < h.n; i++ {
		h.cur[i*Hop+slot] = 0
	}
}

// foldBlock folds the frame [prev ++ cur] of every token into its EMA and
// shifts cur into prev. All the tokens' frames go through frameMagnitudes
// at once: one product, ~2x faster than a hand-folded DFT frame by frame.
func (h *headFeatures) foldBlock() {
	n := h.n
	if n == 0 {
		return
	}
	h.frames = grown(h.frames, n*NFFT)
	h.ri = grown(h.ri, n*NFFT)
	h.mag = grown(h.mag, n*Bins)
	for i := range n {
		copy(h.frames[i*NFFT:i*NFFT+Hop], h.prev[i*Hop:(i+1)*Hop])
		copy(h.frames[i*NFFT+Hop:(i+1)*NFFT], h.cur[i*Hop:(i+1)*Hop])
	}
	frameMagnitudes(h.frames, n, h.ri, h.mag)
	// omega = a*omega + b*m, each product and the sum rounded as the
	// scalar expression would be.
	vek32.MulNumber_Inplace(h.omega, emaA)
	vek32.MulNumber_Inplace(h.mag, emaB)
	vek32.Add_Inplace(h.omega, h.mag)
	copy(h.prev, h.cur)
	clear(h.cur)
}

// grown returns buf with length n, reallocated only when too short.
func grown(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// gather keeps the tokens at the ascending indices keep.
func (h *headFeatures) gather(keep []int) {
	for j, i := range keep {
		copy(h.omega[j*Bins:(j+1)*Bins], h.omega[i*Bins:(i+1)*Bins])
		copy(h.prev[j*Hop:(j+1)*Hop], h.prev[i*Hop:(i+1)*Hop])
		copy(h.cur[j*Hop:(j+1)*Hop], h.cur[i*Hop:(i+1)*Hop])
	}
	h.n = len(keep)
	h.omega = h.omega[:h.n*Bins]
	h.prev = h.prev[:h.n*Hop]
	h.cur = h.cur[:h.n*Hop]
}

// Norm is the frozen normalisation of the 17 spectral features.
type Norm struct {
	Mean [Bins]float32
	Var  [Bins]float32
}

// RecencyEmbedding returns [sin(r f_k)]_{k<4} ++ [cos(r f_k)]_{k<4} with
// f_k = 50000^(-k/4), computed in float64 and rounded, as the reference's
// precomputed table.
func RecencyEmbedding(r int) (e [RecDims]float32) {
	for k, f := range recFreq {
		a := float64(r) * f
		e[k] = float32(math.Sin(a))
		e[k+RecDims/2] = float32(math.Cos(a))
	}
	return e
}

// buildInputs writes x_i = [e_rec(8) ++ z(17)] for every token of a head.
// positions are the tokens' absolute positions (chronological; the newest last).
func buildInputs(omega []float32, positions []int32, norm *Norm, out [][FeatDims]float32) {
	var sd [Bins]float32
	for f := range Bins {
		sd[f] = max(sqrt32(norm.Var[f]), normFloor)
	}
	newest := int(positions[len(positions)-1])
	for i := range out {
		e := RecencyEmbedding(newest - int(positions[i]))
		copy(out[i][:RecDims], e[:])
		om := omega[i*Bins : (i+1)*Bins]
		for f := range Bins {
			out[i][RecDims+f] = (om[f] - norm.Mean[f]) / sd[f]
		}
	}
}
