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

// adamwHyper are the hyperparameters of the AdamW tests: a large learning rate and decay so
// the update is a sizeable part of each parameter and its errors show.
var adamwHyper = ref.AdamW{LR: 0.05, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}

// adamwStep is the StepParams of step t under adamwHyper.
func adamwStep(t int) ops.StepParams {
	h := adamwHyper
	return ops.StepParams{LR: h.LR, Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps, WeightDecay: h.WeightDecay, Step: t}
}

func TestStepParamsEncode(t *testing.T) {
	p := ops.StepParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: 3, Tokens: 7}
	got, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]float64{
		ops.StepBeta1: 0.9, ops.StepOneMinusBeta1: 0.1, ops.StepBeta2: 0.999, ops.StepOneMinusBeta2: 0.001,
		ops.StepEps: 1e-8, ops.StepDecayFactor: 1 - 1e-4, ops.StepSize: 1e-3 / (1 - 0.9*0.9*0.9),
		ops.StepInvBias2Sqrt: 1 / math.Sqrt(1-0.999*0.999*0.999), ops.StepClipScale: 1, ops.StepGradNorm: 0,
		ops.StepLossScale: 1.0 / 7,
	}
	if len(got) != ops.StepParamsLen || len(want) != ops.StepParamsLen {
		t.Fatalf("%d slots encoded, %d checked, want %d", len(got), len(want), ops.StepParamsLen)
	}
	for slot, w := range want {
		if got[slot] != float32(w) {
			t.Errorf("slot %d = %v, want %v", slot, got[slot], float32(w))
		}
	}
	p.Tokens = 0
	if got, _ := p.Encode(); got[ops.StepLossScale] != 0 {
		t.Errorf("loss scale with no tokens = %v, want 0", got[ops.StepLossScale])
	}
	for _, bad := range []ops.StepParams{{Step: 0, Beta1: 0.9}, {Step: 1, Tokens: -1}, {Step: 1, Beta1: 1}, {Step: 1, Beta2: -0.5}} {
		if _, err := bad.Encode(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// TestAdamW records one AdamW update and replays it for several steps, writing the step
// parameters and new gradients between replays as training does, with both variants
// (storage-buffer and texel-view reads) against the float64 reference; the two must give the
// same bits, as they differ only in how they load.
func TestAdamW(t *testing.T) {
	ctx, _ := newOps(t)
	const steps = 4
	firstRun := map[string][][3][]float32{} // by case, the first variant's results
	for _, variant := range []string{"default", "texel"} {
		o, err := withEntry(t, ctx, profile.Entry{Op: "adamw", Variant: variant, Params: map[string]int{"wg_x": 32}})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 5))
		for _, c := range []struct {
			n     int
			decay bool
			clip  float32
		}{
			{1, true, 1}, {7, false, 1}, {65, true, 0.37}, {1000, false, 0.5}, {9001, true, 1},
			{70001, false, 0.8}, // three workgroups of 32 x 256 vec4 blocks, the last partial
		} {
			name := fmt.Sprintf("n%d_decay%v_clip%v", c.n, c.decay, c.clip)
			t.Run(variant+"/"+name, func(t *testing.T) {
				got := testAdamWCase(t, ctx, o, rng, c.n, steps, c.decay, c.clip)
				if first, ok := firstRun[name]; !ok {
					firstRun[name] = got
				} else if !equalRuns(got, first) {
					t.Error("the variants gave different bits")
				}
			})
		}
	}
}

// testAdamWCase trains n parameters for steps steps of random gradients drawn from rng,
// checks every step against the float64 reference and a second run's bits, and returns
// param, m and v after each step.
func testAdamWCase(t *testing.T, ctx *vk.Context, o *ops.Ops, rng *rand.Rand, n, steps int, decay bool, clip float32) [][3][]float32 {
	p0 := randoms(rng, n)
	grads := make([][]float32, steps)
	for i := range grads {
		grads[i] = randoms(rng, n)
	}
	param := vktest.NewPadded(t, ctx, "param", n, nil)
	grad := vktest.NewPadded(t, ctx, "grad", n, nil)
	m := vktest.NewPadded(t, ctx, "m", n, nil)
	v := vktest.NewPadded(t, ctx, "v", n, nil)
	step := vktest.NewPadded(t, ctx, "step", ops.StepParamsLen, nil)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := o.AdamW(s, param, grad, m, v, step, n, decay); err != nil {
		t.Fatal(err)
	}

	// train runs the steps from the initial state and returns param, m and v after each.
	train := func() [][3][]float32 {
		write(t, param, 0, p0)
		write(t, m, 0, make([]float32, n))
		write(t, v, 0, make([]float32, n))
		var out [][3][]float32
		for i := range steps {
			if err := adamwStep(i + 1).Write(step); err != nil {
				t.Fatal(err)
			}
			write(t, step, ops.StepClipScale, []float32{clip})
			write(t, grad, 0, grads[i])
			if err := s.Run(); err != nil {
				t.Fatal(err)
			}
			out = append(out, [3][]float32{read(t, param), read(t, m), read(t, v)})
		}
		return out
	}
	got := train()

	wp, wm, wv := ref.F64(p0), make([]float64, n), make([]float64, n)
	for i := range steps {
		g := ref.F64(grads[i])
		for j := range g {
			g[j] *= float64(clip)
		}
		adamwHyper.Update(wp, g, wm, wv, i+1, decay)
		for k, w := range [][]float64{wp, wm, wv} {
			name := []string{"param", "m", "v"}[k]
			if e := vktest.NSE(got[i][k], w); e > 1e-7 {
				t.Errorf("step %d, %s: normalised squared error %g", i+1, name, e)
			}
			vktest.CheckSentinels(t, name, got[i][k], n)
		}
	}
	if again := train(); !equalRuns(again, got) {
		t.Error("a second run gave different bits")
	}
	return got
}

// equalRuns reports whether two AdamW runs gave the same bits at every step.
func equalRuns(a, b [][3][]float32) bool {
	return slices.EqualFunc(a, b, func(a, b [3][]float32) bool {
		return slices.Equal(a[0], b[0]) && slices.Equal(a[1], b[1]) && slices.Equal(a[2], b[2])
	})
}

// write copies data into x from element at.
func write(t *testing.T, x *vk.Tensor, at int, data []float32) {
	t.Helper()
	if err := x.WriteFloat32(at, data); err != nil {
		t.Fatal(err)
	}
}

func TestAdamWShapeErrors(t *testing.T) {
	ctx, o := newOps(t)
	x, short := newPlain(t, ctx, "x", 100), newPlain(t, ctx, "short", 5)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for name, f := range map[string]func() error{
		"zero n":            func() error { return o.AdamW(s, x, x, x, x, x, 0, true) },
		"grad too short":    func() error { return o.AdamW(s, x, short, x, x, x, 50, true) },
		"v too short":       func() error { return o.AdamW(s, x, x, x, short, x, 50, false) },
		"m missing":         func() error { return o.AdamW(s, x, x, nil, x, x, 50, false) },
		"step params short": func() error { return o.AdamW(s, x, x, x, x, short, 50, false) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
