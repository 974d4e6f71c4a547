// Package plot draws training curves (loss against steps, FLOPs or seconds) as PNG files.
package plot

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one curve.
type Series struct {
	Name string
	X, Y []float64
}

// Panel is one chart: its title, axis labels and curves.
type Panel struct {
	Title, XLabel, YLabel string
	LogX                  bool
	Series                []Series
}

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255},
	color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255},
	color.RGBA{R: 255, G: 127, B: 14, A: 255},
}

// WritePNG draws the panels side by side into a PNG file.
func WritePNG(path string, panels ...Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("plot %s: nothing to draw", path)
	}
	const w, h = 6 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(vg.Length(len(panels))*w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter, PadY: vg.Millimeter}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = pn.Title, pn.XLabel, pn.YLabel
		if pn.LogX {
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		p.Add(plotter.NewGrid())
		for j, s := range pn.Series {
			pts := make(plotter.XYs, 0, len(s.X))
			for k := range s.X {
				if pn.LogX && s.X[k] <= 0 {
					continue
				}
				pts = append(pts, plotter.XY{X: s.X[k], Y: s.Y[k]})
			}
			if len(pts) == 0 {
				continue
			}
			line, err := plotter.NewLine(pts)
			if err != nil {
				return fmt.Errorf("plot %s: %s: %w", path, s.Name, err)
			}
			line.Color = palette[j%len(palette)]
			line.Width = vg.Points(1.5)
			p.Add(line)
			p.Legend.Add(s.Name, line)
		}
		p.Legend.Top = true
		p.Draw(tiles.At(dc, i, 0))
	}
	return writeFile(path, img)
}
