package data

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/go-gl/mathgl/mgl32"
)

// FashionMNISTPath is where `make data` puts Fashion-MNIST (Debian's dataset-fashion-mnist).
const FashionMNISTPath = "data/fashion-mnist"

// FashionMNISTFiles are the dataset's four idx files: training images and labels, test images
// and labels.
var FashionMNISTFiles = []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
	"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}

// FashionMNISTClasses are the names of the ten classes, by label.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// FashionMNISTValidation is the number of training images held out for validation: the last
// ones of the training file. The test images serve only for the final test accuracy.
const FashionMNISTValidation = 5000

// The pixel statistics of Fashion-MNIST's training images (pixels scaled to [0, 1]), with which
// the images are normalised.
const (
	FashionMNISTMean = 0.2860
	FashionMNISTStd  = 0.3530
)

// Images is a set of grey images of H x W pixels with their class labels.
type Images struct {
	H, W    int
	Pixels  []byte // Len() images, row-major
	Labels  []byte
	Classes []string // class names, by label
}

// Len is the number of images.
func (s *Images) Len() int { return len(s.Labels) }

// Image is image i's pixels.
func (s *Images) Image(i int) []byte { return s.Pixels[i*s.H*s.W : (i+1)*s.H*s.W] }

// slice is images [from, to) of s (sharing its memory).
func (s *Images) slice(from, to int) *Images {
	return &Images{H: s.H, W: s.W, Pixels: s.Pixels[from*s.H*s.W : to*s.H*s.W], Labels: s.Labels[from:to], Classes: s.Classes}
}

// ImageSplits are the training, validation and test images of a dataset.
type ImageSplits struct {
	Train, Val, Test *Images
}

// LoadFashionMNIST reads Fashion-MNIST's idx files from dir and splits them: the last
// FashionMNISTValidation training images are the validation set.
func LoadFashionMNIST(dir string) (*ImageSplits, error) {
	paths := make([]string, len(FashionMNISTFiles))
	for i, f := range FashionMNISTFiles {
		paths[i] = filepath.Join(dir, f)
	}
	train, err := LoadImages(paths[0], paths[1], FashionMNISTClasses)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (`make data` fetches Fashion-MNIST into %s)", err, FashionMNISTPath)
	}
	if err != nil {
		return nil, err
	}
	test, err := LoadImages(paths[2], paths[3], FashionMNISTClasses)
	if err != nil {
		return nil, err
	}
	if train.H != test.H || train.W != test.W {
		return nil, fmt.Errorf("%s: training images are %d x %d, test images %d x %d", dir, train.H, train.W, test.H, test.W)
	}
	n := train.Len()
	if n <= FashionMNISTValidation {
		return nil, fmt.Errorf("%s: %d training images, fewer than the %d held out for validation", paths[0], n, FashionMNISTValidation)
	}
	return &ImageSplits{Train: train.slice(0, n-FashionMNISTValidation), Val: train.slice(n-FashionMNISTValidation, n), Test: test}, nil
}

// LoadImages reads an idx file of N x H x W images and one of N labels, each below
// len(classes).
func LoadImages(imagesPath, labelsPath string, classes []string) (*Images, error) {
	im, err := ReadIDX(imagesPath)
	if err != nil {
		return nil, err
	}
	lb, err := ReadIDX(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(im.Dims) != 3 {
		return nil, fmt.Errorf("%s: dimensions %v, want images x height x width", imagesPath, im.Dims)
	}
	if len(lb.Dims) != 1 {
		return nil, fmt.Errorf("%s: dimensions %v, want one label per image", labelsPath, lb.Dims)
	}
	if im.Dims[0] != lb.Dims[0] {
		return nil, fmt.Errorf("%s holds %d images, %s %d labels", imagesPath, im.Dims[0], labelsPath, lb.Dims[0])
	}
	for i, l := range lb.Data {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("%s: label %d is %d, the dataset has %d classes", labelsPath, i, l, len(classes))
		}
	}
	return &Images{H: im.Dims[1], W: im.Dims[2], Pixels: im.Data, Labels: lb.Data, Classes: classes}, nil
}

