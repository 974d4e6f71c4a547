package data

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-gl/mathgl/mgl32"
)

// writeIDX writes x to dir/name, gzip-compressed when the name ends in .gz.
func writeIDX(t *testing.T, dir, name string, raw []byte) string {
	t.Helper()
	if strings.HasSuffix(name, ".gz") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(raw)
		zw.Close()
		raw = b.Bytes()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadIDX(t *testing.T) {
	dir := t.TempDir()
	good := &IDX{Dims: []int{2, 3, 2}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	raw := EncodeIDX(good)
	for _, name := range []string{"good", "good.gz"} {
		x, err := ReadIDX(writeIDX(t, dir, name, raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(x.Dims, good.Dims) || !bytes.Equal(x.Data, good.Data) {
			t.Errorf("%s: read %v %v, want %v %v", name, x.Dims, x.Data, good.Dims, good.Data)
		}
	}
	bad := []struct {
		name string
		raw  []byte
		want string
	}{
		{"truncated data", raw[:len(raw)-1], "truncated"},
		{"truncated data.gz", raw[:len(raw)-3], "truncated"},
		{"truncated header", raw[:6], "dimension 0: truncated"},
		{"empty", nil, "not an idx file"},
		{"trailing", append(slices.Clone(raw), 0), "1 bytes after"},
		{"foreign", []byte("PK\x03\x04 a zip file, not idx"), "not an idx file"},
		{"floats", append([]byte{0, 0, 0x0d, 1, 0, 0, 0, 1}, 0, 0, 0, 0), "element type 0x0d"},
	}
	for _, c := range bad {
		p := writeIDX(t, dir, c.name, c.raw)
		_, err := ReadIDX(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", c.name, err, c.want)
		}
	}
}

// tinySet is a set of n images of 6 x 5 pixels with distinct contents, labels i % 3.
func tinySet(n int) *Images {
	s := &Images{H: 6, W: 5, Classes: []string{"a", "b", "c"}}
	for i := range n {
		for p := range 30 {
			s.Pixels = append(s.Pixels, byte(i*31+p*7))
		}
		s.Labels = append(s.Labels, byte(i%3))
	}
	return s
}

func TestLoadImagesChecksLabels(t *testing.T) {
	dir := t.TempDir()
	im := writeIDX(t, dir, "im.gz", EncodeIDX(&IDX{Dims: []int{2, 2, 2}, Data: make([]byte, 8)}))
	lb := writeIDX(t, dir, "lb.gz", EncodeIDX(&IDX{Dims: []int{2}, Data: []byte{1, 3}}))
	if _, err := LoadImages(im, lb, []string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), "label 1 is 3") {
		t.Errorf("label out of range: error %v", err)
	}
	lb3 := writeIDX(t, dir, "lb3.gz", EncodeIDX(&IDX{Dims: []int{3}, Data: []byte{1, 0, 2}}))
	if _, err := LoadImages(im, lb3, []string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), "2 images") {
		t.Errorf("count mismatch: error %v", err)
	}
	if _, err := LoadImages(lb, lb, []string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), "height") {
		t.Errorf("labels as images: error %v", err)
	}
	s, err := LoadImages(im, writeIDX(t, dir, "ok.gz", EncodeIDX(&IDX{Dims: []int{2}, Data: []byte{1, 2}})), []string{"a", "b", "c"})
	if err != nil || s.Len() != 2 || s.H != 2 || s.W != 2 {
		t.Errorf("good files: %v, %+v", err, s)
	}
}

// Without augmentation an image is unchanged; a shift moves it by whole pixels (zeros coming in)
// and a flip mirrors it, exactly.
func TestWarp(t *testing.T) {
	s := tinySet(1)
	h, w := s.H, s.W
	src := s.Image(0)
	out := make([]float32, h*w)
	warp(src, h, w, Augment{}.transform(newSplitMix(1, 1), h, w), out)
	for i, v := range src {
		if out[i] != float32(v) {
			t.Fatalf("identity: pixel %d is %v, want %v", i, out[i], v)
		}
	}
	shift := mgl32.Translate2D(2, -1)
	warp(src, h, w, shift, out)
	for y := range h {
		for x := range w {
			want := float32(0)
			if sx, sy := x-2, y+1; sx >= 0 && sy < h {
				want = float32(src[sy*w+sx])
			}
			if out[y*w+x] != want {
				t.Fatalf("shift: pixel (%d, %d) is %v, want %v", x, y, out[y*w+x], want)
			}
		}
	}
	flip := mgl32.Translate2D(float32(w)/2, 0).Mul3(mgl32.Scale2D(-1, 1)).Mul3(mgl32.Translate2D(-float32(w)/2, 0))
	warp(src, h, w, flip, out)
	for y := range h {
		for x := range w {
			if want := float32(src[y*w+w-1-x]); out[y*w+x] != want {
				t.Fatalf("flip: pixel (%d, %d) is %v, want %v", x, y, out[y*w+x], want)
			}
		}
	}
}

// The batches depend on the seed only: a batcher restored from another's state serves the same
// augmented batches bit for bit, and another seed other ones; every image of an epoch is served
// once.
func TestImageBatcherDeterministic(t *testing.T) {
	set := tinySet(10)
	aug := Augmentations["crop-flip-rotate"]
	a, err := NewImageBatcher(set, 3, aug, 5)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[uint32]int{}
	for range 3 { // one epoch: 3 batches of 3, one image skipped
		for _, l := range a.Next().Labels {
			labels[l]++
		}
	}
	if n := labels[0] + labels[1] + labels[2]; n != 9 {
		t.Fatalf("an epoch served %d images, want 9", n)
	}
	st := a.State()
	b, _ := NewImageBatcher(set, 3, aug, 5)
	if err := b.Restore(st); err != nil {
		t.Fatal(err)
	}
	other, _ := NewImageBatcher(set, 3, aug, 6)
	for range 3 {
		other.Next()
	}
	differs := false
	for range 7 {
		x, y, z := a.Next(), b.Next(), other.Next()
		if !slices.Equal(x.Labels, y.Labels) || !slices.Equal(x.Images, y.Images) {
			t.Fatal("a restored batcher serves other batches")
		}
		differs = differs || !slices.Equal(x.Images, z.Images)
	}
	if !differs {
		t.Error("another seed serves the same batches")
	}
	if err := b.Restore(BatcherState{B: 4, T: 30, Tokens: 10}); err == nil {
		t.Error("a state of another batch size is accepted")
	}
}

// Evaluation batches hold every image once, in order, unaugmented; the padding is ignored.
func TestImageEvalBatches(t *testing.T) {
	set := tinySet(7)
	bs := ImageEvalBatches(set, 3, 0)
	if len(bs) != 3 {
		t.Fatalf("%d batches, want 3", len(bs))
	}
	for i, b := range bs {
		for r, l := range b.Labels {
			k := i*3 + r
			if k >= 7 {
				if l != IgnoreIndex {
					t.Errorf("padding image %d has label %d", k, l)
				}
				continue
			}
			if l != uint32(set.Labels[k]) || !slices.Equal(b.Images[r*30:(r+1)*30], set.NormalisedImage(k)) {
				t.Errorf("image %d differs", k)
			}
		}
	}
	if n := len(ImageEvalBatches(set, 3, 2)); n != 2 {
		t.Errorf("maxBatches 2 gives %d batches", n)
	}
}
