package inspect

import (
	"bytes"
	"encoding/json"
	"image/color"
	"image/png"
	"strings"
	"testing"
)

// colours counts a PNG's pixels of each colour.
func colours(t *testing.T, data []byte) map[color.RGBA]int {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			out[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}]++
		}
	}
	return out
}

// TestHeatmapColours: a token evicted at the first step is drawn in the
// early colour, one at the last step in the late colour, kept ones in the
// kept colour; a trace without evictions has no eviction colour.
func TestHeatmapColours(t *testing.T) {
	tr := Trace{Header: Header{Memory: "hand", Layers: 2, KVHeads: 1}, Steps: []Step{
		{Step: 0, Start: 0, Tokens: 8, KV: []int{7, 8}, Evicted: []Positions{{Layer: 0, Positions: []int32{1}}}},
		{Step: 1, Start: 8, Tokens: 1, KV: []int{8, 8}, Evicted: []Positions{{Layer: 0, Positions: []int32{4}}, {Layer: 1, Positions: []int32{4}}}},
	}}
	data, err := Heatmap(&tr, "png")
	if err != nil {
		t.Fatal(err)
	}
	c := colours(t, data)
	if c[KeptColor] == 0 || c[EarlyColor] == 0 || c[LateColor] == 0 {
		t.Fatalf("kept %d, early %d, late %d pixels", c[KeptColor], c[EarlyColor], c[LateColor])
	}
	// Position 4 is evicted in both layers, position 1 in one: about twice
	// the late colour's area.
	if r := float64(c[LateColor]) / float64(c[EarlyColor]); r < 1.5 || r > 2.5 {
		t.Fatalf("late/early area %.2f, want about 2", r)
	}
	for i := range tr.Steps {
		tr.Steps[i].Evicted = nil
	}
	c = colours(t, mustHeatmap(t, &tr))
	if c[EarlyColor] != 0 || c[LateColor] != 0 || c[KeptColor] == 0 {
		t.Fatalf("no evictions: kept %d, early %d, late %d pixels", c[KeptColor], c[EarlyColor], c[LateColor])
	}
	if _, err := Heatmap(&Trace{}, "png"); err == nil {
		t.Fatal("an empty trace was drawn")
	}
}

func mustHeatmap(t *testing.T, tr *Trace) []byte {
	t.Helper()
	data, err := Heatmap(tr, "png")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCheckRefusesBadTraces: a trace file with a layer, head, position or
// step out of range is refused naming the field, before anything is drawn
// (it used to panic on an index out of range, or allocate without bound).
func TestCheckRefusesBadTraces(t *testing.T) {
	two := 2
	good := func() Trace {
		return Trace{Header: Header{Memory: "hand", Layers: 2, KVHeads: 2}, Steps: []Step{
			{Step: 0, Start: 0, Tokens: 8, Evicted: []Positions{{Layer: 1, Positions: []int32{3}}}},
		}}
	}
	if tr := good(); tr.Check() != nil {
		t.Fatalf("a good trace refused: %v", tr.Check())
	}
	cases := []struct {
		name  string
		edit  func(*Trace)
		field string
	}{
		{"no layers", func(tr *Trace) { tr.Layers = 0 }, "layers 0"},
		{"no heads", func(tr *Trace) { tr.KVHeads = -1 }, "kv_heads"},
		{"layer", func(tr *Trace) { tr.Steps[0].Evicted[0].Layer = 2 }, "steps[0].evicted[0]: layer 2"},
		{"negative layer", func(tr *Trace) { tr.Steps[0].Evicted[0].Layer = -1 }, "layer -1"},
		{"head", func(tr *Trace) { tr.Steps[0].Evicted[0].Head = &two }, "head 2"},
		{"position", func(tr *Trace) { tr.Steps[0].Evicted[0].Positions[0] = -5 }, "position -5"},
		{"start", func(tr *Trace) { tr.Steps[0].Start = -1 }, "steps[0]: start -1"},
		{"huge step", func(tr *Trace) { tr.Steps[0].Tokens = 1 << 40 }, "steps[0]"},
		{"step index", func(tr *Trace) { tr.Steps[0].Step = -3 }, "steps[0]: step -3"},
	}
	for _, c := range cases {
		tr := good()
		c.edit(&tr)
		err := tr.Check()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.field)
		}
		if _, err := Heatmap(&tr, "png"); err == nil {
			t.Errorf("%s: drawn", c.name)
		}
	}
}

// FuzzTraceFile: any JSON a trace file may hold is refused by Check or
// gives an eviction grid of the trace's layers, every value -1 or the index
// of a step, never a panic.
func FuzzTraceFile(f *testing.F) {
	f.Add([]byte(`{"format":"namm-trace/1","layers":2,"kv_heads":2,"steps":[{"step":0,"phase":"prefill","start":0,"tokens":8,` +
		`"evicted":[{"layer":1,"positions":[3,4]},{"layer":0,"head":1,"positions":[2]}]},{"step":1,"start":8,"tokens":1}]}`))
	f.Add([]byte(`{"layers":1,"kv_heads":1,"steps":[{"start":0,"tokens":3,"evicted":[{"layer":0,"positions":[9]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr Trace
		if json.Unmarshal(data, &tr) != nil || tr.Check() != nil {
			return
		}
		n := 0
		if k := len(tr.Steps); k > 0 {
			n = tr.Steps[k-1].Start + tr.Steps[k-1].Tokens
		}
		if n*tr.Layers > 1<<16 {
			return // Check's bound holds; the grid itself is the slow part
		}
		at := tr.EvictedAt(n)
		if len(at) != tr.Layers {
			t.Fatalf("%d layers in the grid, want %d", len(at), tr.Layers)
		}
		for _, row := range at {
			for _, s := range row {
				if s < -1 {
					t.Fatalf("step %d in the grid", s)
				}
			}
		}
	})
}
