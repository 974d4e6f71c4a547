package ops_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/vktest"
)

// ignoreMinus100 is torch's default ignore_index, -100, as a uint32.
const ignoreMinus100 = math.MaxUint32 - 99

// newPlain allocates an unpadded tensor of n elements.
func newPlain(t *testing.T, ctx *vk.Context, name string, n int) *vk.Tensor {
	t.Helper()
	x, err := ctx.NewTensor(name, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Free)
	return x
}

// newStepParams allocates a padded step-parameters tensor holding p.
func newStepParams(t *testing.T, ctx *vk.Context, p ops.StepParams) *vk.Tensor {
	t.Helper()
	x := vktest.NewPadded(t, ctx, "step", ops.StepParamsLen, nil)
	if err := p.Write(x); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestCrossEntropy(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(7, 7))
	cases := []struct {
		rows, vocab int
		ignore      uint32
		ignored     []int   // rows whose target is ignore
		extra       int     // targets counted in other micro-batches of the step
		fd          bool    // also check the gradient by finite differences
		stride      int     // row stride of the logits; 0: dense (the vocabulary)
		smoothing   float32 // the backward's label smoothing (strided cases only)
	}{
		{rows: 1, vocab: 1, ignore: ignoreMinus100, fd: true},
		{rows: 1, vocab: 7, ignore: ignoreMinus100, fd: true},
		{rows: 3, vocab: 7, ignore: 0, ignored: []int{1}, fd: true},
		{rows: 5, vocab: 256, ignore: ignoreMinus100, ignored: []int{0, 3}, fd: true},
		{rows: 3, vocab: 1000, ignore: ignoreMinus100, extra: 4},
		{rows: 67, vocab: 33, ignore: 5, ignored: []int{2, 64, 66}, extra: 11},
		{rows: 3, vocab: 7, ignore: ignoreMinus100, ignored: []int{0, 1, 2}}, // count 0: zero gradient
		{rows: 3, vocab: 7, ignore: ignoreMinus100, ignored: []int{1}, stride: 8, fd: true},
		{rows: 5, vocab: 1001, ignore: ignoreMinus100, ignored: []int{4}, extra: 3, stride: 1004},
		{rows: 2, vocab: 1, ignore: ignoreMinus100, stride: 9},
		{rows: 4, vocab: 9, ignore: 0, ignored: []int{2}, stride: 16, fd: true},
		{rows: 3, vocab: 7, ignore: ignoreMinus100, ignored: []int{1}, stride: 8, fd: true, smoothing: 0.1},
		{rows: 4, vocab: 9, ignore: 0, ignored: []int{2}, stride: 16, fd: true, smoothing: 0.3},
		{rows: 5, vocab: 1001, ignore: ignoreMinus100, ignored: []int{4}, extra: 3, stride: 1004, smoothing: 0.2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d_stride%d_ignore%d_of%d_smoothing%g", c.rows, c.vocab, c.stride, len(c.ignored), c.rows, c.smoothing), func(t *testing.T) {
			rows, vocab, stride := c.rows, c.vocab, c.stride
			if stride == 0 {
				stride = vocab
			}
			xs := randoms(rng, rows*vocab)
			for i := range xs {
				xs[i] *= 4 // a peaked softmax
			}
			targets := make([]uint32, rows)
			for r := range targets {
				targets[r] = uint32(rng.IntN(vocab))
				for targets[r] == c.ignore { // only the chosen rows are ignored
					targets[r] = uint32(rng.IntN(vocab))
				}
				if slices.Contains(c.ignored, r) {
					targets[r] = c.ignore
				}
			}
			if vocab == 1 && c.ignore == 0 {
				t.Fatal("bad case: no target differs from the ignore index")
			}
			count := rows - len(c.ignored)
			tokens := count + c.extra
			logits := vktest.NewPadded(t, ctx, "logits", rows*stride, strided(xs, vocab, stride, float32(math.NaN())))
			tg := newUint32s(t, ctx, "targets", targets)
			losses := vktest.NewPadded(t, ctx, "losses", rows, nil)
			dlogits := vktest.NewPadded(t, ctx, "dlogits", rows*stride, nil)
			bwdLosses := vktest.NewPadded(t, ctx, "backward's losses", rows, nil) // strided cases
			step := newStepParams(t, ctx, ops.StepParams{Beta1: 0.9, Beta2: 0.999, Step: 1, Tokens: tokens})

			backward := func(s *vk.Sequence, out *vk.Tensor) error {
				if c.stride == 0 {
					return o.CrossEntropyBackward(s, logits, tg, out, step, rows, vocab, c.ignore)
				}
				return o.CrossEntropyBackwardStrided(s, logits, tg, out, bwdLosses, step, rows, vocab, stride, c.ignore, c.smoothing)
			}
			record := func(s *vk.Sequence) error {
				var err error
				if c.stride == 0 {
					err = o.CrossEntropyForward(s, logits, tg, losses, rows, vocab, c.ignore)
				} else {
					err = o.CrossEntropyForwardStrided(s, logits, tg, losses, rows, vocab, stride, c.ignore)
				}
				if err != nil {
					return err
				}
				return backward(s, dlogits)
			}
			run(t, ctx, record)
			gotL, gotStrided := read(t, losses), read(t, dlogits)
			vktest.CheckSentinels(t, "losses", gotL, rows)
			vktest.CheckSentinels(t, "dlogits", gotStrided, rows*stride)
			// The pad columns (NaN in the logits, so a read would show) get a zero gradient.
			gotD := make([]float32, 0, rows*vocab)
			for r := range rows {
				row := gotStrided[r*stride : (r+1)*stride]
				gotD = append(gotD, row[:vocab]...)
				for j, v := range row[vocab:] {
					if v != 0 {
						t.Fatalf("row %d: pad column %d has gradient %v", r, vocab+j, v)
					}
				}
			}

			// The forward is the plain cross-entropy (evaluation); the backward's losses and
			// gradient are of the smoothed target.
			x64, e := ref.F64(xs), float64(c.smoothing)
			wantL := ref.CrossEntropy(x64, targets, rows, vocab, c.ignore, 0)
			wantSmoothed := ref.CrossEntropy(x64, targets, rows, vocab, c.ignore, e)
			scale := 0.0
			if tokens > 0 {
				scale = 1 / float64(tokens)
			}
			wantD := ref.CrossEntropyBackward(x64, targets, rows, vocab, c.ignore, e, scale)
			if e := vktest.NSE(gotL[:rows], wantL); e > 1e-6 {
				t.Errorf("forward: normalised squared error %g", e)
			}
			if c.stride != 0 {
				got := read(t, bwdLosses)
				vktest.CheckSentinels(t, "backward's losses", got, rows)
				if e := vktest.NSE(got[:rows], wantSmoothed); e > 1e-6 {
					t.Errorf("backward's losses: normalised squared error %g", e)
				}
			}
			if e := vktest.NSE(gotD[:rows*vocab], wantD); e > 1e-6 {
				t.Errorf("backward: normalised squared error %g", e)
			}
			for r := range rows {
				if targets[r] != c.ignore {
					continue
				}
				if gotL[r] != 0 {
					t.Errorf("ignored row %d: loss %v", r, gotL[r])
				}
				for j := range vocab {
					if gotD[r*vocab+j] != 0 {
						t.Fatalf("ignored row %d: gradient[%d] = %v", r, j, gotD[r*vocab+j])
					}
				}
			}

			if c.fd {
				// The mean loss over this batch's counted targets; with no other micro-batch its
				// gradient is what the kernel computes.
				if c.extra != 0 {
					t.Fatal("bad case: finite differences need extra = 0")
				}
				mean := func(x []float64) float64 {
					return ref.MeanLoss(ref.CrossEntropy(x, targets, rows, vocab, c.ignore, e), targets, c.ignore)
				}
				fd := ref.NumericGrad(mean, x64, 1e-4)
				if e := vktest.NSE(gotD[:rows*vocab], fd); e > 1e-6 {
					t.Errorf("backward against finite differences: normalised squared error %g", e)
				}
			}

			// Determinism, and the in-place backward gives the same bits.
			run(t, ctx, record)
			if again := read(t, losses); !slices.Equal(again, gotL) {
				t.Error("forward: a second run gave different bits")
			}
			if again := read(t, dlogits); !slices.Equal(again, gotStrided) {
				t.Error("backward: a second run gave different bits")
			}
			run(t, ctx, func(s *vk.Sequence) error { return backward(s, logits) })
			inPlace := read(t, logits)
			vktest.CheckSentinels(t, "in-place dlogits", inPlace, rows*stride)
			if !slices.Equal(inPlace[:rows*stride], gotStrided[:rows*stride]) {
				t.Error("in-place backward differs from out-of-place")
			}
		})
	}
}

