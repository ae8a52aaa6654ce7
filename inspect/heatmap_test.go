package inspect

import (
	"bytes"
	"image/color"
	"image/png"
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
