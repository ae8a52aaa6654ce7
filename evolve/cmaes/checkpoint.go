package cmaes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Checkpoint format (little endian), version 1:
//
//	magic "NAMMCMAE", version uint32
//	config: N, Lambda, Mu uint64; Mode uint8 (0 full, 1 sep); Sigma0 float64;
//	        Seed int64; EigenInterval uint64
//	state:  generation uint64; sigma float64; mean, pSigma, pC [N]float64
//	        C: full mode the lower triangle row by row ([N(N+1)/2]float64),
//	           sep mode the diagonal ([N]float64)
//	        sampler: length uint32, then rand.PCG's MarshalBinary bytes
//	        pending uint8; if 1: the pending steps [Lambda][N]float64
//	        factors uint8; if 1 (only with EigenInterval > 1, full mode):
//	           eigen generation uint64, D [N]float64, B [N][N]float64
//	trailer: CRC-32 (Castagnoli) of everything before it, uint32
//
// Without stored factors the decomposition is recomputed from C after
// loading, which reproduces the original bit for bit (same input, same
// deterministic LAPACK code).
const (
	checkpointMagic   = "NAMMCMAE"
	checkpointVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by UnmarshalBinary errors for damaged checkpoints.
var ErrCorrupt = errors.New("cmaes: corrupt checkpoint")

// ErrIncompatible is wrapped by errors for a checkpoint or Config whose
// structure differs from the receiver's.
var ErrIncompatible = errors.New("cmaes: incompatible configuration")

// MarshalBinary encodes the full state (sampler, pending population and
// configuration included) so that UnmarshalBinary continues the run bit for
// bit. Full mode with N = 4172 takes about 70 MB.
func (c *CMAES) MarshalBinary() ([]byte, error) {
	if c.cfg.N == 0 {
		return nil, errors.New("cmaes: MarshalBinary of an uninitialised CMAES")
	}
	n, lambda := c.cfg.N, c.cfg.Lambda
	rngState, err := c.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("cmaes: marshal sampler: %w", err)
	}
	storeFactors := c.cfg.Mode == ModeFull && c.cfg.EigenInterval > 1 && c.eigGen >= 0
	size := 8 + 4 + 7*8 + 1 + 2*8 + 3*n*8 + len(covPacked(c))*8 + 4 + len(rngState) + 2 + 4
	if c.pendingY != nil {
		size += lambda * n * 8
	}
	if storeFactors {
		size += 8 + n*8 + n*n*8
	}
	w := &writer{buf: make([]byte, 0, size)}
	w.bytes([]byte(checkpointMagic))
	w.u32(checkpointVersion)
	w.u64(uint64(n))
	w.u64(uint64(lambda))
	w.u64(uint64(c.cfg.Mu))
	w.u8(modeCode(c.cfg.Mode))
	w.f64(c.cfg.Sigma0)
	w.u64(uint64(c.cfg.Seed))
	w.u64(uint64(c.cfg.EigenInterval))
	w.u64(uint64(c.gen))
	w.f64(c.sigma)
	w.f64s(c.mean)
	w.f64s(c.pSigma)
	w.f64s(c.pC)
	w.f64s(covPacked(c))
	w.u32(uint32(len(rngState)))
	w.bytes(rngState)
	if c.pendingY != nil {
		w.u8(1)
		for _, y := range c.pendingY {
			w.f64s(y)
		}
	} else {
		w.u8(0)
	}
	if storeFactors {
		w.u8(1)
		w.u64(uint64(c.eigGen))
		w.f64s(c.eigD)
		for i := 0; i < n; i++ {
			w.f64s(c.eigB.RawRowView(i))
		}
	} else {
		w.u8(0)
	}
	w.u32(crc32.Checksum(w.buf, crcTable))
	return w.buf, nil
}

// covPacked is C as stored: the lower triangle (full) or the diagonal (sep).
func covPacked(c *CMAES) []float64 {
	n := c.cfg.N
	if c.cfg.Mode == ModeSep {
		return c.cov
	}
	out := make([]float64, 0, n*(n+1)/2)
	for i := 0; i < n; i++ {
		out = append(out, c.cov[i*n:i*n+i+1]...)
	}
	return out
}

func modeCode(m Mode) uint8 {
	if m == ModeSep {
		return 1
	}
	return 0
}

