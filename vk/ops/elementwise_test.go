package ops_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/vktest"
)

// replayTwice records once and runs the sequence twice, restoring outs to their contents from
// before the first run in between (so accumulating kernels see the same inputs). It fails the
// test unless both runs leave bitwise the same outputs, and returns them.
func replayTwice(t *testing.T, ctx *vk.Context, record func(*vk.Sequence) error, outs ...*vk.Tensor) [][]float32 {
	t.Helper()
	before := make([][]float32, len(outs))
	for i, o := range outs {
		before[i] = read(t, o)
	}
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := record(s); err != nil {
		t.Fatal(err)
	}
	var runs [2][][]float32
	for r := range runs {
		for i, o := range outs {
			if err := o.WriteFloat32(0, before[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			runs[r] = append(runs[r], read(t, o))
		}
	}
	for i, o := range outs {
		for j := range runs[0][i] {
			if math.Float32bits(runs[0][i][j]) != math.Float32bits(runs[1][i][j]) {
				t.Fatalf("%s[%d]: %v on the first run, %v on the second: not deterministic", o.Name, j, runs[0][i][j], runs[1][i][j])
			}
		}
	}
	return runs[0]
}

// checkNSE fails the test when the first len(want) elements of got are further than tol from
// want (normalised squared error), or when anything after them is not a sentinel.
func checkNSE(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if e := vktest.NSE(got, want); !(e <= tol) {
		t.Errorf("%s: normalised squared error %g > %g", name, e, tol)
	}
	vktest.CheckSentinels(t, name, got, len(want))
}

// checkFD compares a kernel's gradient with central differences of the float64 loss at x.
func checkFD(t *testing.T, name string, got []float32, loss func([]float64) float64, x []float64) {
	t.Helper()
	want := ref.NumericGrad(loss, x, 1e-5)
	// Measured: at most about 1e-13 (fp32 rounding and the h^2 truncation error).
	if e := vktest.NSE(got, want); !(e <= 1e-8) {
		t.Errorf("%s against finite differences: normalised squared error %g > 1e-8", name, e)
	}
}

// plus returns a + b with a widened.
func plus(a []float32, b []float64) []float64 {
	out := make([]float64, len(b))
	for i := range b {
		out[i] = float64(a[i]) + b[i]
	}
	return out
}

// newUint32s allocates a tensor holding exactly data.
func newUint32s(t *testing.T, ctx *vk.Context, name string, data []uint32) *vk.Tensor {
	t.Helper()
	x, err := ctx.NewTensor(name, len(data))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Free)
	if err := x.WriteUint32(0, data); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestAdd(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(10, 1))
	for _, n := range []int{1, 7, 64, 1001} {
		for _, inPlace := range []bool{false, true} {
			t.Run(fmt.Sprintf("n%d_inplace%v", n, inPlace), func(t *testing.T) {
				as, bs := randoms(rng, n), randoms(rng, n)
				a := vktest.NewPadded(t, ctx, "a", n, as)
				b := vktest.NewPadded(t, ctx, "b", n, bs)
				y := a
				if !inPlace {
					y = vktest.NewPadded(t, ctx, "y", n, nil)
				}
				got := replayTwice(t, ctx, func(s *vk.Sequence) error { return o.Add(s, a, b, y, n) }, y)
				checkNSE(t, "y", got[0], ref.Add(ref.F64(as), ref.F64(bs)), 1e-7)
			})
		}
	}
}

func TestAddBiasAndBiasGrad(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(11, 1))
	for _, sh := range [][2]int{{1, 1}, {1, 5}, {3, 7}, {17, 67}, {64, 33}, {2, 130}, {1, 4}, {3, 8}, {5, 64}, {7, 132}} {
		rows, cols := sh[0], sh[1]
		t.Run(fmt.Sprintf("%dx%d", rows, cols), func(t *testing.T) {
			xs, bs, dys, d0 := randoms(rng, rows*cols), randoms(rng, cols), randoms(rng, rows*cols), randoms(rng, cols)
			y := vktest.NewPadded(t, ctx, "y", rows*cols, xs)
			bias := vktest.NewPadded(t, ctx, "bias", cols, bs)
			dy := vktest.NewPadded(t, ctx, "dy", rows*cols, dys)
			dbias := vktest.NewPadded(t, ctx, "dbias", cols, nil) // from zero: the gradient itself
			dbiasAcc := vktest.NewPadded(t, ctx, "dbiasAcc", cols, d0)
			got := replayTwice(t, ctx, func(s *vk.Sequence) error {
				if err := o.AddBias(s, y, bias, rows, cols); err != nil {
					return err
				}
				if err := o.BiasGrad(s, dy, dbias, rows, cols); err != nil {
					return err
				}
				return o.BiasGrad(s, dy, dbiasAcc, rows, cols)
			}, y, dbias, dbiasAcc)
			x64, dy64 := ref.F64(xs), ref.F64(dys)
			checkNSE(t, "y", got[0], ref.AddBias(x64, ref.F64(bs), rows, cols), 1e-7)
			want := ref.BiasGrad(dy64, rows, cols)
			checkNSE(t, "dbias", got[1], want, 1e-6)
			checkNSE(t, "dbias accumulated", got[2], plus(d0, want), 1e-6)
			checkFD(t, "dbias", got[1], func(b []float64) float64 { return ref.Dot(ref.AddBias(x64, b, rows, cols), dy64) }, ref.F64(bs))
		})
	}
}

