package cmaes

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
	"testing"
)

// step runs one generation on a deterministic objective and returns the
// candidates asked.
func step(t testing.TB, c *CMAES) [][]float64 {
	t.Helper()
	xs := c.Ask()
	fit := make([]float64, len(xs))
	for k, x := range xs {
		fit[k] = -rosenbrock(x)
	}
	if err := c.Tell(xs, fit); err != nil {
		t.Fatal(err)
	}
	return xs
}

func sameBits(a, b [][]float64) (int, int, bool) {
	for k := range a {
		for j := range a[k] {
			if math.Float64bits(a[k][j]) != math.Float64bits(b[k][j]) {
				return k, j, false
			}
		}
	}
	return 0, 0, true
}

// TestResumeIsBitIdentical: 10 generations straight vs 5, marshal, unmarshal
// into a fresh object, 5 more; every candidate must match bit for bit.
func TestResumeIsBitIdentical(t *testing.T) {
	for _, cfg := range []Config{
		{N: 12, Lambda: 10, Sigma0: 0.4, Mode: ModeFull, Seed: 42, Mean0: filled(12, 0.3)},
		{N: 12, Lambda: 10, Sigma0: 0.4, Mode: ModeSep, Seed: 42},
		{N: 12, Lambda: 10, Sigma0: 0.4, Mode: ModeFull, Seed: 9, EigenInterval: 3},
	} {
		t.Run(string(cfg.Mode), func(t *testing.T) {
			straight := mustNew(t, cfg)
			var want [][][]float64
			for g := 0; g < 10; g++ {
				want = append(want, step(t, straight))
			}

			first := mustNew(t, cfg)
			for g := 0; g < 5; g++ {
				step(t, first)
			}
			data, err := first.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			cfg2 := cfg
			cfg2.Seed, cfg2.Sigma0, cfg2.Mean0 = 999, 2, nil // initial-only fields may differ
			resumed := mustNew(t, cfg2)
			if err := resumed.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			if resumed.Generation() != 5 {
				t.Fatalf("generation %d after resume, want 5", resumed.Generation())
			}
			for g := 5; g < 10; g++ {
				got := step(t, resumed)
				if k, j, ok := sameBits(got, want[g]); !ok {
					t.Fatalf("generation %d candidate %d coord %d: %v after resume, %v straight", g, k, j, got[k][j], want[g][k][j])
				}
			}
			if straight.Sigma() != resumed.Sigma() || straight.Generation() != resumed.Generation() {
				t.Fatalf("final sigma/generation differ")
			}
			if _, _, ok := sameBits([][]float64{straight.Mean()}, [][]float64{resumed.Mean()}); !ok {
				t.Fatal("final means differ")
			}
		})
	}
}

// TestResumePendingAsk: a checkpoint taken between Ask and Tell accepts the
// asked candidates after loading (zero-value receiver adopts the config).
func TestResumePendingAsk(t *testing.T) {
	for _, mode := range []Mode{ModeFull, ModeSep} {
		cfg := Config{N: 6, Lambda: 8, Sigma0: 0.5, Mode: mode, Seed: 1}
		a := mustNew(t, cfg)
		step(t, a)
		xs := a.Ask()
		data, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var b CMAES
		if err := b.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		if b.Config().Mode != mode || b.Config().N != 6 {
			t.Fatalf("adopted config %+v", b.Config())
		}
		fit := make([]float64, len(xs))
		for k, x := range xs {
			fit[k] = -sphere(x)
		}
		if err := a.Tell(xs, fit); err != nil {
			t.Fatal(err)
		}
		if err := b.Tell(xs, fit); err != nil {
			t.Fatal(err)
		}
		if k, j, ok := sameBits(a.Ask(), b.Ask()); !ok {
			t.Fatalf("%s: next population differs at %d/%d", mode, k, j)
		}
	}
}

func TestCheckpointSizeIsCompact(t *testing.T) {
	const n = 50
	c := mustNew(t, Config{N: n, Lambda: 8})
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Lower triangle + 3 vectors + small header: well under the n*n matrix.
	if want := (n*(n+1)/2 + 3*n) * 8; len(data) < want || len(data) > want+200 {
		t.Errorf("checkpoint %d bytes, want about %d", len(data), want)
	}
}

func TestCheckpointErrors(t *testing.T) {
	cfg := Config{N: 5, Lambda: 6, Mode: ModeFull, Seed: 2}
	c := mustNew(t, cfg)
	step(t, c)
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}

	// A flipped bit anywhere is caught by the checksum.
	for _, pos := range []int{0, 20, len(data) / 2, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[pos] ^= 0x10
		if err := mustNew(t, cfg).UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("flip at %d: err %v, want ErrCorrupt", pos, err)
		}
	}
	if err := mustNew(t, cfg).UnmarshalBinary(data[:len(data)-9]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: err %v", err)
	}

	// A different configuration is named in the error.
	for _, tc := range []struct {
		cfg  Config
		name string
	}{
		{Config{N: 6, Lambda: 6}, "N = 5"},
		{Config{N: 5, Lambda: 8}, "Lambda = 6"},
		{Config{N: 5, Lambda: 6, Mu: 2}, "Mu = 3"},
		{Config{N: 5, Lambda: 6, Mode: ModeSep}, `Mode = "full"`},
		{Config{N: 5, Lambda: 6, EigenInterval: 4}, "EigenInterval = 1"},
	} {
		other := mustNew(t, tc.cfg)
		err := other.UnmarshalBinary(data)
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "checkpoint has "+tc.name) {
			t.Errorf("config %+v: err %v, want ErrIncompatible naming %q", tc.cfg, err, tc.name)
		}
		if other.Generation() != 0 {
			t.Errorf("failed load changed the receiver")
		}
		if err := c.CheckCompatible(tc.cfg); !errors.Is(err, ErrIncompatible) {
			t.Errorf("CheckCompatible(%+v) = %v", tc.cfg, err)
		}
	}
	if err := c.CheckCompatible(Config{N: 5, Lambda: 6, Sigma0: 3, Seed: 8}); err != nil {
		t.Errorf("CheckCompatible with other initial-only fields: %v", err)
	}

	// Another format version is refused by name, even with a valid checksum.
	bad := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(bad[8:], 7)
	binary.LittleEndian.PutUint32(bad[len(bad)-4:], crc32.Checksum(bad[:len(bad)-4], crcTable))
	if err := mustNew(t, cfg).UnmarshalBinary(bad); err == nil || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("version 7: err %v", err)
	}
}

// FuzzUnmarshalBinary: arbitrary bytes never panic; data that loads can be
// marshalled back to the same bytes.
func FuzzUnmarshalBinary(f *testing.F) {
	for _, cfg := range []Config{{N: 3, Lambda: 4}, {N: 2, Lambda: 4, Mode: ModeSep}, {N: 2, Lambda: 2, EigenInterval: 2}} {
		c, _ := New(cfg)
		data, _ := c.MarshalBinary()
		f.Add(data)
		c.Ask()
		data, _ = c.MarshalBinary()
		f.Add(data)
	}
	f.Add([]byte("NAMMCMAE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c CMAES
		if err := c.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(data) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}
