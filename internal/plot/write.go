package plot

import (
	"os"

	"gonum.org/v1/plot/vg/vgimg"
)

// writeFile encodes img as PNG into path.
func writeFile(path string, img *vgimg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