func TestGelu(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(12, 1))
	extremes := []float32{0, float32(math.Copysign(0, -1)), -1e20, -100, -20, -19.9, -10, -5, 5, 10, 19.9, 20, 100, 1e20}
	for _, n := range []int{1, 7, 64, 1001} {
		for _, accumulate := range []bool{false, true} {
			t.Run(fmt.Sprintf("n%d_acc%v", n, accumulate), func(t *testing.T) {
				xs := randoms(rng, n)
				for i := range xs {
					xs[i] *= 4
				}
				k := 0 // leading extremes, left out of the finite differences (gelu is element-wise)
				if n >= 64 {
					k = copy(xs, extremes)
				}
				dys, d0 := randoms(rng, n), randoms(rng, n) // d0: overwritten unless accumulating
				x := vktest.NewPadded(t, ctx, "x", n, xs)
				y := vktest.NewPadded(t, ctx, "y", n, nil)
				dy := vktest.NewPadded(t, ctx, "dy", n, dys)
				dx := vktest.NewPadded(t, ctx, "dx", n, d0)
				got := replayTwice(t, ctx, func(s *vk.Sequence) error {
					if err := o.GeluForward(s, x, y, n); err != nil {
						return err
					}
					return o.GeluBackward(s, x, dy, dx, n, accumulate)
				}, y, dx)
				x64, dy64 := ref.F64(xs), ref.F64(dys)
				checkNSE(t, "y", got[0], ref.GeluForward(x64), 1e-7)
				want := ref.GeluBackward(x64, dy64)
				if accumulate {
					want = plus(d0, want)
				}
				checkNSE(t, "dx", got[1], want, 1e-7)
				if !accumulate {
					checkFD(t, "dx", got[1][k:n], func(x []float64) float64 { return ref.Dot(ref.GeluForward(x), dy64[k:]) }, x64[k:])
				}
				for i, v := range got[1][:n] {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.IsNaN(float64(got[0][i])) {
						t.Fatalf("x = %v: y = %v, dx = %v", xs[i], got[0][i], v)
					}
				}
			})
		}
	}
}

func TestGeluInPlace(t *testing.T) {
	ctx, o := newOps(t)
	xs := randoms(rand.New(rand.NewPCG(13, 1)), 100)
	x := vktest.NewPadded(t, ctx, "x", len(xs), xs)
	dy := vktest.NewPadded(t, ctx, "dy", len(xs), xs)
	got := replayTwice(t, ctx, func(s *vk.Sequence) error {
		if err := o.GeluBackward(s, x, dy, dy, len(xs), false); err != nil {
			return err
		}
		return o.GeluForward(s, x, x, len(xs))
	}, x, dy)
	x64 := ref.F64(xs)
	checkNSE(t, "y", got[0], ref.GeluForward(x64), 1e-7)
	checkNSE(t, "dx", got[1], ref.GeluBackward(x64, x64), 1e-7)
}