// strided lays rows of vocab values out every stride elements, pad in the gaps.
func strided(xs []float32, vocab, stride int, pad float32) []float32 {
	out := make([]float32, 0, len(xs)/vocab*stride)
	for r := 0; r < len(xs); r += vocab {
		out = append(out, xs[r:r+vocab]...)
		for len(out)%stride != 0 {
			out = append(out, pad)
		}
	}
	return out
}

func TestCrossEntropyBadTarget(t *testing.T) {
	ctx, o := newOps(t)
	rows, vocab := 3, 5
	targets := []uint32{2, 5, ignoreMinus100}
	logits := vktest.NewPadded(t, ctx, "logits", rows*vocab, randoms(rand.New(rand.NewPCG(8, 8)), rows*vocab))
	tg := newUint32s(t, ctx, "targets", targets)
	losses := vktest.NewPadded(t, ctx, "losses", rows, nil)
	dlogits := vktest.NewPadded(t, ctx, "dlogits", rows*vocab, nil)
	step := newStepParams(t, ctx, ops.StepParams{Step: 1, Tokens: 2})
	run(t, ctx, func(s *vk.Sequence) error {
		if err := o.CrossEntropyForward(s, logits, tg, losses, rows, vocab, ignoreMinus100); err != nil {
			return err
		}
		return o.CrossEntropyBackward(s, logits, tg, dlogits, step, rows, vocab, ignoreMinus100)
	})
	l, d := read(t, losses), read(t, dlogits)
	if math.IsNaN(float64(l[0])) || !math.IsNaN(float64(l[1])) || l[2] != 0 {
		t.Errorf("losses %v: want finite, NaN, 0", l[:rows])
	}
	for j := range vocab {
		if math.IsNaN(float64(d[j])) || !math.IsNaN(float64(d[vocab+j])) || d[2*vocab+j] != 0 {
			t.Fatalf("column %d of the gradient: %v, %v, %v; want finite, NaN, 0", j, d[j], d[vocab+j], d[2*vocab+j])
		}
	}
	vktest.CheckSentinels(t, "losses", l, rows)
	vktest.CheckSentinels(t, "dlogits", d, rows*vocab)
}

