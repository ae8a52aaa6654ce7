// Package plotfile renders gonum plots as PNG or SVG file bytes, inset by a
// margin so that titles, legend markers and tick labels at the plot's edges
// are not cut off.
package plotfile

import (
	"bytes"
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Margin is the blank border around every plot.
const Margin = 8 * vg.Length(1) // points

// Render draws p at width x height as format ("png" or "svg").
func Render(p *plot.Plot, width, height vg.Length, format string) ([]byte, error) {
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
	case "svg":
		c = vgsvg.New(width, height)
	default:
		return nil, fmt.Errorf("plot format %q: want png or svg", format)
	}
	p.Draw(draw.Crop(draw.New(c), Margin, -Margin, Margin, -Margin))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Formats is the list of formats to write: PNG, and SVG when svg.
func Formats(svg bool) []string {
	if svg {
		return []string{"png", "svg"}
	}
	return []string{"png"}
}
