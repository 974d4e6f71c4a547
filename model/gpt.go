package model

import "github.com/vktrain/vktrain/vk"

// GPT-2 as kernel dispatches, forward and backward side by side: learned positions, pre-LN
// blocks, ln_f, and the token embedding tied to the output head. Linear weights are stored
// in x out (Hugging Face's Conv1D).

// gptBlock is block l's parameter prefix and layers.
func (n *Net) gptBlock(l int) (h string, attn, proj, fc, fcProj linear) {
	d, f := n.Cfg.Width, n.Cfg.FFN
	h = GPTLayer(l)
	return h, conv1D(h+"attn.c_attn", d, 3*d), conv1D(h+"attn.c_proj", d, d), conv1D(h+"mlp.c_fc", d, f), conv1D(h+"mlp.c_proj", f, d)
}

// gptHead is the output projection, tied to the token embedding (no bias), over the padded
// vocabulary (vocabStride).
func (n *Net) gptHead() linear {
	return linear{w: "wte.weight", in: n.Cfg.Width, out: n.vocabStride(), outIn: true}
}

// gptForward records the forward pass up to the logits; train applies dropout.
func (n *Net) gptForward(s *vk.Sequence, train bool) error {
	c, o, act := n.Cfg, n.o, n.act
	bt, d, f := n.rows(), c.Width, c.FFN
	if err := record(
		func() error { return o.EmbeddingForward(s, n.in.ids, n.p("wte.weight"), act.res[0], bt, d, false) },
		func() error { return o.EmbeddingForward(s, n.in.pos, n.p("wpe.weight"), act.res[0], bt, d, true) },
		func() error { return n.dropoutForward(s, train, 0, act.res[0]) },
	); err != nil {
		return err
	}
	for l := 0; l < c.Layers; l++ {
		a := act.layers[l]
		h, attn, proj, fc, fcProj := n.gptBlock(l)
		if err := record(
			func() error { return n.layerNormForward(s, h+"ln_1", a.ln1) },
			func() error { return n.linearForward(s, attn, a.ln1.y, cols{t: a.qkv}) },
			func() error { return o.AttentionForward(s, n.attention(l)) },
			func() error { return n.linearForward(s, proj, a.att, cols{t: act.tmp}) },
			func() error { return n.dropoutForward(s, train, DropSite(l, false), act.tmp) },
			func() error { return o.Add(s, act.res[l], act.tmp, a.ln2.x, bt*d) },
			func() error { return n.layerNormForward(s, h+"ln_2", a.ln2) },
			func() error { return n.linearForward(s, fc, a.ln2.y, cols{t: a.fch}) },
			func() error { return o.GeluForward(s, a.fch, a.fcg, bt*f) },
			func() error { return n.linearForward(s, fcProj, a.fcg, cols{t: act.tmp}) },
			func() error { return n.dropoutForward(s, train, DropSite(l, true), act.tmp) },
			func() error { return o.Add(s, a.ln2.x, act.tmp, act.res[l+1], bt*d) },
		); err != nil {
			return err
		}
	}
	return record(
		func() error { return n.layerNormForward(s, "ln_f", act.final) },
		func() error { return n.linearForward(s, n.gptHead(), act.final.y, cols{t: act.logits}) },
	)
}

// gptBackward records the backward pass from the gradient of the logits (in act.logits),
// cutting it into buckets after the head, each block and the embeddings.
func (n *Net) gptBackward(seg *segments) error {
	c, o, act, g := n.Cfg, n.o, n.act, n.grad
	bt, d, f := n.rows(), c.Width, c.FFN
	// The head: through the tied embedding and ln_f into g.dres, the gradient of the residual.
	s := seg.cur()
	if err := record(
		func() error { return n.linearBackward(s, n.gptHead(), act.final.y, cols{t: act.logits}, g.dtmp, false) },
		func() error { return n.layerNormBackward(s, "ln_f", act.final, g.dtmp, g.dres, false) },
	); err != nil {
		return err
	}
	if err := seg.cut("ln_f."); err != nil {
		return err
	}
	// The blocks, last first: each branch's gradient (through its dropout, into dbranch) is added
	// to the residual's.
	dbranch := n.dropoutGrad(g.dres)
	for l := c.Layers - 1; l >= 0; l-- {
		a := act.layers[l]
		h, attn, proj, fc, fcProj := n.gptBlock(l)
		s := seg.cur()
		if err := record(
			func() error { return n.dropoutBackward(s, DropSite(l, true), g.dres, dbranch) },
			func() error { return n.linearBackward(s, fcProj, a.fcg, cols{t: dbranch}, g.dfc, false) },
			func() error { return o.GeluBackward(s, a.fch, g.dfc, g.dfc, bt*f, false) },
			func() error { return n.linearBackward(s, fc, a.ln2.y, cols{t: g.dfc}, g.dtmp, false) },
			func() error { return n.layerNormBackward(s, h+"ln_2", a.ln2, g.dtmp, g.dres, true) },
			func() error { return n.dropoutBackward(s, DropSite(l, false), g.dres, dbranch) },
			func() error { return n.linearBackward(s, proj, a.att, cols{t: dbranch}, g.dtmp, false) },
			func() error { return o.AttentionBackward(s, n.attention(l), g.dtmp, g.dqkv) },
			func() error { return n.linearBackward(s, attn, a.ln1.y, cols{t: g.dqkv}, g.dtmp, false) },
			func() error { return n.layerNormBackward(s, h+"ln_1", a.ln1, g.dtmp, g.dres, true) },
		); err != nil {
			return err
		}
		if err := seg.cut(h); err != nil {
			return err
		}
	}
	s = seg.cur()
	return record(
		func() error { return n.dropoutBackward(s, 0, g.dres, g.dres) },
		func() error { return o.EmbeddingBackward(s, n.in.ids, g.dres, n.g("wte.weight"), bt, d) },
		func() error { return o.EmbeddingBackward(s, n.in.pos, g.dres, n.g("wpe.weight"), bt, d) },
		seg.end,
	)
}