func TestCrossEntropyShapeErrors(t *testing.T) {
	ctx, o := newOps(t)
	x, short := newPlain(t, ctx, "x", 100), newPlain(t, ctx, "short", 1)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for name, f := range map[string]func() error{
		"zero rows":          func() error { return o.CrossEntropyForward(s, x, x, x, 0, 5, 0) },
		"zero vocab":         func() error { return o.CrossEntropyForward(s, x, x, x, 2, 0, 0) },
		"logits too short":   func() error { return o.CrossEntropyForward(s, x, x, x, 2, 60, 0) },
		"targets too short":  func() error { return o.CrossEntropyForward(s, x, short, x, 2, 5, 0) },
		"losses nil":         func() error { return o.CrossEntropyForward(s, x, x, nil, 2, 5, 0) },
		"dlogits too short":  func() error { return o.CrossEntropyBackward(s, x, x, short, x, 2, 5, 0) },
		"step params short":  func() error { return o.CrossEntropyBackward(s, x, x, x, short, 2, 5, 0) },
		"step params absent": func() error { return o.CrossEntropyBackward(s, x, x, x, nil, 2, 5, 0) },
		"stride < vocab":     func() error { return o.CrossEntropyForwardStrided(s, x, x, x, 2, 5, 4, 0) },
		"strided too short":  func() error { return o.CrossEntropyBackwardStrided(s, x, x, x, nil, x, 2, 5, 60, 0, 0) },
		"losses too short":   func() error { return o.CrossEntropyBackwardStrided(s, x, x, x, short, x, 2, 5, 8, 0, 0) },
		"smoothing 1":        func() error { return o.CrossEntropyBackwardStrided(s, x, x, x, nil, x, 2, 5, 8, 0, 1) },
		"smoothing negative": func() error { return o.CrossEntropyBackwardStrided(s, x, x, x, nil, x, 2, 5, 8, 0, -0.1) },
		"smoothing NaN": func() error {
			return o.CrossEntropyBackwardStrided(s, x, x, x, nil, x, 2, 5, 8, 0, float32(math.NaN()))
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
