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

// attentionCase is one attention shape; lens, when set, gives each batch entry's number of real
// tokens (the rest is trailing padding, masked through KeyValid).
type attentionCase struct {
	b, t, h, dh int
	causal      bool
	lens        []int
	fd          bool // also check the backward against finite differences (small shapes only)
}

func (c attentionCase) String() string {
	s := fmt.Sprintf("B%d_T%d_H%d_Dh%d", c.b, c.t, c.h, c.dh)
	if c.causal {
		s += "_causal"
	}
	if c.lens != nil {
		s += fmt.Sprint("_lens", c.lens)
	}
	return s
}

func (c attentionCase) keyValid() []uint32 {
	if c.lens == nil {
		return nil
	}
	kv := make([]uint32, c.b*c.t)
	for b, n := range c.lens {
		for t := 0; t < n; t++ {
			kv[b*c.t+t] = 1
		}
	}
	return kv
}

func (c attentionCase) ref() ref.Attention {
	return ref.Attention{B: c.b, T: c.t, H: c.h, Dh: c.dh, Causal: c.causal, KeyValid: c.keyValid()}
}

var attentionCases = []attentionCase{
	{b: 1, t: 1, h: 1, dh: 8, fd: true},
	{b: 1, t: 1, h: 1, dh: 8, causal: true, fd: true},
	{b: 2, t: 7, h: 2, dh: 8, causal: true, fd: true},
	{b: 2, t: 9, h: 2, dh: 16, lens: []int{9, 6}, fd: true},
	{b: 3, t: 5, h: 2, dh: 8, lens: []int{5, 0, 2}, fd: true}, // entry 1 is all padding
	{b: 2, t: 13, h: 1, dh: 32, causal: true, lens: []int{6, 13}, fd: true},
	{b: 1, t: 3, h: 2, dh: 5, fd: true},
	{b: 2, t: 141, h: 2, dh: 16, causal: true},         // more rows than a workgroup takes
	{b: 2, t: 133, h: 1, dh: 64, lens: []int{133, 70}}, // the largest head size
}

// attentionParts returns the normalised squared error of got against want separately for the
// q, k and v parts of a packed (B, T, 3, H, Dh) tensor.
func attentionParts(got []float32, want []float64, d int) [3]float64 {
	var g [3][]float32
	var w [3][]float64
	for i, v := range want {
		part := i / d % 3
		g[part] = append(g[part], got[i])
		w[part] = append(w[part], v)
	}
	return [3]float64{vktest.NSE(g[0], w[0]), vktest.NSE(g[1], w[1]), vktest.NSE(g[2], w[2])}
}

func checkParts(t *testing.T, what string, got []float32, want []float64, d int, tol float64) {
	t.Helper()
	for i, e := range attentionParts(got, want, d) {
		if !(e <= tol) {
			t.Errorf("%s d%c: normalised squared error %g > %g", what, "QKV"[i], e, tol)
		}
	}
}

