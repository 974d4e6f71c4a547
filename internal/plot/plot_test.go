package plot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curves.png")
	err := WritePNG(path,
		Panel{Title: "loss", XLabel: "step", YLabel: "loss", Series: []Series{
			{Name: "train", X: []float64{1, 2, 3}, Y: []float64{5.5, 4, 3.2}},
			{Name: "val", X: []float64{2, 3}, Y: []float64{4.2, 3.4}},
		}},
		Panel{Title: "by FLOPs", XLabel: "FLOPs", YLabel: "loss", LogX: true, Series: []Series{
			{Name: "train", X: []float64{0, 1e9, 2e9}, Y: []float64{5.5, 4, 3.2}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 2000 {
		t.Fatalf("not a PNG: %d bytes, %v", len(b), err)
	}
	if err := WritePNG(path); err == nil {
		t.Fatal("an empty plot was accepted")
	}
}
