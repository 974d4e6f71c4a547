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
	"github.com/vktrain/vktrain/vk/profile"
	"github.com/vktrain/vktrain/vk/vktest"
)

// newGrads allocates one tensor per size (unpadded: GradNorm sums whole tensors), with random values of magnitude up to scale.
func newGrads(t *testing.T, ctx *vk.Context, rng *rand.Rand, sizes []int) ([]*vk.Tensor, [][]float64) {
	t.Helper()
	var tensors []*vk.Tensor
	var values [][]float64
	for i, n := range sizes {
		x := randoms(rng, n)
		scale := float32(math.Pow(10, float64(i%5-2)))
		for j := range x {
			x[j] *= scale
		}
		g := newPlain(t, ctx, fmt.Sprint("grad", i), n)
		write(t, g, 0, x)
		tensors = append(tensors, g)
		values = append(values, ref.F64(x))
	}
	return tensors, values
}

// newPartials allocates the padded partials tensor GradNorm needs for grads.
func newPartials(t *testing.T, ctx *vk.Context, o *ops.Ops, grads []*vk.Tensor) (*vk.Tensor, int) {
	t.Helper()
	n, err := o.SumSquaresPartialsLen(grads)
	if err != nil {
		t.Fatal(err)
	}
	return vktest.NewPadded(t, ctx, "partials", n, nil), n
}

// reduceVariants returns ops running GradNorm's first pass through storage-buffer loads and
// through texel views, both with 16 partial sums per workgroup.
func reduceVariants(t *testing.T, ctx *vk.Context) map[string]*ops.Ops {
	out := map[string]*ops.Ops{}
	for _, v := range []string{"default", "texel"} {
		o, err := withEntry(t, ctx, profile.Entry{Op: "reduce", Variant: v, Params: map[string]int{"wg_x": 16}})
		if err != nil {
			t.Fatal(err)
		}
		out[v] = o
	}
	return out
}

func TestGradNorm(t *testing.T) {
	ctx, _ := newOps(t)
	for variant, o := range reduceVariants(t, ctx) {
		t.Run(variant, func(t *testing.T) { testGradNorm(t, ctx, o) })
	}
}

func testGradNorm(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(9, 9))
	many := make([]int, 70) // enough partial sums for two summing passes (16 per workgroup)
	for i := range many {
		many[i] = 1 + rng.IntN(200)
	}
	for _, c := range []struct {
		name  string
		sizes []int
	}{
		{"one tiny", []int{1}},
		{"odd sizes", []int{7, 1, 300, 4097}},
		{"many", many},
		{"large and tiny", []int{300001, 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			grads, values := newGrads(t, ctx, rng, c.sizes)
			partials, np := newPartials(t, ctx, o, grads)
			norm := ref.GradNorm(values...)
			for _, maxNorm := range []float64{0, -1, 2 * norm, norm / 3} {
				// Known values in every slot, to see that only the norm and the scale change.
				init := make([]float32, ops.StepParamsLen)
				for i := range init {
					init[i] = float32(i) + 0.5
				}
				step := vktest.NewPadded(t, ctx, "step", ops.StepParamsLen, init)
				record := func(s *vk.Sequence) error {
					return o.GradNorm(s, grads, partials, step, float32(maxNorm))
				}
				run(t, ctx, record)
				got := read(t, step)
				if e := vktest.NSE(got[ops.StepGradNorm:ops.StepGradNorm+1], []float64{norm}); e > 1e-6 {
					t.Errorf("maxNorm %g: norm %v, want %v", maxNorm, got[ops.StepGradNorm], norm)
				}
				scale := ref.ClipScale(norm, maxNorm)
				if e := vktest.NSE(got[ops.StepClipScale:ops.StepClipScale+1], []float64{scale}); e > 1e-6 {
					t.Errorf("maxNorm %g: clip scale %v, want %v", maxNorm, got[ops.StepClipScale], scale)
				}
				if scale == 1 && got[ops.StepClipScale] != 1 { // clipping off, or the norm is below maxNorm
					t.Errorf("maxNorm %g: clip scale %v, want exactly 1", maxNorm, got[ops.StepClipScale])
				}
				for i := range init {
					if i != ops.StepGradNorm && i != ops.StepClipScale && got[i] != init[i] {
						t.Errorf("slot %d changed from %v to %v", i, init[i], got[i])
					}
				}
				vktest.CheckSentinels(t, "step", got, ops.StepParamsLen)
				vktest.CheckSentinels(t, "partials", read(t, partials), np)
				run(t, ctx, record)
				if again := read(t, step); !slices.Equal(again, got) {
					t.Errorf("maxNorm %g: a second run gave different bits", maxNorm)
				}
			}
		})
	}
}

