package eval

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/internal/plotfile"
)

// Plot file names written by WritePlots.
const (
	ScorePlotFile = "score_vs_cache.png"
	LayerPlotFile = "cache_per_layer.png"
)

// WritePlots draws two PNGs into dir from the summary rows (the AllTasks rows
// when there are several tasks, else the single task's): the score against
// the mean cache size, one line per budgeted policy over its budgets and one
// point per policy without a budget (the full cache among them); and the
// tokens each layer kept, one line per variant. With svg, each is also
// written as an SVG file of the same name. It returns the paths written.
func WritePlots(dir string, rows []Row, svg bool) ([]string, error) {
	overall := overallRows(rows)
	if len(overall) == 0 {
		return nil, nil
	}
	formats := plotfile.Formats(svg)
	var paths []string
	for _, pl := range []struct {
		file string
		draw func([]Row) (*plot.Plot, error)
	}{{ScorePlotFile, scorePlot}, {LayerPlotFile, layerPlot}} {
		p, err := pl.draw(overall)
		if err != nil {
			return paths, fmt.Errorf("plot %s: %w", pl.file, err)
		}
		for _, format := range formats {
			file := strings.TrimSuffix(pl.file, ".png") + "." + format
			data, err := plotfile.Render(p, plotWidth, plotHeight, format)
			if err != nil {
				return paths, fmt.Errorf("plot %s: %w", file, err)
			}
			path := filepath.Join(dir, file)
			if err := atomicfile.WriteFile(path, data); err != nil {
				return paths, err
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}

// Plot size.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 5 * vg.Inch
)

// overallRows are the AllTasks rows, or the rows of the only task.
func overallRows(rows []Row) []Row {
	var all []Row
	for _, r := range rows {
		if r.Task == AllTasks {
			all = append(all, r)
		}
	}
	if len(all) > 0 {
		return all
	}
	return rows
}

func taskTitle(rows []Row) string {
	if rows[0].Task == AllTasks {
		return "mean over tasks"
	}
	return rows[0].Task
}

func scorePlot(rows []Row) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Score against cache size (" + taskTitle(rows) + ")"
	p.X.Label.Text = "mean KV tokens per layer"
	p.Y.Label.Text = "score (metric x100)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	byPolicy := map[string][]Row{}
	var order []string
	for _, r := range rows {
		if _, ok := byPolicy[r.Policy]; !ok {
			order = append(order, r.Policy)
		}
		byPolicy[r.Policy] = append(byPolicy[r.Policy], r)
	}
	maxX, maxY := 1.0, 1.0
	for i, pol := range order {
		rs := byPolicy[pol]
		sort.Slice(rs, func(a, b int) bool { return rs[a].MeanKV < rs[b].MeanKV })
		pts := make(plotter.XYs, len(rs))
		for j, r := range rs {
			pts[j] = plotter.XY{X: r.MeanKV, Y: r.Score}
			maxX, maxY = max(maxX, r.MeanKV), max(maxY, r.Score)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		sc.Radius = vg.Points(4)
		p.Add(sc)
		if rs[0].Budget != "" && len(rs) > 1 {
			ln, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			ln.Color = plotutil.Color(i)
			ln.Width = vg.Points(1.5)
			p.Add(ln)
			p.Legend.Add(shortLabel(pol), ln, sc)
		} else {
			label := pol
			if len(rs) == 1 && rs[0].Budget != "" {
				label = rs[0].Label()
			}
			p.Legend.Add(shortLabel(label), sc)
		}
	}
	p.X.Min, p.X.Max = 0, maxX*1.1
	p.Y.Min, p.Y.Max = 0, maxY*legendRoom(len(order))
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	return p, nil
}

// maxLayerLines is the most variants drawn on the per-layer plot; beyond
// it, budgeted policies are drawn at their smallest budget only.
const maxLayerLines = 8

func layerPlot(rows []Row) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Tokens kept per layer (" + taskTitle(rows) + ")"
	if len(rows) > maxLayerLines {
		rows = tightest(rows)
		p.Title.Text += ", budgeted policies at their smallest cache"
	}
	p.X.Label.Text = "layer"
	p.Y.Label.Text = "mean KV tokens (max over KV heads)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	maxY, layers := 1.0, 1
	for i, r := range rows {
		pts := make(plotter.XYs, len(r.MeanPerLayer))
		for l, v := range r.MeanPerLayer {
			pts[l] = plotter.XY{X: float64(l), Y: v}
			maxY = max(maxY, v)
		}
		layers = max(layers, len(pts))
		if len(pts) == 0 {
			continue
		}
		ln, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		ln.Color, sc.Color = plotutil.Color(i), plotutil.Color(i)
		ln.Dashes = plotutil.Dashes(i / 7)
		ln.Width = vg.Points(1.5)
		sc.Shape = plotutil.Shape(i)
		p.Add(ln, sc)
		p.Legend.Add(shortLabel(r.Label()), ln, sc)
	}
	p.X.Min, p.X.Max = -0.5, float64(layers)-0.5
	p.Y.Min, p.Y.Max = 0, maxY*legendRoom(len(rows))
	p.X.Tick.Marker = layerTicks{}
	p.Y.Tick.Marker = plainTicks{}
	return p, nil
}

// legendRoom is the factor on the largest y that leaves room above the data
// for a legend of n entries in the top corner.
func legendRoom(n int) float64 { return 1.15 + 0.07*float64(n) }

// tightest keeps, of each budgeted policy, the row with the smallest mean
// cache, and every row without a budget.
func tightest(rows []Row) []Row {
	best := map[string]int{}
	var out []Row
	for _, r := range rows {
		if r.Budget == "" {
			out = append(out, r)
			continue
		}
		if i, ok := best[r.Policy]; !ok {
			best[r.Policy] = len(out)
			out = append(out, r)
		} else if r.MeanKV < out[i].MeanKV {
			out[i] = r
		}
	}
	return out
}

// plainTicks are gonum's default ticks labelled without trailing zeros.
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 6, 64)
		}
	}
	return ticks
}

// layerTicks labels integer layers only.
type layerTicks struct{}

func (layerTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	n := int(hi - lo)
	step := max(1, n/16)
	for l := 0; float64(l) <= hi; l += step {
		if float64(l) >= lo {
			ticks = append(ticks, plot.Tick{Value: float64(l), Label: fmt.Sprint(l)})
		}
	}
	return ticks
}