func TestAttention(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range attentionCases {
		t.Run(c.String(), func(t *testing.T) {
			d := c.h * c.dh
			nQKV, nOut, nLSE := c.b*c.t*3*d, c.b*c.t*d, c.b*c.h*c.t
			qkv := randoms(rng, nQKV)
			for i := range qkv {
				qkv[i] *= 2 // sharper softmax rows
			}
			dy := randoms(rng, nOut)
			a := ops.Attention{B: c.b, T: c.t, H: c.h, Dh: c.dh, Causal: c.causal,
				QKV: vktest.NewPadded(t, ctx, "qkv", nQKV, qkv),
				Out: vktest.NewPadded(t, ctx, "out", nOut, nil),
				LSE: vktest.NewPadded(t, ctx, "lse", nLSE, nil)}
			if kv := c.keyValid(); kv != nil {
				a.KeyValid = vktest.NewPadded(t, ctx, "keyValid", len(kv), nil)
				if err := a.KeyValid.WriteUint32(0, kv); err != nil {
					t.Fatal(err)
				}
			}
			dOut := vktest.NewPadded(t, ctx, "dOut", nOut, dy)
			dQKV := vktest.NewPadded(t, ctx, "dQKV", nQKV, randoms(rng, nQKV)) // stale values to overwrite

			ra := c.ref()
			wantProbs, _ := ref.AttentionProbs(ra, ref.F64(qkv))
			wantOut, wantLSE := ref.AttentionForward(ra, ref.F64(qkv))
			wantD := ref.AttentionBackward(ra, ref.F64(qkv), ref.F64(dy))

			run(t, ctx, func(s *vk.Sequence) error {
				if err := o.AttentionForward(s, a); err != nil {
					return err
				}
				return o.AttentionBackward(s, a, dOut, dQKV)
			})
			out, lse, dq := read(t, a.Out), read(t, a.LSE), read(t, dQKV)
			for _, x := range []struct {
				name string
				got  []float32
				want []float64
			}{{"out", out, wantOut}, {"lse", lse, wantLSE}} {
				if e := vktest.NSE(x.got, x.want); !(e <= 1e-6) {
					t.Errorf("fused %s: normalised squared error %g", x.name, e)
				}
				vktest.CheckSentinels(t, x.name, x.got, len(x.want))
			}
			checkParts(t, "backward vs reference", dq, wantD, d, 1e-6)
			vktest.CheckSentinels(t, "dQKV", dq, nQKV)
			checkEmptyRows(t, c, out, lse)

			// The unfused path: probabilities, then matmul.
			probs := vktest.NewPadded(t, ctx, "probs", len(wantProbs), nil)
			u := a
			u.Out = vktest.NewPadded(t, ctx, "out2", nOut, nil)
			u.LSE = vktest.NewPadded(t, ctx, "lse2", nLSE, nil)
			run(t, ctx, func(s *vk.Sequence) error { return o.AttentionForwardUnfused(s, u, probs) })
			for _, x := range []struct {
				name string
				got  []float32
				want []float64
			}{{"probs", read(t, probs), wantProbs}, {"out", read(t, u.Out), wantOut}, {"lse", read(t, u.LSE), wantLSE}} {
				if e := vktest.NSE(x.got, x.want); !(e <= 1e-6) {
					t.Errorf("unfused %s: normalised squared error %g", x.name, e)
				}
				vktest.CheckSentinels(t, "unfused "+x.name, x.got, len(x.want))
			}
			if e := vktest.NSE(read(t, u.Out), ref.F64(out[:nOut])); !(e <= 1e-6) {
				t.Errorf("fused vs unfused out: normalised squared error %g", e)
			}

			// Determinism: a second run gives the same bits.
			run(t, ctx, func(s *vk.Sequence) error {
				if err := o.AttentionForward(s, a); err != nil {
					return err
				}
				return o.AttentionBackward(s, a, dOut, dQKV)
			})
			if !slices.Equal(read(t, a.Out), out) || !slices.Equal(read(t, a.LSE), lse) || !slices.Equal(read(t, dQKV), dq) {
				t.Errorf("a second run differs")
			}

			if !c.fd {
				return
			}
			// Finite differences of the reference forward, L = sum(out * dy).
			x, dyf := ref.F64(qkv), ref.F64(dy)
			numeric := ref.NumericGrad(func(x []float64) float64 {
				y, _ := ref.AttentionForward(ra, x)
				return ref.Dot(y, dyf)
			}, x, 1e-4)
			for i, e := range attentionParts(float32s(wantD), numeric, d) {
				if !(e <= 1e-12) {
					t.Errorf("reference backward vs finite differences d%c: normalised squared error %g", "QKV"[i], e)
				}
			}
			checkParts(t, "backward vs finite differences", dq, numeric, d, 1e-6)
		})
	}
}

// float32s narrows a float64 slice (a helper to reuse attentionParts on two float64 results).
func float32s(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// checkEmptyRows checks that query rows with no allowed key give exactly o = 0 and lse = 0, and
// that no output is NaN.
func checkEmptyRows(t *testing.T, c attentionCase, out, lse []float32) {
	t.Helper()
	for i, v := range out[:c.b*c.t*c.h*c.dh] {
		if math.IsNaN(float64(v)) {
			t.Fatalf("out[%d] is NaN", i)
		}
	}
	for b, n := range c.lens {
		if n != 0 {
			continue
		}
		for i := 0; i < c.t*c.h*c.dh; i++ {
			if v := out[b*c.t*c.h*c.dh+i]; v != 0 {
				t.Fatalf("batch entry %d has no keys but out[%d] = %v", b, i, v)
			}
		}
		for i := 0; i < c.h*c.t; i++ {
			if v := lse[b*c.h*c.t+i]; v != 0 {
				t.Fatalf("batch entry %d has no keys but lse[%d] = %v", b, i, v)
			}
		}
	}
}

func TestAttentionShapeErrors(t *testing.T) {
	ctx, o := newOps(t)
	x := vktest.NewPadded(t, ctx, "x", 3*2*4*8, nil)
	y := vktest.NewPadded(t, ctx, "y", 3*2*4*8, nil)
	z := vktest.NewPadded(t, ctx, "z", 3*2*4*8, nil)
	ok := ops.Attention{QKV: x, Out: y, LSE: z, B: 2, T: 4, H: 1, Dh: 8}
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	bad := func(change func(*ops.Attention)) ops.Attention {
		a := ok
		change(&a)
		return a
	}
	for _, a := range []ops.Attention{
		bad(func(a *ops.Attention) { a.Dh = 0 }),
		bad(func(a *ops.Attention) { a.Dh = ops.MaxHeadSize + 1 }),
		bad(func(a *ops.Attention) { a.T = 0 }),
		bad(func(a *ops.Attention) { a.H = 4 }), // qkv needs 2*4*3*4*8 elements
		bad(func(a *ops.Attention) { a.QKV = nil }),
		bad(func(a *ops.Attention) { a.Out = a.QKV }),
		bad(func(a *ops.Attention) { a.KeyValid = a.LSE }),
	} {
		if err := o.AttentionForward(s, a); err == nil {
			t.Errorf("forward accepted %+v", a)
		}
	}
	if err := o.AttentionBackward(s, ok, x, z); err == nil {
		t.Errorf("backward accepted dQKV = LSE")
	}
	small, err := ctx.NewTensor("small", 8)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Free()
	if err := o.AttentionForwardUnfused(s, ok, small); err == nil {
		t.Errorf("unfused accepted a probs tensor that is too small")
	}
}
