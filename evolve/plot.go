package evolve

import (
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/internal/plotfile"
)

// series is one named curve.
type series struct {
	name  string
	xys   plotter.XYs
	color color.Color
	dots  bool // points only (sparse series such as validations)
}

// writeCurves draws fitness.png, sigma.png and cache.png in dir from the log
// entries (with svg, also as .svg files), each written atomically.
func writeCurves(dir string, log []LogEntry, svg bool) error {
	var meanFit, bestFit, val, sigma, kv, refKV, valKV plotter.XYs
	for _, e := range log {
		x := float64(e.Iter)
		if e.Kind == "generation" {
			meanFit = append(meanFit, plotter.XY{X: x, Y: e.MeanFitness})
			bestFit = append(bestFit, plotter.XY{X: x, Y: e.BestFitness})
			sigma = append(sigma, plotter.XY{X: x, Y: e.Sigma})
			kv = append(kv, plotter.XY{X: x, Y: e.KVMean})
			refKV = append(refKV, plotter.XY{X: x, Y: e.RefKVMean})
		}
		if e.Val != nil {
			val = append(val, plotter.XY{X: x, Y: *e.Val})
		}
		if e.ValKVMean != nil {
			valKV = append(valKV, plotter.XY{X: x, Y: *e.ValKVMean})
		}
	}
	blue, red, green, gray := color.RGBA{B: 200, A: 255}, color.RGBA{R: 200, A: 255}, color.RGBA{G: 150, A: 255}, color.RGBA{R: 120, G: 120, B: 120, A: 255}
	charts := []struct {
		file, title, ylabel string
		s                   []series
	}{
		{"fitness.png", "Fitness (score / full-cache score)", "fitness", []series{
			{"population mean", meanFit, blue, false}, {"best member", bestFit, red, false}, {"validation of the mean", val, green, true}}},
		{"sigma.png", "CMA-ES step size", "sigma", []series{{"sigma", sigma, blue, false}}},
		{"cache.png", "KV cache size", "mean KV tokens per layer", []series{
			{"members", kv, blue, false}, {"full cache", refKV, gray, false}, {"validation of the mean", valKV, green, true}}},
	}
	for _, c := range charts {
		p, err := drawChart(c.title, c.ylabel, c.s)
		if err != nil {
			return fmt.Errorf("plot %s: %w", c.file, err)
		}
		for _, format := range plotfile.Formats(svg) {
			file := strings.TrimSuffix(c.file, ".png") + "." + format
			data, err := plotfile.Render(p, 8*vg.Inch, 4*vg.Inch, format)
			if err != nil {
				return fmt.Errorf("plot %s: %w", file, err)
			}
			if err := atomicfile.WriteFile(filepath.Join(dir, file), data); err != nil {
				return err
			}
		}
	}
	return nil
}

func drawChart(title, ylabel string, ss []series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "generation"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	for _, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		if s.dots || len(s.xys) == 1 {
			sc, err := plotter.NewScatter(s.xys)
			if err != nil {
				return nil, err
			}
			sc.Color = s.color
			p.Add(sc)
			p.Legend.Add(s.name, sc)
			continue
		}
		l, err := plotter.NewLine(s.xys)
		if err != nil {
			return nil, err
		}
		l.Color = s.color
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Legend.Top = true
	return p, nil
}