// TestElementwiseShapeErrors checks that every op of this task (element-wise, layernorm,
// embedding, dropout) refuses bad shapes and arguments with an error, before recording anything.
func TestElementwiseShapeErrors(t *testing.T) {
	ctx, o := newOps(t)
	small := vktest.NewPadded(t, ctx, "small", 4, nil) // 4 + Pad elements
	big := vktest.NewPadded(t, ctx, "big", 1000, nil)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"add n=0", func() error { return o.Add(s, big, big, big, 0) }},
		{"add small b", func() error { return o.Add(s, big, small, big, 100) }},
		{"add nil y", func() error { return o.Add(s, big, big, nil, 10) }},
		{"add bias small", func() error { return o.AddBias(s, big, small, 2, 100) }},
		{"add bias rows=0", func() error { return o.AddBias(s, big, big, 0, 10) }},
		{"bias grad small dy", func() error { return o.BiasGrad(s, small, big, 10, 10) }},
		{"gelu small y", func() error { return o.GeluForward(s, big, small, 100) }},
		{"gelu backward neg n", func() error { return o.GeluBackward(s, big, big, big, -1, false) }},
		{"layernorm small mean", func() error { return o.LayerNormForward(s, big, big, big, big, small, big, 100, 5, 1e-5) }},
		{"layernorm neg eps", func() error { return o.LayerNormForward(s, big, big, big, big, big, big, 10, 5, -1) }},
		{"layernorm nan eps", func() error {
			return o.LayerNormForward(s, big, big, big, big, big, big, 10, 5, float32(math.NaN()))
		}},
		{"layernorm huge", func() error {
			return o.LayerNormForward(s, big, big, big, big, big, big, 1<<20, 1<<20, 1e-5)
		}},
		{"layernorm backward small dgamma", func() error {
			return o.LayerNormBackward(s, big, big, big, big, big, big, small, big, 10, 50, false)
		}},
		{"embedding small out", func() error { return o.EmbeddingForward(s, big, big, small, 10, 10, false) }},
		{"embedding table below a row", func() error { return o.EmbeddingForward(s, big, small, big, 10, 100, false) }},
		{"embedding backward small ids", func() error { return o.EmbeddingBackward(s, small, big, big, 100, 2) }},
		{"dropout p=1", func() error { return o.DropoutForward(s, big, big, big, 10, 1) }},
		{"dropout p<0", func() error { return o.DropoutForward(s, big, big, big, 10, -0.1) }},
		{"dropout p=NaN", func() error { return o.DropoutForward(s, big, big, big, 10, float32(math.NaN())) }},
		{"dropout nil rng", func() error { return o.DropoutBackward(s, big, big, nil, 10, 0.1, true) }},
	} {
		if err := c.call(); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if n := s.Dispatches(); n != 0 {
		t.Errorf("%d dispatches recorded by refused calls", n)
	}
}

// TestRowGridBeyondY runs the row-grid kernels (AddBias, EmbeddingForward) over more rows than
// the device allows workgroups along y, so the rows spread over y and z.
func TestRowGridBeyondY(t *testing.T) {
	ctx, o := newOps(t)
	maxY := int(ctx.Info.MaxWorkgroupCount[1])
	if maxY > 1<<20 {
		t.Skipf("the device allows %d workgroups along y: too many rows to test cheaply", maxY)
	}
	rng := rand.New(rand.NewPCG(14, 1))
	rows, cols := maxY+5, 3
	xs, bs := randoms(rng, rows*cols), randoms(rng, cols)
	ids := make([]uint32, rows)
	for i := range ids {
		ids[i] = uint32(rng.IntN(4))
	}
	y := vktest.NewPadded(t, ctx, "y", rows*cols, xs)
	bias := vktest.NewPadded(t, ctx, "bias", cols, bs)
	table := vktest.NewPadded(t, ctx, "table", 4*cols, xs[:4*cols])
	out := vktest.NewPadded(t, ctx, "out", rows*cols, nil)
	idT := newUint32s(t, ctx, "ids", ids)
	got := replayTwice(t, ctx, func(s *vk.Sequence) error {
		if err := o.AddBias(s, y, bias, rows, cols); err != nil {
			return err
		}
		return o.EmbeddingForward(s, idT, table, out, rows, cols, false)
	}, y, out)
	checkNSE(t, "y", got[0], ref.AddBias(ref.F64(xs), ref.F64(bs), rows, cols), 1e-7)
	checkNSE(t, "out", got[1], ref.EmbeddingForward(ids, ref.F64(xs[:4*cols]), cols), 1e-7)
}