// TestGradNormIgnoresMemoryPastTheEnd puts infinities right after a gradient's last element
// (in the arena, where a freed tensor held them): the texel variant reads whole vec4 blocks, and
// must drop what lies past the tensor's end without letting it into the sum.
func TestGradNormIgnoresMemoryPastTheEnd(t *testing.T) {
	ctx, _ := newOps(t)
	for variant, o := range reduceVariants(t, ctx) {
		t.Run(variant, func(t *testing.T) {
			junk := newPlain(t, ctx, "junk", 64)
			inf := make([]float32, 64)
			for i := range inf {
				inf[i] = float32(math.Inf(1))
			}
			write(t, junk, 0, inf)
			junk.Free() // the arena hands its span to the next tensor that fits
			g := newPlain(t, ctx, "grad", 5)
			x := []float32{1, 2, 3, 4, 5}
			write(t, g, 0, x)
			partials, _ := newPartials(t, ctx, o, []*vk.Tensor{g})
			step := newStepParams(t, ctx, adamwStep(1))
			run(t, ctx, func(s *vk.Sequence) error { return o.GradNorm(s, []*vk.Tensor{g}, partials, step, 0) })
			if got, want := read(t, step)[ops.StepGradNorm], float32(math.Sqrt(55)); got != want {
				t.Errorf("norm %v, want %v", got, want)
			}
		})
	}
}

// TestGradNormThenAdamW runs a clipped optimizer step in one sequence: the norm and clip scale
// computed on the device feed the AdamW updates without a host round trip.
func TestGradNormThenAdamW(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(10, 10))
	sizes := []int{5, 130, 1}
	grads, values := newGrads(t, ctx, rng, sizes)
	partials, _ := newPartials(t, ctx, o, grads)
	step := newStepParams(t, ctx, adamwStep(1))
	norm := ref.GradNorm(values...)
	maxNorm := norm / 4
	scale := ref.ClipScale(norm, maxNorm)

	var params, ms, vs []*vk.Tensor
	var p0 [][]float32
	for i, n := range sizes {
		p := randoms(rng, n)
		p0 = append(p0, p)
		params = append(params, vktest.NewPadded(t, ctx, fmt.Sprint("param", i), n, p))
		ms = append(ms, vktest.NewPadded(t, ctx, fmt.Sprint("m", i), n, make([]float32, n)))
		vs = append(vs, vktest.NewPadded(t, ctx, fmt.Sprint("v", i), n, make([]float32, n)))
	}
	run(t, ctx, func(s *vk.Sequence) error {
		if err := o.GradNorm(s, grads, partials, step, float32(maxNorm)); err != nil {
			return err
		}
		for i, n := range sizes {
			if err := o.AdamW(s, params[i], grads[i], ms[i], vs[i], step, n, i != 2); err != nil {
				return err
			}
		}
		return nil
	})
	for i, n := range sizes {
		g := slices.Clone(values[i])
		for j := range g {
			g[j] *= scale
		}
		p, m, v := ref.F64(p0[i]), make([]float64, n), make([]float64, n)
		adamwHyper.Update(p, g, m, v, 1, i != 2)
		got := read(t, params[i])
		if e := vktest.NSE(got, p); e > 1e-7 {
			t.Errorf("param %d: normalised squared error %g", i, e)
		}
		if e := vktest.NSE(read(t, ms[i]), m); e > 1e-7 {
			t.Errorf("m %d: normalised squared error %g", i, e)
		}
		vktest.CheckSentinels(t, "param", got, n)
	}
}

func TestGradNormErrors(t *testing.T) {
	ctx, o := newOps(t)
	x, short := newPlain(t, ctx, "x", 100), newPlain(t, ctx, "short", 3)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for name, f := range map[string]func() error{
		"no grads":          func() error { return o.GradNorm(s, nil, x, x, 1) },
		"nil grad":          func() error { return o.GradNorm(s, []*vk.Tensor{x, nil}, x, x, 1) },
		"partials short":    func() error { return o.GradNorm(s, []*vk.Tensor{x, x}, short, x, 1) },
		"step params short": func() error { return o.GradNorm(s, []*vk.Tensor{short}, x, short, 1) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := o.SumSquaresPartialsLen(nil); err == nil {
		t.Error("SumSquaresPartialsLen accepted no tensors")
	}
}