// Augment is the random transform of a training image: a translation of up to Shift pixels
// each way (a random crop of the image padded with Shift zero pixels), a horizontal flip with
// probability 1/2 when Flip is set, and a rotation by up to ±Rotate degrees about the centre.
type Augment struct {
	Shift  int
	Flip   bool
	Rotate float64
}

// Augmentations are the augmentations a configuration names (train.augment).
var Augmentations = map[string]Augment{
	"none":             {},
	"crop-flip":        {Shift: 2, Flip: true},
	"crop-flip-rotate": {Shift: 2, Flip: true, Rotate: 10},
}

// transform draws one image's transform from rng: a 2D homogeneous matrix from the original
// image's coordinates (pixel centres at i + 0.5) to the augmented image's.
func (a Augment) transform(rng *splitMix, h, w int) mgl32.Mat3 {
	cx, cy := float32(w)/2, float32(h)/2
	m := mgl32.Translate2D(-cx, -cy)
	if a.Flip && rng.intn(2) == 1 {
		m = mgl32.Scale2D(-1, 1).Mul3(m)
	}
	if a.Rotate > 0 {
		deg := (2*float64(rng.next()>>11)/(1<<53) - 1) * a.Rotate
		m = mgl32.HomogRotate2D(float32(deg * math.Pi / 180)).Mul3(m)
	}
	dx, dy := 0, 0
	if a.Shift > 0 {
		dx, dy = rng.intn(2*a.Shift+1)-a.Shift, rng.intn(2*a.Shift+1)-a.Shift
	}
	return mgl32.Translate2D(cx+float32(dx), cy+float32(dy)).Mul3(m)
}

// warp writes src (h x w) seen through transform m into dst: each pixel of dst samples src
// bilinearly at m⁻¹ of its centre, with zeros outside src.
func warp(src []byte, h, w int, m mgl32.Mat3, dst []float32) {
	inv := m.Inv()
	at := func(x, y int) float32 {
		if x < 0 || y < 0 || x >= w || y >= h {
			return 0
		}
		return float32(src[y*w+x])
	}
	for y := range h {
		for x := range w {
			p := inv.Mul3x1(mgl32.Vec3{float32(x) + 0.5, float32(y) + 0.5, 1})
			sx, sy := p[0]-0.5, p[1]-0.5
			x0, y0 := int(math.Floor(float64(sx))), int(math.Floor(float64(sy)))
			fx, fy := sx-float32(x0), sy-float32(y0)
			top := at(x0, y0)*(1-fx) + at(x0+1, y0)*fx
			bottom := at(x0, y0+1)*(1-fx) + at(x0+1, y0+1)*fx
			dst[y*w+x] = top*(1-fy) + bottom*fy
		}
	}
}

// normalise scales pixel values (0-255) in place to the network's input: pixel/255 standardised
// with the training set's mean and deviation.
func normalise(px []float32) {
	for i, v := range px {
		px[i] = (v/255 - FashionMNISTMean) / FashionMNISTStd
	}
}

// NormalisedImage is image i of s as the network reads it, without augmentation.
func (s *Images) NormalisedImage(i int) []float32 {
	out := make([]float32, s.H*s.W)
	for j, v := range s.Image(i) {
		out[j] = float32(v)
	}
	normalise(out)
	return out
}

// ImageBatcher serves training batches of augmented images, deterministically from a seed:
// each epoch is a permutation of the images drawn from (seed, epoch), served B at a time
// (images left over at the end of an epoch are skipped), and each image's augmentation is drawn
// from (seed, epoch, its place in the epoch). A Batcher restored from State serves the same
// batches as the uninterrupted one. Its BatcherState's T is the pixels of an image and Tokens
// the number of images.
type ImageBatcher struct {
	set *Images
	aug Augment
	st  BatcherState

	permEpoch int64
	perm      []int32
}

