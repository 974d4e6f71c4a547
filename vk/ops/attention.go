package ops

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// MaxHeadSize is the largest head size the attention kernels take: a row of q (or k, v) and its
// accumulators live in registers.
const MaxHeadSize = 64

// Attention describes scaled-dot-product attention over B sequences of T tokens with H heads of
// size Dh (d = H*Dh). QKV is the output of the QKV projection, (B, T, 3, H, Dh): q of token t,
// head h at ((b*T+t)*3+0)*d + h*Dh, k at +d, v at +2d. Out is (B, T, H, Dh) = (B*T, d), ready
// for the output projection; LSE holds each query row's log-sum-exp, (B, H, T), saved by the
// forward for the backward. Scores are q.k / sqrt(Dh). Query i does not attend to key j when
// Causal and j > i, nor when KeyValid (B*T uint32, 1 = real token, 0 = padding; nil = none)
// marks key j as padding. A query row with no key left gets o = 0 and lse = 0. There is no
// dropout on the attention probabilities.
type Attention struct {
	QKV, Out, LSE *vk.Tensor
	B, T, H, Dh   int
	Causal        bool
	KeyValid      *vk.Tensor // nil = none
}

// check validates the shape and that every tensor holds it.
func (a Attention) check(op string, more ...shaped) error {
	if a.Dh < 1 || a.Dh > MaxHeadSize {
		return fmt.Errorf("%s: head size %d is outside 1..%d", op, a.Dh, MaxHeadSize)
	}
	args := []shaped{{"QKV", a.QKV, []int{a.B, a.T, 3, a.H, a.Dh}}, {"Out", a.Out, []int{a.B, a.T, a.H, a.Dh}},
		{"LSE", a.LSE, []int{a.B, a.H, a.T}}}
	if a.KeyValid != nil {
		args = append(args, shaped{"KeyValid", a.KeyValid, []int{a.B, a.T}})
	}
	if err := checkShapes(op, append(args, more...)...); err != nil {
		return err
	}
	if err := distinct(op, "Out", a.Out, a.QKV, a.LSE, a.KeyValid); err != nil {
		return err
	}
	return distinct(op, "LSE", a.LSE, a.QKV, a.KeyValid)
}

// distinct checks that the output out is none of the inputs (nil inputs are skipped).
func distinct(op, name string, out *vk.Tensor, ins ...*vk.Tensor) error {
	for _, in := range ins {
		if in == out {
			return fmt.Errorf("%s: %s is tensor %q, which is also an input", op, name, out.Name)
		}
	}
	return nil
}

// withKeyValid appends the padding mask, when there is one, as the kernel's last binding.
func (a Attention) withKeyValid(args ...vk.Arg) []vk.Arg {
	if a.KeyValid != nil {
		args = append(args, vk.In(a.KeyValid))
	}
	return args
}

// attentionKernel returns shader specialised for a's head size and masks, its workgroup size
// and the rows each invocation takes.
func (o *Ops) attentionKernel(a Attention, shader string) (k *vk.Kernel, wg, rows int, err error) {
	if need := vk.SubgroupBasic | vk.SubgroupArithmetic | vk.SubgroupShuffle; !o.ctx.Info.SubgroupOps.Has(need) {
		return nil, 0, 0, fmt.Errorf("attention needs subgroup basic, arithmetic and shuffle operations in compute shaders; device %q offers 0x%x",
			o.ctx.Info.Name, uint32(o.ctx.Info.SubgroupOps))
	}
	e, err := o.entry("attention", "default")
	if err != nil {
		return nil, 0, 0, err
	}
	wg, rows = e.Get("wg_x"), e.Get("rows")
	spec := shaders.AttentionSpec{Workgroup: shaders.Workgroup{X: uint32(wg), Y: 1, Z: 1}, DH: uint32(a.Dh),
		Causal: vkBool(a.Causal), KeyValid: vkBool(a.KeyValid != nil), CH: o.rowLanes(), RQ: uint32(rows)}
	if shader == "attention_bwd_rowdot" {
		// The same constants (the kernel keeps its name), of which the shader uses the head size.
		k, err = o.ctx.Kernel(shader, shaders.AttentionRowdotSpec(spec))
	} else {
		k, err = o.ctx.Kernel(shader, spec)
	}
	return k, wg, rows, err
}

// rowLanes is how many lanes of a subgroup load a row together in the attention kernels
// (shaders/attention.glsl): the subgroup size, at most 8 so that devices whose subgroups can run
// narrower than they report (down to 8 lanes) stay correct.
func (o *Ops) rowLanes() uint32 {
	return max(1, min(o.ctx.Info.SubgroupSize, 8))
}

