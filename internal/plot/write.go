package plot

import (
	"io"

	"gonum.org/v1/plot/vg/vgimg"

	"github.com/vktrain/vktrain/internal/atomicfile"
)

// writeFile encodes img as PNG into path.
func writeFile(path string, img *vgimg.Canvas) error {
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
		return err
	})
}
