package inspect

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/namm-dev/namm/internal/plotfile"
)

// The heatmap's colours, the same as the inspector page's: a kept token is
// navy; an evicted one goes from pale amber (evicted at the first step) to
// dark red (at the last).
var (
	KeptColor   = color.RGBA{0x1e, 0x3a, 0x5f, 0xff}
	EarlyColor  = color.RGBA{0xfd, 0xe6, 0x8a, 0xff}
	LateColor   = color.RGBA{0xb9, 0x1c, 0x1c, 0xff}
	heatEntries = 64
)

// ramp is EarlyColor to LateColor in heatEntries steps.
type ramp struct{}

func (ramp) Colors() []color.Color {
	out := make([]color.Color, heatEntries)
	mix := func(a, b uint8, f float64) uint8 { return uint8(math.Round(float64(a) + f*(float64(b)-float64(a)))) }
	for i := range out {
		f := float64(i) / float64(heatEntries-1)
		out[i] = color.RGBA{mix(EarlyColor.R, LateColor.R, f), mix(EarlyColor.G, LateColor.G, f), mix(EarlyColor.B, LateColor.B, f), 0xff}
	}
	return out
}

// grid is a trace's layers x positions: the step that evicted each token,
// NaN where the layer keeps it.
type grid struct {
	at [][]int // [layer][position]
}

func (g grid) Dims() (c, r int) { return len(g.at[0]), len(g.at) }
func (g grid) X(c int) float64  { return float64(c) }
func (g grid) Y(r int) float64  { return float64(r) }
func (g grid) Z(c, r int) float64 {
	if s := g.at[r][c]; s >= 0 {
		return float64(s)
	}
	return math.NaN()
}

// Heatmap draws a trace as a layers x token positions heatmap (format
// "png" or "svg"): navy where the layer still keeps the token at the end,
// amber to red by the step that evicted it.
func Heatmap(t *Trace, format string) ([]byte, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	n := 0
	if k := len(t.Steps); k > 0 {
		n = t.Steps[k-1].Start + t.Steps[k-1].Tokens
	}
	if n == 0 || t.Layers == 0 {
		return nil, fmt.Errorf("inspect: the trace has no steps to draw")
	}
	h := plotter.NewHeatMap(grid{t.EvictedAt(n)}, ramp{})
	h.Min, h.Max = 0, float64(max(len(t.Steps)-1, 1))
	h.NaN = KeptColor
	p := plot.New()
	evicted := t.Summary.Evicted
	p.Title.Text = fmt.Sprintf("%s: kept (navy) and evicted tokens (amber early -> red late), %d evicted over %d layers", t.Memory, evicted, t.Layers)
	p.X.Label.Text = "token position"
	p.Y.Label.Text = "layer"
	p.Add(h)
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(t.Layers)-0.5
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = fmt.Sprint(int(math.Round(ticks[i].Value)))
			}
		}
		return ticks
	})
	every := max(1, t.Layers/8)
	p.Y.Tick.Marker = plot.TickerFunc(func(_, _ float64) []plot.Tick {
		var ticks []plot.Tick
		for l := 0; l < t.Layers; l += every {
			ticks = append(ticks, plot.Tick{Value: float64(l), Label: fmt.Sprint(l)})
		}
		return ticks
	})
	height := vg.Length(120 + 14*min(t.Layers, 40))
	return plotfile.Render(p, 900, height, format)
}