func vkBool(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// attentionRows records shader with rows query (or key) rows per invocation over a grid of
// (ceil(T / (rows*wg)), H, B) workgroups, so that a workgroup's rows share a sequence and a head.
func (o *Ops) attentionRows(s *vk.Sequence, a Attention, shader string, args ...vk.Arg) error {
	k, wg, rows, err := o.attentionKernel(a, shader)
	if err != nil {
		return err
	}
	return s.Dispatch(k, [3]uint32{vk.Groups(a.T, rows*wg), uint32(a.H), uint32(a.B)}, a.push(), a.withKeyValid(args...)...)
}

// push is the push-constant block shared by the attention shaders (shaders/attention.glsl):
// B, T, H (uint) and the score scale 1/sqrt(Dh) (float).
func (a Attention) push() shaders.AttentionPush {
	return shaders.AttentionPush{B: uint32(a.B), T: uint32(a.T), H: uint32(a.H), Scale: float32(1 / math.Sqrt(float64(a.Dh)))}
}

// AttentionForward records the fused attention forward: Out = softmax(scores) V and LSE, by
// online softmax over the keys, without writing the B*H*T*T scores. Each invocation takes the
// profile's rows query rows (shaders/attention_fwd.comp).
func (o *Ops) AttentionForward(s *vk.Sequence, a Attention) error {
	if err := a.check("attention"); err != nil {
		return err
	}
	fwd, _ := AttentionFLOPs(a.B, a.H, a.T, a.Dh, a.Causal)
	return counted(s, fwd, o.attentionRows(s, a, "attention_fwd", vk.In(a.QKV), vk.Out(a.Out), vk.Out(a.LSE)))
}

// AttentionBackward records the gradient of AttentionForward with respect to QKV, given its
// inputs and outputs (QKV, Out, LSE) and the output gradient dOut, (B, T, H, Dh). dQKV (same
// packed layout as QKV) is overwritten. The probabilities are recomputed from LSE. Three
// passes, deterministic, no atomics: D_i = dO_i.o_i per query row (parked in dQKV's q slots),
// then dK and dV per key row summing over the queries in order, then dQ per query row summing
// over the keys in order.
func (o *Ops) AttentionBackward(s *vk.Sequence, a Attention, dOut, dQKV *vk.Tensor) error {
	if err := a.check("attention backward", shaped{"dOut", dOut, []int{a.B, a.T, a.H, a.Dh}},
		shaped{"dQKV", dQKV, []int{a.B, a.T, 3, a.H, a.Dh}}); err != nil {
		return err
	}
	if err := distinct("attention backward", "dQKV", dQKV, a.QKV, a.Out, a.LSE, dOut, a.KeyValid); err != nil {
		return err
	}
	k, wg, _, err := o.attentionKernel(a, "attention_bwd_rowdot")
	if err != nil {
		return err
	}
	rows := grid1D(o.ctx, vk.Groups(a.B*a.T*a.H, wg))
	if err := s.Dispatch(k, rows, a.push(), vk.In(a.Out), vk.In(dOut), vk.Out(dQKV)); err != nil {
		return err
	}
	if err := o.attentionRows(s, a, "attention_bwd_kv", vk.In(a.QKV), vk.In(a.LSE), vk.In(dOut), vk.InOut(dQKV)); err != nil {
		return err
	}
	_, bwd := AttentionFLOPs(a.B, a.H, a.T, a.Dh, a.Causal)
	return counted(s, bwd, o.attentionRows(s, a, "attention_bwd_q", vk.In(a.QKV), vk.In(a.Out), vk.In(a.LSE), vk.In(dOut), vk.Out(dQKV)))
}

// AttentionForwardUnfused records the attention forward the plain way, for tests: it writes the
// probabilities to probs, (B, H, T, T) (0 for masked keys), and LSE, then Out = probs V with
// matmul, one batched product over the heads per sequence.
func (o *Ops) AttentionForwardUnfused(s *vk.Sequence, a Attention, probs *vk.Tensor) error {
	if err := a.check("attention unfused", shaped{"probs", probs, []int{a.B, a.H, a.T, a.T}}); err != nil {
		return err
	}
	if err := o.attentionRows(s, a, "attention_probs", vk.In(a.QKV), vk.InOut(probs), vk.Out(a.LSE)); err != nil {
		return err
	}
	d := a.H * a.Dh
	for b := 0; b < a.B; b++ {
		if err := o.Gemm(s, Gemm{
			A: probs, OffA: b * a.H * a.T * a.T, Lda: a.T, StrideA: a.T * a.T,
			B: a.QKV, OffB: b*a.T*3*d + 2*d, Ldb: 3 * d, StrideB: a.Dh,
			C: a.Out, OffC: b * a.T * d, Ldc: d, StrideC: a.Dh,
			M: a.T, N: a.Dh, K: a.T, Batch: a.H, Alpha: 1,
		}); err != nil {
			return err
		}
	}
	return nil
}

// AttentionFLOPs counts the floating-point operations of the attention math, the convention of
// FlashAttention's benchmarks: forward 4*B*H*T*T*Dh (scores and the weighted sum, 2 each),
// halved when causal; backward 2.5 times the forward (dV, dP, dQ, dK and the recomputed scores).
func AttentionFLOPs(b, h, t, dh int, causal bool) (fwd, bwd float64) {
	fwd = 4 * float64(b) * float64(h) * float64(t) * float64(t) * float64(dh)
	if causal {
		fwd /= 2
	}
	return fwd, 2.5 * fwd
}
