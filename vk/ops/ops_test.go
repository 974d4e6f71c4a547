package ops_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

func newOps(t *testing.T) (*vk.Context, *ops.Ops) {
	t.Helper()
	ctx := vktest.Open(t)
	o, err := ops.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, o
}

func randoms(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

// run records one op into a fresh sequence and runs it.
var run = vktest.Run

func read(t *testing.T, x *vk.Tensor) []float32 {
	t.Helper()
	v, err := x.ReadFloat32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFillAndAxpy(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 7, 64, 1000, 4097} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			xs, ys := randoms(rng, n), randoms(rng, n)
			x := vktest.NewPadded(t, ctx, "x", n, xs)
			y := vktest.NewPadded(t, ctx, "y", n, ys)
			f := vktest.NewPadded(t, ctx, "f", n, nil)
			run(t, ctx, func(s *vk.Sequence) error {
				if err := o.Fill(s, f, n, 2.5); err != nil {
					return err
				}
				return o.Axpy(s, x, y, n, 0.75, -1.5)
			})
			got, fill := read(t, y), read(t, f)
			want := make([]float64, n)
			for i := range want {
				want[i] = 0.75*float64(xs[i]) - 1.5*float64(ys[i])
				if fill[i] != 2.5 {
					t.Fatalf("fill[%d] = %v", i, fill[i])
				}
			}
			if e := vktest.NSE(got, want); e > 1e-7 {
				t.Fatalf("axpy: normalised squared error %g", e)
			}
			vktest.CheckSentinels(t, "axpy", got, n)
			vktest.CheckSentinels(t, "fill", fill, n)

			run(t, ctx, func(s *vk.Sequence) error { return o.Scale(s, x, n, -3) })
			got = read(t, x)
			for i := range want {
				want[i] = -3 * float64(xs[i])
			}
			if e := vktest.NSE(got, want); e > 1e-7 {
				t.Fatalf("scale: normalised squared error %g", e)
			}
			vktest.CheckSentinels(t, "scale", got, n)
		})
	}
}
