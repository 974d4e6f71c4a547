package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/atomicfile"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/train"
)

// imageSplit is the split of the dataset at path that split names ("test" or "val").
func imageSplit(path, split string) (*data.Images, error) {
	splits, err := data.LoadFashionMNIST(path)
	if err != nil {
		return nil, err
	}
	switch split {
	case "test":
		return splits.Test, nil
	case "val":
		return splits.Val, nil
	}
	return nil, fmt.Errorf("%w: -split %q: want \"test\" or \"val\"", errUsage, split)
}

// evalImages prints a ViT checkpoint's loss, accuracy and confusion matrix on a split of its
// dataset (the first batches batches of it when batches > 0).
func evalImages(ck *train.Checkpoint, df deviceFlags, path, split string, batches int, asJSON bool, stdout io.Writer) error {
	set, err := imageSplit(path, split)
	if err != nil {
		return err
	}
	cfg := ck.Config
	net, release, err := openCheckpointNet(df, ck, cfg.Train.Batch, cfg.Model.Context)
	if err != nil {
		return err
	}
	defer release()
	c, err := net.Classify(data.ImageEvalBatches(set, cfg.Train.Batch, batches))
	if err != nil {
		return err
	}
	if math.IsNaN(c.Loss) || math.IsInf(c.Loss, 0) {
		return fmt.Errorf("%s (step %d): the %s loss is %v: the model is broken", ck.Dir, ck.State.Step, split, c.Loss)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"checkpoint": ck.Dir, "step": ck.State.Step, "data": path,
			"split": split, "images": c.Count, "loss": c.Loss, "accuracy": c.Accuracy, "classes": set.Classes,
			"confusion": c.Confusion})
	}
	fmt.Fprintf(stdout, "%s (step %d): %s accuracy %.2f%%, loss %.4f over %d images of %s\n", ck.Dir, ck.State.Step,
		split, 100*c.Accuracy, c.Loss, c.Count, path)
	printConfusion(stdout, set.Classes, c.Confusion)
	return nil
}

// printConfusion prints a confusion matrix: a row per true class, a column per predicted one.
func printConfusion(w io.Writer, classes []string, confusion [][]int) {
	fmt.Fprintf(w, "confusion matrix (rows: true class, columns: predicted)\n%12s", "")
	for i := range classes {
		fmt.Fprintf(w, " %5d", i)
	}
	fmt.Fprintln(w, "  recall")
	for i, row := range confusion {
		total := 0
		for _, n := range row {
			total += n
		}
		fmt.Fprintf(w, "%d %-10.10s", i, classes[i])
		for _, n := range row {
			fmt.Fprintf(w, " %5d", n)
		}
		if total > 0 {
			fmt.Fprintf(w, "  %5.1f%%", 100*float64(row[i])/float64(total))
		}
		fmt.Fprintln(w)
	}
}

