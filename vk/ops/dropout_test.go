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

// TestDropoutMask checks the GPU mask against ref.DropoutKeep bit for bit, the kept fraction
// against 1 - p, and the scaling of the kept elements.
func TestDropoutMask(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(20, 1))
	const n = 20011
	for _, c := range []struct {
		p            float32
		seed, offset uint32
	}{
		{0.1, 1, 0},
		{0.5, 0xdeadbeef, 12345},
		{0.9, 42, 0xffffd000}, // offset + i carries into the counter's second word
		{1e-9, 3, 0},
		{0.999, 4, 77},
	} {
		t.Run(fmt.Sprintf("p%v_seed%d_offset%d", c.p, c.seed, c.offset), func(t *testing.T) {
			xs := make([]float32, n)
			for i := range xs {
				xs[i] = 1 + rng.Float32() // never zero, so y != 0 exactly where kept
			}
			x := vktest.NewPadded(t, ctx, "x", n, xs)
			y := vktest.NewPadded(t, ctx, "y", n, nil)
			seeds := newUint32s(t, ctx, "rng", []uint32{c.seed, c.offset})
			got := replayTwice(t, ctx, func(s *vk.Sequence) error { return o.DropoutForward(s, x, y, seeds, n, c.p) }, y)[0]
			keep := ref.DropoutKeep(c.seed, c.offset, n, float64(c.p))
			kept := 0
			for i, k := range keep {
				if (got[i] != 0) != k {
					t.Fatalf("element %d: GPU kept %v, reference %v", i, got[i] != 0, k)
				}
				if k {
					kept++
				}
			}
			p := float64(c.p)
			if sigma := math.Sqrt(p * (1 - p) / n); math.Abs(float64(kept)/n-(1-p)) > 5*sigma+1.0/n {
				t.Errorf("kept %d of %d, expected about %.0f", kept, n, (1-p)*n)
			}
			checkNSE(t, "y", got, ref.Dropout(ref.F64(xs), c.seed, c.offset, p), 1e-7)
		})
	}
}

// TestDropoutZeroIsCopy checks that p = 0 copies x bit for bit, NaN, -0 and infinities included.
func TestDropoutZeroIsCopy(t *testing.T) {
	ctx, o := newOps(t)
	xs := randoms(rand.New(rand.NewPCG(21, 1)), 1000)
	copy(xs, []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), 1e-45, 3e38})
	x := vktest.NewPadded(t, ctx, "x", len(xs), xs)
	y := vktest.NewPadded(t, ctx, "y", len(xs), nil)
	seeds := newUint32s(t, ctx, "rng", []uint32{5, 6})
	got := replayTwice(t, ctx, func(s *vk.Sequence) error { return o.DropoutForward(s, x, y, seeds, len(xs), 0) }, y)[0]
	for i, v := range xs {
		if math.Float32bits(got[i]) != math.Float32bits(v) {
			t.Fatalf("element %d: %v became %v", i, v, got[i])
		}
	}
	vktest.CheckSentinels(t, "y", got, len(xs))
}

// TestDropoutBackward checks dx against the reference and finite differences, with and without
// accumulation, and that a recorded sequence picks up new rng contents on replay.
func TestDropoutBackward(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(22, 1))
	const p = 0.3
	for _, n := range []int{1, 7, 64, 1001} {
		for _, accumulate := range []bool{false, true} {
			t.Run(fmt.Sprintf("n%d_acc%v", n, accumulate), func(t *testing.T) {
				xs, dys, d0 := randoms(rng, n), randoms(rng, n), randoms(rng, n) // d0: overwritten unless accumulating
				x := vktest.NewPadded(t, ctx, "x", n, xs)
				y := vktest.NewPadded(t, ctx, "y", n, nil)
				dy := vktest.NewPadded(t, ctx, "dy", n, dys)
				dx := vktest.NewPadded(t, ctx, "dx", n, d0)
				seeds := newUint32s(t, ctx, "rng", []uint32{9, 100})
				s, err := ctx.NewSequence()
				if err != nil {
					t.Fatal(err)
				}
				defer s.Release()
				if err := o.DropoutForward(s, x, y, seeds, n, p); err != nil {
					t.Fatal(err)
				}
				if err := o.DropoutBackward(s, dy, dx, seeds, n, p, accumulate); err != nil {
					t.Fatal(err)
				}
				x64, dy64 := ref.F64(xs), ref.F64(dys)
				for step, key := range [][2]uint32{{9, 100}, {10, 100 + uint32(n)}} {
					if err := seeds.WriteUint32(0, key[:]); err != nil {
						t.Fatal(err)
					}
					if err := dx.WriteFloat32(0, d0); err != nil {
						t.Fatal(err)
					}
					if err := s.Run(); err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("step %d: ", step)
					checkNSE(t, name+"y", read(t, y), ref.Dropout(x64, key[0], key[1], p), 1e-7)
					got := read(t, dx)
					want := ref.Dropout(dy64, key[0], key[1], p)
					if accumulate {
						want = plus(d0, want)
					}
					checkNSE(t, name+"dx", got, want, 1e-7)
					if !accumulate {
						checkFD(t, name+"dx", got[:n], func(x []float64) float64 { return ref.Dot(ref.Dropout(x, key[0], key[1], p), dy64) }, x64)
					}
				}
			})
		}
	}
}
