package safetensors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// refF16 decodes binary16 into float64 straight from the bit layout (independent of F16ToFloat32).
func refF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Pow(2, -24)
	case 31:
		if mant == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
}

// refBF16 decodes bfloat16 into float64 from its layout: 1 sign, 8 exponent, 7 mantissa bits.
func refBF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>7) & 0xff
	mant := float64(h & 0x7f)
	switch exp {
	case 0:
		return sign * mant * math.Pow(2, -133) // 2^(1-127) * mant/128
	case 255:
		if mant == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + mant/128) * math.Pow(2, float64(exp-127))
}

func TestHandValues(t *testing.T) {
	cases := []struct {
		name string
		got  float32
		want float64
	}{
		{"bf16 0x3F80", BF16ToFloat32(0x3F80), 1},
		{"bf16 0xC000", BF16ToFloat32(0xC000), -2},
		{"bf16 0x3FC0", BF16ToFloat32(0x3FC0), 1.5},
		{"f16 0x3C00", F16ToFloat32(0x3C00), 1},
		{"f16 0x0001", F16ToFloat32(0x0001), math.Ldexp(1, -24)},
		{"f16 0x03FF", F16ToFloat32(0x03FF), 1023 * math.Ldexp(1, -24)},
		{"f16 0x0400", F16ToFloat32(0x0400), math.Ldexp(1, -14)},
		{"f16 0x7BFF", F16ToFloat32(0x7BFF), 65504},
		{"f16 0xC000", F16ToFloat32(0xC000), -2},
		{"f16 0x3555", F16ToFloat32(0x3555), 0.333251953125},
		{"f16 0x7C00", F16ToFloat32(0x7C00), math.Inf(1)},
		{"f16 0xFC00", F16ToFloat32(0xFC00), math.Inf(-1)},
	}
	for _, c := range cases {
		if float64(c.got) != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if v := F16ToFloat32(0x8000); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("f16 0x8000 = %v, want -0", v)
	}
	if v := F16ToFloat32(0x7E00); !math.IsNaN(float64(v)) {
		t.Errorf("f16 0x7E00 = %v, want NaN", v)
	}
	encs := []struct {
		name      string
		got, want uint16
	}{
		{"f16(1)", Float32ToF16(1), 0x3C00},
		{"f16(65504)", Float32ToF16(65504), 0x7BFF},
		{"f16(65519)", Float32ToF16(65519), 0x7BFF},
		{"f16(65520)", Float32ToF16(65520), 0x7C00},
		{"f16(2^-24)", Float32ToF16(float32(math.Ldexp(1, -24))), 0x0001},
		{"f16(2^-25)", Float32ToF16(float32(math.Ldexp(1, -25))), 0x0000},
		{"f16(1.5*2^-25)", Float32ToF16(float32(math.Ldexp(1.5, -25))), 0x0001},
		{"f16(1+2^-11)", Float32ToF16(1 + float32(math.Ldexp(1, -11))), 0x3C00}, // tie to even
		{"f16(1+3*2^-11)", Float32ToF16(1 + float32(math.Ldexp(3, -11))), 0x3C02},
		{"bf16(1)", Float32ToBF16(1), 0x3F80},
		{"bf16(1+2^-8)", Float32ToBF16(1 + float32(math.Ldexp(1, -8))), 0x3F80}, // tie to even
		{"bf16(1+3*2^-8)", Float32ToBF16(1 + float32(math.Ldexp(3, -8))), 0x3F82},
		{"bf16(NaN)", Float32ToBF16(float32(math.NaN())), 0x7FC0},
		{"bf16(maxf32)", Float32ToBF16(math.MaxFloat32), 0x7F80},
	}
	for _, c := range encs {
		if c.got != c.want {
			t.Errorf("%s = %#04x, want %#04x", c.name, c.got, c.want)
		}
	}
}

func TestDecodeAll16BitPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		for _, c := range []struct {
			kind string
			got  float32
			want float64
		}{{"f16", F16ToFloat32(h), refF16(h)}, {"bf16", BF16ToFloat32(h), refBF16(h)}} {
			g := float64(c.got)
			if math.IsNaN(c.want) {
				if !math.IsNaN(g) {
					t.Fatalf("%s %#04x = %v, want NaN", c.kind, h, g)
				}
				continue
			}
			if g != c.want || math.Signbit(g) != math.Signbit(c.want) {
				t.Fatalf("%s %#04x = %v, want %v", c.kind, h, g, c.want)
			}
		}
		// f16 NaN payloads survive into the f32 mantissa.
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if got := math.Float32bits(F16ToFloat32(h)) >> 13 & 0x3ff; got != uint32(h&0x3ff) {
				t.Fatalf("f16 NaN %#04x lost its payload", h)
			}
		}
	}
}

// nearestRef rounds |x| to the nearest code of a 16-bit format with ties to even,
// searching the table of its non-negative finite values (in code order); a
// value past the largest finite one rounds against the next power of two
// ("inf" below), as IEEE 754 overflow does.
func nearestRef(x float64, values []float64, inf float64) int {
	c := sort.SearchFloat64s(values, x) // first index with values[c] >= x
	if c < len(values) && values[c] == x {
		return c
	}
	lo := c - 1
	hiVal := inf
	if c < len(values) {
		hiVal = values[c]
	}
	dl, dh := x-values[lo], hiVal-x
	if dl < dh || (dl == dh && lo%2 == 0) {
		return lo
	}
	return c
}

func TestEncodeMatchesNearestEven(t *testing.T) {
	var f16s, bf16s []float64
	for c := 0; c < 0x7c00; c++ {
		f16s = append(f16s, refF16(uint16(c)))
	}
	for c := 0; c < 0x7f80; c++ {
		bf16s = append(bf16s, refBF16(uint16(c)))
	}
	check := func(x float32) {
		if math.IsNaN(float64(x)) {
			return
		}
		ax := math.Abs(float64(x))
		sign := uint16(0)
		if math.Signbit(float64(x)) {
			sign = 0x8000
		}
		if !math.IsInf(ax, 0) {
			if want := sign | uint16(nearestRef(ax, f16s, 65536)); Float32ToF16(x) != want {
				t.Fatalf("Float32ToF16(%g [%#08x]) = %#04x, want %#04x", x, math.Float32bits(x), Float32ToF16(x), want)
			}
			if want := sign | uint16(nearestRef(ax, bf16s, math.Ldexp(1, 128))); Float32ToBF16(x) != want {
				t.Fatalf("Float32ToBF16(%g [%#08x]) = %#04x, want %#04x", x, math.Float32bits(x), Float32ToBF16(x), want)
			}
		}
	}
	// Every representable value, every midpoint (ties) and the f32 neighbours of each midpoint.
	for _, tb := range []struct {
		table []float64
		inf   float64
	}{{f16s, 65536}, {bf16s, math.Ldexp(1, 128)}} {
		table := tb.table
		for i, v := range table {
			next := tb.inf
			if i+1 < len(table) {
				next = table[i+1]
			}
			mid := float32((v + next) / 2)
			for _, x := range []float32{float32(v), mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, math.MaxFloat32)} {
				check(x)
				check(-x)
			}
		}
	}
	check(math.MaxFloat32)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300000 {
		check(math.Float32frombits(rng.Uint32()))
	}
	if got := Float32ToF16(float32(math.Inf(-1))); got != 0xFC00 {
		t.Errorf("Float32ToF16(-Inf) = %#04x", got)
	}
	if got := Float32ToF16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("Float32ToF16(NaN) = %#04x, not a NaN", got)
	}
}
