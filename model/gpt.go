package model

import (
	"fmt"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// GPT-2 as kernel dispatches, forward and backward side by side (pre-LN blocks, learned
// positions, the token embedding tied to the output head). Linear weights are stored in x out
// (Hugging Face's Conv1D), so y = x·W + b.

// lnEps is GPT-2's LayerNorm epsilon.
const lnEps = 1e-5

// linearForward records y = x·W + b for rows rows.
func (n *Net) linearForward(s *vk.Sequence, x *vk.Tensor, w, b string, y *vk.Tensor, rows, in, out int) error {
	return n.o.Gemm(s, ops.Gemm{A: x, B: n.p(w), C: y, M: rows, N: out, K: in, Bias: n.p(b), Alpha: 1})
}

// linearBackward records dW += xᵀ·dy, db += Σ dy and, when dx is not nil, dx = dy·Wᵀ.
func (n *Net) linearBackward(s *vk.Sequence, x *vk.Tensor, w, b string, dy, dx *vk.Tensor, rows, in, out int) error {
	if err := n.o.Gemm(s, ops.Gemm{A: x, B: dy, C: n.g(w), M: in, N: out, K: rows, TransA: true, Alpha: 1, Beta: 1}); err != nil {
		return err
	}
	if err := n.o.BiasGrad(s, dy, n.g(b), rows, out); err != nil {
		return err
	}
	if dx == nil {
		return nil
	}
	return n.o.Gemm(s, ops.Gemm{A: dy, B: n.p(w), C: dx, M: rows, N: in, K: out, TransB: true, Alpha: 1})
}

func (n *Net) attention(l int) ops.Attention {
	c, a := n.Cfg, n.act.layers[l]
	return ops.Attention{QKV: a.qkv, Out: a.att, LSE: a.lse, B: n.B, T: n.T, H: c.Heads, Dh: c.Width / c.Heads, Causal: true}
}

// recordForward records the forward pass up to the per-token losses.
func (n *Net) recordForward(s *vk.Sequence) error {
	c, o, act := n.Cfg, n.o, n.act
	bt, d, f := n.B*n.T, c.Width, c.FFN
	if err := o.EmbeddingForward(s, n.in.ids, n.p("wte.weight"), act.res[0], bt, d, false); err != nil {
		return err
	}
	if err := o.EmbeddingForward(s, n.in.pos, n.p("wpe.weight"), act.res[0], bt, d, true); err != nil {
		return err
	}
	for l := 0; l < c.Layers; l++ {
		a, h := act.layers[l], fmt.Sprintf("h.%d.", l)
		steps := []func() error{
			func() error {
				return o.LayerNormForward(s, act.res[l], n.p(h+"ln_1.weight"), n.p(h+"ln_1.bias"), a.ln1, a.mean1, a.rstd1, bt, d, lnEps)
			},
			func() error {
				return n.linearForward(s, a.ln1, h+"attn.c_attn.weight", h+"attn.c_attn.bias", a.qkv, bt, d, 3*d)
			},
			func() error { return o.AttentionForward(s, n.attention(l)) },
			func() error {
				return n.linearForward(s, a.att, h+"attn.c_proj.weight", h+"attn.c_proj.bias", act.tmp, bt, d, d)
			},
			func() error { return o.Add(s, act.res[l], act.tmp, a.mid, bt*d) },
			func() error {
				return o.LayerNormForward(s, a.mid, n.p(h+"ln_2.weight"), n.p(h+"ln_2.bias"), a.ln2, a.mean2, a.rstd2, bt, d, lnEps)
			},
			func() error {
				return n.linearForward(s, a.ln2, h+"mlp.c_fc.weight", h+"mlp.c_fc.bias", a.fch, bt, d, f)
			},
			func() error { return o.GeluForward(s, a.fch, a.fcg, bt*f) },
			func() error {
				return n.linearForward(s, a.fcg, h+"mlp.c_proj.weight", h+"mlp.c_proj.bias", act.tmp, bt, f, d)
			},
			func() error { return o.Add(s, a.mid, act.tmp, act.res[l+1], bt*d) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
	}
	last := act.res[c.Layers]
	if err := o.LayerNormForward(s, last, n.p("ln_f.weight"), n.p("ln_f.bias"), act.lnf, act.meanf, act.rstdf, bt, d, lnEps); err != nil {
		return err
	}
	if err := o.Gemm(s, ops.Gemm{A: act.lnf, B: n.p("wte.weight"), C: act.logits, M: bt, N: n.Vocab, K: d, TransB: true, Alpha: 1}); err != nil {
		return err
	}
	return o.CrossEntropyForward(s, act.logits, n.in.targets, act.losses, bt, n.Vocab, IgnoreIndex)
}

// recordBackward records the backward pass, adding every parameter's gradient to n.grads.
func (n *Net) recordBackward(s *vk.Sequence) error {
	c, o, act, g := n.Cfg, n.o, n.act, n.grad
	bt, d, f := n.B*n.T, c.Width, c.FFN
	// The head: dlogits in place of the logits, then through the tied embedding and ln_f.
	if err := o.CrossEntropyBackward(s, act.logits, n.in.targets, act.logits, n.step, bt, n.Vocab, IgnoreIndex); err != nil {
		return err
	}
	if err := o.Gemm(s, ops.Gemm{A: act.logits, B: n.p("wte.weight"), C: g.dtmp, M: bt, N: d, K: n.Vocab, Alpha: 1}); err != nil {
		return err
	}
	if err := o.Gemm(s, ops.Gemm{A: act.logits, B: act.lnf, C: n.g("wte.weight"), M: n.Vocab, N: d, K: bt, TransA: true, Alpha: 1, Beta: 1}); err != nil {
		return err
	}
	if err := o.LayerNormBackward(s, act.res[c.Layers], n.p("ln_f.weight"), act.meanf, act.rstdf, g.dtmp, g.dres,
		n.g("ln_f.weight"), n.g("ln_f.bias"), bt, d, false); err != nil {
		return err
	}
	// The blocks, last first; g.dres carries the gradient of the residual stream.
	for l := c.Layers - 1; l >= 0; l-- {
		a, h := act.layers[l], fmt.Sprintf("h.%d.", l)
		steps := []func() error{
			func() error {
				return n.linearBackward(s, a.fcg, h+"mlp.c_proj.weight", h+"mlp.c_proj.bias", g.dres, g.dfc, bt, f, d)
			},
			func() error { return o.GeluBackward(s, a.fch, g.dfc, g.dfc, bt*f, false) },
			func() error {
				return n.linearBackward(s, a.ln2, h+"mlp.c_fc.weight", h+"mlp.c_fc.bias", g.dfc, g.dtmp, bt, d, f)
			},
			func() error {
				return o.LayerNormBackward(s, a.mid, n.p(h+"ln_2.weight"), a.mean2, a.rstd2, g.dtmp, g.dres,
					n.g(h+"ln_2.weight"), n.g(h+"ln_2.bias"), bt, d, true)
			},
			func() error {
				return n.linearBackward(s, a.att, h+"attn.c_proj.weight", h+"attn.c_proj.bias", g.dres, g.dtmp, bt, d, d)
			},
			func() error { return o.AttentionBackward(s, n.attention(l), g.dtmp, g.dqkv) },
			func() error {
				return n.linearBackward(s, a.ln1, h+"attn.c_attn.weight", h+"attn.c_attn.bias", g.dqkv, g.dtmp, bt, d, 3*d)
			},
			func() error {
				return o.LayerNormBackward(s, act.res[l], n.p(h+"ln_1.weight"), a.mean1, a.rstd1, g.dtmp, g.dres,
					n.g(h+"ln_1.weight"), n.g(h+"ln_1.bias"), bt, d, true)
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
	}
	if err := o.EmbeddingBackward(s, n.in.ids, g.dres, n.g("wte.weight"), bt, d); err != nil {
		return err
	}
	return o.EmbeddingBackward(s, n.in.pos, g.dres, n.g("wpe.weight"), bt, d)
}