// NewImageBatcher returns an ImageBatcher over set serving b images a batch, at the start of
// epoch 0.
func NewImageBatcher(set *Images, b int, aug Augment, seed int64) (*ImageBatcher, error) {
	if b < 1 || set.Len() < b {
		return nil, fmt.Errorf("batch of %d images from a set of %d", b, set.Len())
	}
	return &ImageBatcher{set: set, aug: aug, permEpoch: -1,
		st: BatcherState{Seed: seed, B: b, T: set.H * set.W, Tokens: set.Len()}}, nil
}

// State returns the position of the next batch.
func (bt *ImageBatcher) State() BatcherState { return bt.st }

// Restore moves the batcher to s, which must come from a batcher of the same batch size over a
// set of the same size.
func (bt *ImageBatcher) Restore(s BatcherState) error {
	if s.B != bt.st.B || s.T != bt.st.T || s.Tokens != bt.st.Tokens {
		return fmt.Errorf("batcher state is for batches of %d images of %d pixels from %d; this batcher serves %d of %d from %d",
			s.B, s.T, s.Tokens, bt.st.B, bt.st.T, bt.st.Tokens)
	}
	if s.Epoch < 0 || s.Step < 0 || s.Step > int64(bt.st.Tokens/bt.st.B) {
		return fmt.Errorf("batcher state epoch %d, step %d is outside an epoch of %d batches", s.Epoch, s.Step, bt.st.Tokens/bt.st.B)
	}
	bt.st = s
	return nil
}

// Next returns the next batch and advances.
func (bt *ImageBatcher) Next() Batch {
	n, b := bt.set.Len(), bt.st.B
	if bt.st.Step >= int64(n/b) {
		bt.st.Epoch++
		bt.st.Step = 0
	}
	if bt.permEpoch != bt.st.Epoch {
		bt.perm = permutation(n, newSplitMix(uint64(bt.st.Seed), uint64(bt.st.Epoch)))
		bt.permEpoch = bt.st.Epoch
	}
	h, w := bt.set.H, bt.set.W
	out := Batch{B: b, Images: make([]float32, b*h*w), Labels: make([]uint32, b)}
	for r := range b {
		place := int(bt.st.Step)*b + r
		img := int(bt.perm[place])
		rng := newSplitMix(uint64(bt.st.Seed)^0xa6a6a6a6, uint64(bt.st.Epoch)*uint64(n)+uint64(place))
		warp(bt.set.Image(img), h, w, bt.aug.transform(rng, h, w), out.Images[r*h*w:(r+1)*h*w])
		normalise(out.Images[r*h*w : (r+1)*h*w])
		out.Labels[r] = uint32(bt.set.Labels[img])
	}
	bt.st.Step++
	return out
}

// permutation is a Fisher-Yates shuffle of 0 .. n-1 drawn from rng.
func permutation(n int, rng *splitMix) []int32 {
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	for i := n - 1; i > 0; i-- {
		j := rng.intn(i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm
}

// ImageEvalBatches are the images of set in order, b a batch, without augmentation; with
// maxBatches > 0 only the first maxBatches batches. The last batch is filled up with copies of
// image 0 labelled IgnoreIndex, which no loss or accuracy counts.
func ImageEvalBatches(set *Images, b, maxBatches int) []Batch {
	nb := (set.Len() + b - 1) / b
	if maxBatches > 0 && nb > maxBatches {
		nb = maxBatches
	}
	px := set.H * set.W
	out := make([]Batch, nb)
	for i := range out {
		out[i] = Batch{B: b, Images: make([]float32, b*px), Labels: make([]uint32, b)}
		for r := range b {
			k, label := i*b+r, uint32(0)
			if k < set.Len() {
				label = uint32(set.Labels[k])
			} else {
				k, label = 0, IgnoreIndex
			}
			copy(out[i].Images[r*px:(r+1)*px], set.NormalisedImage(k))
			out[i].Labels[r] = label
		}
	}
	return out
}