// UnmarshalBinary restores a state written by MarshalBinary. A receiver made
// by New must have the checkpoint's structure (see CheckCompatible); a zero
// CMAES takes the checkpoint's configuration. On error the receiver is left
// unchanged.
func (c *CMAES) UnmarshalBinary(data []byte) error {
	const minSize = 8 + 4 + 7*8 + 1 + 4
	if len(data) < minSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header and checksum", ErrCorrupt, len(data), minSize)
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, crcTable), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return fmt.Errorf("%w: checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	r := &reader{buf: body}
	if magic := r.bytes(len(checkpointMagic)); !bytes.Equal(magic, []byte(checkpointMagic)) {
		return fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, magic, checkpointMagic)
	}
	if v := r.u32(); v != checkpointVersion {
		return fmt.Errorf("cmaes: checkpoint format version %d, this code reads version %d", v, checkpointVersion)
	}
	var cfg Config
	n64, lambda64, mu64 := r.u64(), r.u64(), r.u64()
	const maxDim = 1 << 24
	if n64 == 0 || n64 > maxDim || lambda64 > maxDim || mu64 > maxDim {
		return fmt.Errorf("%w: N = %d, Lambda = %d, Mu = %d out of range", ErrCorrupt, n64, lambda64, mu64)
	}
	cfg.N, cfg.Lambda, cfg.Mu = int(n64), int(lambda64), int(mu64)
	switch m := r.u8(); m {
	case 0:
		cfg.Mode = ModeFull
	case 1:
		cfg.Mode = ModeSep
	default:
		return fmt.Errorf("%w: mode code %d", ErrCorrupt, m)
	}
	cfg.Sigma0 = r.f64()
	if cfg.Lambda == 0 || cfg.Mu == 0 || cfg.Sigma0 == 0 {
		// Zero would mean "default" to withDefaults; a checkpoint is explicit.
		return fmt.Errorf("%w: Lambda = %d, Mu = %d, Sigma0 = %v", ErrCorrupt, cfg.Lambda, cfg.Mu, cfg.Sigma0)
	}
	cfg.Seed = int64(r.u64())
	interval := r.u64()
	if interval == 0 || interval > maxDim {
		return fmt.Errorf("%w: EigenInterval = %d", ErrCorrupt, interval)
	}
	cfg.EigenInterval = int(interval)
	cfg, err := cfg.withDefaults()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if c.cfg.N != 0 {
		if err := c.checkSame(cfg, "checkpoint"); err != nil {
			return err
		}
	}

	n := cfg.N
	// Check the remaining length before allocating anything large.
	covLen := n
	if cfg.Mode == ModeFull {
		covLen = n * (n + 1) / 2
	}
	if need := 8 + 8 + (3*n+covLen)*8 + 4; r.remaining() < need {
		return fmt.Errorf("%w: %d bytes left for a state needing at least %d", ErrCorrupt, r.remaining(), need)
	}
	next := &CMAES{
		cfg:    cfg,
		st:     newStrategy(n, cfg.Lambda, cfg.Mu, cfg.Mode),
		eigGen: -1,
	}
	gen := r.u64()
	if gen > math.MaxInt32 {
		return fmt.Errorf("%w: generation %d", ErrCorrupt, gen)
	}
	next.gen = int(gen)
	next.sigma = r.f64()
	next.mean = r.f64s(n)
	next.pSigma = r.f64s(n)
	next.pC = r.f64s(n)
	packed := r.f64s(covLen)
	if cfg.Mode == ModeSep {
		next.cov = packed
	} else {
		next.cov = make([]float64, n*n)
		p := 0
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				next.cov[i*n+j] = packed[p]
				next.cov[j*n+i] = packed[p]
				p++
			}
		}
	}
	rngLen := int(r.u32())
	if rngLen > r.remaining() {
		return fmt.Errorf("%w: sampler state of %d bytes, %d left", ErrCorrupt, rngLen, r.remaining())
	}
	next.pcg = new(rand.PCG)
	if err := next.pcg.UnmarshalBinary(r.bytes(rngLen)); err != nil {
		return fmt.Errorf("%w: sampler state: %w", ErrCorrupt, err)
	}
	next.rand = rand.New(next.pcg)
	switch p := r.u8(); p {
	case 0:
	case 1:
		if r.remaining() < cfg.Lambda*n*8 {
			return fmt.Errorf("%w: pending population truncated", ErrCorrupt)
		}
		next.pendingY = make([][]float64, cfg.Lambda)
		for k := range next.pendingY {
			next.pendingY[k] = r.f64s(n)
		}
	default:
		return fmt.Errorf("%w: pending flag %d", ErrCorrupt, p)
	}
	switch f := r.u8(); f {
	case 0:
	case 1:
		if cfg.Mode != ModeFull || cfg.EigenInterval <= 1 {
			return fmt.Errorf("%w: stored eigendecomposition without lazy full mode", ErrCorrupt)
		}
		if r.remaining() < 8+n*8+n*n*8 {
			return fmt.Errorf("%w: stored eigendecomposition truncated", ErrCorrupt)
		}
		eigGen := r.u64()
		if eigGen > gen {
			return fmt.Errorf("%w: eigendecomposition of generation %d after generation %d", ErrCorrupt, eigGen, gen)
		}
		next.eigGen = int(eigGen)
		next.eigD = r.f64s(n)
		next.eigB = mat.NewDense(n, n, r.f64s(n*n))
	default:
		return fmt.Errorf("%w: factors flag %d", ErrCorrupt, f)
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	}
	if r.remaining() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, r.remaining())
	}
	*c = *next
	return nil
}

