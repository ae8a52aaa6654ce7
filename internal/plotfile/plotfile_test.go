package plotfile

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// TestRenderLeavesBlankBorder: a plot whose title and legend reach its top
// and right edges renders with nothing drawn in a 5-pixel border, as PNG
// and as SVG.
func TestRenderLeavesBlankBorder(t *testing.T) {
	p := plot.New()
	p.Title.Text = "Score against cache size (mean over tasks)"
	p.Legend.Top = true
	sc, err := plotter.NewScatter(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		t.Fatal(err)
	}
	p.Add(sc)
	p.Legend.Add("a long legend entry", sc)
	data, err := Render(p, 4*vg.Inch, 3*vg.Inch, "png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	bg := img.At(b.Min.X, b.Min.Y)
	drawn := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			inner := x-b.Min.X >= 5 && b.Max.X-x > 5 && y-b.Min.Y >= 5 && b.Max.Y-y > 5
			if img.At(x, y) != bg {
				if !inner {
					t.Fatalf("pixel (%d, %d) in the border is drawn", x, y)
				}
				drawn++
			}
		}
	}
	if drawn < 100 {
		t.Fatalf("only %d pixels drawn: an empty plot?", drawn)
	}
	svg, err := Render(p, 4*vg.Inch, 3*vg.Inch, "svg")
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{ XMLName xml.Name })); err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Fatalf("SVG: %v", err)
	}
	if _, err := Render(p, vg.Inch, vg.Inch, "gif"); err == nil {
		t.Fatal("gif rendered")
	}
}