func runPredict(args []string, stdout io.Writer) error {
	fs := newFlags("predict", "predict -ckpt DIR -out FILE.png [-n N] [-from I] [-split test|val] [-data PATH] [-json]")
	var ckpt checkpointFlag
	ckpt.register(fs)
	out := fs.String("out", "", "the PNG to write: a grid of the images with their predicted and true classes, mistakes in red")
	count := fs.Int("n", 64, "images to draw")
	from := fs.Int("from", 0, "index of the first image in the split")
	split := fs.String("split", "test", `the images: "test" or "val"`)
	dataPath := fs.String("data", "", "the dataset (default: the checkpoint's)")
	asJSON := fs.Bool("json", false, "print each image's index, true and predicted class as JSON")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || !strings.HasSuffix(*out, ".png") {
		return fmt.Errorf("%w: -out FILE.png is required", errUsage)
	}
	ck, err := ckpt.load()
	if err != nil {
		return err
	}
	cfg := ck.Config
	if cfg.Model.Arch != "vit" {
		return fmt.Errorf("%s is a %s model; predict draws an image classifier's (vit) predictions", ck.Dir, cfg.Model.Arch)
	}
	if *dataPath == "" {
		*dataPath = cfg.Train.Data
	}
	set, err := imageSplit(*dataPath, *split)
	if err != nil {
		return err
	}
	if *count < 1 || *from < 0 || *from+*count > set.Len() {
		return fmt.Errorf("%w: images %d to %d of %d: -n must be positive and the range inside the split", errUsage, *from, *from+*count, set.Len())
	}
	net, release, err := openCheckpointNet(df, ck, cfg.Train.Batch, cfg.Model.Context)
	if err != nil {
		return err
	}
	defer release()
	part := &data.Images{H: set.H, W: set.W, Pixels: set.Pixels[*from*set.H*set.W : (*from+*count)*set.H*set.W],
		Labels: set.Labels[*from : *from+*count], Classes: set.Classes}
	var preds []prediction
	for i, b := range data.ImageEvalBatches(part, cfg.Train.Batch, 0) {
		p, err := net.Predict(b)
		if err != nil {
			return err
		}
		for r, l := range b.Labels {
			if l != model.IgnoreIndex {
				preds = append(preds, prediction{Index: *from + i*cfg.Train.Batch + r, Label: int(l), Predicted: p[r]})
			}
		}
	}
	if err := atomicfile.WriteWith(*out, func(w io.Writer) error { return png.Encode(w, predictionGrid(set, preds)) }); err != nil {
		return err
	}
	wrong := 0
	for _, p := range preds {
		if p.Label != p.Predicted {
			wrong++
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"checkpoint": ck.Dir, "out": *out, "split": *split,
			"classes": set.Classes, "wrong": wrong, "predictions": preds})
	}
	fmt.Fprintf(os.Stderr, "%s: %d %s images from %d, %d predicted wrong (marked red)\n", *out, len(preds), *split, *from, wrong)
	return nil
}

// prediction is one image's classification.
type prediction struct {
	Index     int `json:"index"` // in its split
	Label     int `json:"label"`
	Predicted int `json:"predicted"`
}

// predictionGrid draws the images of preds three times enlarged, in rows of eight, each with
// its predicted class and, when the prediction is wrong, the true one; a wrong cell is framed
// in red, a right one in green.
func predictionGrid(set *data.Images, preds []prediction) image.Image {
	const scale, perRow, pad, text = 3, 8, 6, 30
	face := basicfont.Face7x13
	cw := max(set.W*scale, 18*face.Advance) + 2*pad
	ch := set.H*scale + text + 2*pad
	rows := (len(preds) + perRow - 1) / perRow
	img := image.NewRGBA(image.Rect(0, 0, perRow*cw, rows*ch))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	red, green := color.RGBA{200, 30, 30, 255}, color.RGBA{30, 150, 60, 255}
	for i, p := range preds {
		x0, y0 := (i%perRow)*cw, (i/perRow)*ch
		frame := green
		if p.Label != p.Predicted {
			frame = red
		}
		draw.Draw(img, image.Rect(x0+2, y0+2, x0+cw-2, y0+ch-2), image.NewUniform(frame), image.Point{}, draw.Src)
		draw.Draw(img, image.Rect(x0+4, y0+4, x0+cw-4, y0+ch-4), image.White, image.Point{}, draw.Src)
		px := set.Image(p.Index)
		ix := x0 + (cw-set.W*scale)/2
		for y := range set.H * scale {
			for x := range set.W * scale {
				v := 255 - px[(y/scale)*set.W+x/scale] // dark garments on white
				img.Set(ix+x, y0+pad+y, color.Gray{v})
			}
		}
		d := font.Drawer{Dst: img, Src: image.NewUniform(frame), Face: face}
		d.Dot = fixed.P(x0+pad, y0+pad+set.H*scale+12)
		d.DrawString(set.Classes[p.Predicted])
		if p.Label != p.Predicted {
			d.Src = image.Black
			d.Dot = fixed.P(x0+pad, y0+pad+set.H*scale+25)
			d.DrawString("true: " + set.Classes[p.Label])
		}
	}
	return img
}