// CheckCompatible reports whether a state made with cfg could be loaded into
// c: N, Lambda, Mu, Mode and EigenInterval must match (after defaults).
// Sigma0, Seed and Mean0 only shape generation 0 and are not compared.
func (c *CMAES) CheckCompatible(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	return c.checkSame(cfg, "config")
}

func (c *CMAES) checkSame(other Config, what string) error {
	mine := c.cfg
	switch {
	case mine.N != other.N:
		return fmt.Errorf("%w: %s has N = %d, this CMAES has N = %d", ErrIncompatible, what, other.N, mine.N)
	case mine.Lambda != other.Lambda:
		return fmt.Errorf("%w: %s has Lambda = %d, this CMAES has Lambda = %d", ErrIncompatible, what, other.Lambda, mine.Lambda)
	case mine.Mu != other.Mu:
		return fmt.Errorf("%w: %s has Mu = %d, this CMAES has Mu = %d", ErrIncompatible, what, other.Mu, mine.Mu)
	case mine.Mode != other.Mode:
		return fmt.Errorf("%w: %s has Mode = %q, this CMAES has Mode = %q", ErrIncompatible, what, other.Mode, mine.Mode)
	case mine.EigenInterval != other.EigenInterval:
		return fmt.Errorf("%w: %s has EigenInterval = %d, this CMAES has EigenInterval = %d", ErrIncompatible, what, other.EigenInterval, mine.EigenInterval)
	}
	return nil
}

type writer struct{ buf []byte }

func (w *writer) bytes(b []byte) { w.buf = append(w.buf, b...) }
func (w *writer) u8(v uint8)     { w.buf = append(w.buf, v) }
func (w *writer) u32(v uint32)   { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }
func (w *writer) u64(v uint64)   { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }
func (w *writer) f64(v float64)  { w.u64(math.Float64bits(v)) }
func (w *writer) f64s(vs []float64) {
	for _, v := range vs {
		w.f64(v)
	}
}

// reader decodes little-endian values; after the first short read err is set
// and every later read returns zeros.
type reader struct {
	buf []byte
	err error
}

func (r *reader) remaining() int { return len(r.buf) }

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n > len(r.buf) {
		if r.err == nil {
			r.err = fmt.Errorf("truncated: need %d bytes, %d left", n, len(r.buf))
		}
		return make([]byte, min(n, 8)) // zeros; callers read at most 8
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *reader) u8() uint8   { return r.bytes(1)[0] }
func (r *reader) u32() uint32 { return binary.LittleEndian.Uint32(r.bytes(4)) }
func (r *reader) u64() uint64 { return binary.LittleEndian.Uint64(r.bytes(8)) }
func (r *reader) f64() float64 {
	return math.Float64frombits(r.u64())
}

func (r *reader) f64s(n int) []float64 {
	if r.err != nil || n*8 > len(r.buf) {
		r.bytes(n * 8) // records the error
		return make([]float64, n)
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(r.buf[i*8:]))
	}
	r.buf = r.buf[n*8:]
	return out
}
