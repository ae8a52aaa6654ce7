package cmaes

import (
	"math"
	"os"
	"testing"
	"time"
)

// The reference size: n = 4172 (BAM parameters), lambda = 32.
const namm4172 = 4172

// skipUnlessLarge guards tests that need a 4172 x 4172 eigendecomposition
// (minutes with gonum on 2 cores): run them with NAMM_CMAES_LARGE=1.
func skipUnlessLarge(t *testing.T) {
	if os.Getenv("NAMM_CMAES_LARGE") == "" {
		t.Skip("set NAMM_CMAES_LARGE=1 to run the n = 4172 full-mode test")
	}
}

// TestSep4172 runs the separable mode at the reference size: first-Ask
// statistics, a few generations, and a bit-identical resume.
func TestSep4172(t *testing.T) {
	cfg := Config{N: namm4172, Mode: ModeSep, Seed: 1337}
	c := mustNew(t, cfg)
	xs := c.Ask()
	// Sep mode shifts only the diagonal: every coordinate has std
	// 0.065 sqrt(1 + 1e-6) exactly in distribution; 133,504 draws.
	var sq float64
	for _, x := range xs {
		for _, v := range x {
			sq += v * v
		}
	}
	std := math.Sqrt(sq / float64(len(xs)*namm4172))
	if want := 0.065 * math.Sqrt(1+1e-6); math.Abs(std/want-1) > 0.012 {
		t.Errorf("first-Ask std %v, want %v", std, want)
	}
	if d := c.eigD[0]; d != math.Sqrt(1+1e-6) {
		t.Errorf("generation-0 D = %v, want sqrt(1+1e-6)", d)
	}
	objective := func(x []float64) float64 { return -sphere(x) + x[0] }
	run := func(c *CMAES, gens int) [][][]float64 {
		var out [][][]float64
		for g := 0; g < gens; g++ {
			xs := c.Ask()
			fit := make([]float64, len(xs))
			for k, x := range xs {
				fit[k] = objective(x)
			}
			if err := c.Tell(xs, fit); err != nil {
				t.Fatal(err)
			}
			out = append(out, xs)
		}
		return out
	}
	c = mustNew(t, cfg)
	want := run(c, 6)
	c2 := mustNew(t, cfg)
	run(c2, 3)
	data, err := c2.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c3 := mustNew(t, cfg)
	if err := c3.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	got := run(c3, 3)
	for g := range got {
		if k, j, ok := sameBits(got[g], want[3+g]); !ok {
			t.Fatalf("generation %d candidate %d coord %d differs after resume", 3+g, k, j)
		}
	}
}

// TestFull4172 checks the reference configuration end to end: the
// generation-0 spectrum of C' = I + 1e-6 ones (one eigenvalue 1 + 4172e-6 =
// 1.004172, the rest 1), the empirical std of the first population, one
// Tell, and the checkpoint size and round trip.
func TestFull4172(t *testing.T) {
	skipUnlessLarge(t)
	c := mustNew(t, Config{N: namm4172, Seed: 1337})
	start := time.Now()
	xs := c.Ask()
	t.Logf("first Ask (eigendecomposition + sampling): %v", time.Since(start))
	top := 0.0
	for _, d := range c.eigD {
		top = math.Max(top, d*d)
	}
	if math.Abs(top-(1+1e-6*namm4172)) > 1e-10 {
		t.Errorf("top eigenvalue %.15g, want %.15g", top, 1+1e-6*namm4172)
	}
	for i, d := range c.eigD {
		if d*d != top && math.Abs(d*d-1) > 1e-10 {
			t.Fatalf("eigenvalue %d = %.15g, want 1", i, d*d)
		}
	}
	var sq float64
	for _, x := range xs {
		for _, v := range x {
			sq += v * v
		}
	}
	std := math.Sqrt(sq / float64(len(xs)*namm4172))
	if want := 0.065 * math.Sqrt(1+1e-6); math.Abs(std/want-1) > 0.012 {
		t.Errorf("first-Ask std %v, want %v", std, want)
	}
	fit := make([]float64, len(xs))
	for k, x := range xs {
		fit[k] = -sphere(x)
	}
	start = time.Now()
	if err := c.Tell(xs, fit); err != nil {
		t.Fatal(err)
	}
	t.Logf("Tell: %v", time.Since(start))
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint: %d bytes", len(data))
	if want := (namm4172*(namm4172+1)/2 + 3*namm4172) * 8; len(data) > want+200 {
		t.Errorf("checkpoint %d bytes, want about %d", len(data), want)
	}
	fresh := mustNew(t, Config{N: namm4172})
	if err := fresh.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	for i := range c.cov {
		if c.cov[i] != fresh.cov[i] {
			t.Fatalf("C entry %d differs after the round trip", i)
		}
	}
}

// BenchmarkAskTell4172 is one reference generation (n = 4172, lambda = 32,
// full mode, eigendecomposition every generation). Expect minutes per op:
// run with -benchtime=1x.
func BenchmarkAskTell4172(b *testing.B) {
	benchAskTell(b, Config{N: namm4172, Seed: 1})
}

// BenchmarkAskTell4172Lazy is the full-mode generation without the
// eigendecomposition (EigenInterval far above b.N): sampling, whitening and
// the O(lambda n^2) covariance update.
func BenchmarkAskTell4172Lazy(b *testing.B) {
	benchAskTell(b, Config{N: namm4172, Seed: 1, EigenInterval: 1 << 20})
}

// BenchmarkAskTell4172Sep is one sep-mode generation at the reference size.
func BenchmarkAskTell4172Sep(b *testing.B) {
	benchAskTell(b, Config{N: namm4172, Seed: 1, Mode: ModeSep})
}

// BenchmarkMarshal4172 encodes the full-mode state (about 70 MB).
func BenchmarkMarshal4172(b *testing.B) {
	c := mustNew(b, Config{N: namm4172, Seed: 1, EigenInterval: 1 << 20})
	for b.Loop() {
		data, err := c.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
	}
}

func benchAskTell(b *testing.B, cfg Config) {
	c := mustNew(b, cfg)
	if cfg.EigenInterval > 1 {
		c.ensureFactors() // the one decomposition, outside the timing
	}
	fit := make([]float64, cfg.Lambda+32)
	b.ResetTimer()
	for b.Loop() {
		xs := c.Ask()
		for k, x := range xs {
			fit[k] = -sphere(x)
		}
		if err := c.Tell(xs, fit[:len(xs)]); err != nil {
			b.Fatal(err)
		}
	}
}
