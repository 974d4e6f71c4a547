package reference

import (
	"fmt"

	"github.com/vktrain/vktrain/model"
	opref "github.com/vktrain/vktrain/vk/ops/ref"
)

// ViTForImageClassification: each image cut into P x P patches (a convolution with kernel and
// stride P), the class token first, position embeddings added, pre-LN layers with unmasked
// attention, the final LayerNorm and the classifier on the class token.

// The names of ViT's parameters outside the layers (Hugging Face's).
const (
	vitCLS        = "vit.embeddings.cls_token"
	vitPositions  = "vit.embeddings.position_embeddings"
	vitPatch      = "vit.embeddings.patch_embeddings.projection"
	vitFinalNorm  = "vit.layernorm"
	vitClassifier = "classifier"
)

func (m *Model) checkImages(b Batch) error {
	side := m.Cfg.Image
	switch {
	case b.B < 1 || b.T != m.Cfg.Context:
		return fmt.Errorf("reference model: %d images of %d rows, a ViT takes %d rows (patches and the class token)", b.B, b.T, m.Cfg.Context)
	case len(b.Images) != b.B*side*side || len(b.Labels) != b.B || b.Input != nil || b.Target != nil:
		return fmt.Errorf("reference model: %d pixels and %d labels (and %d tokens) for %d images of %d x %d", len(b.Images), len(b.Labels), len(b.Input), b.B, side, side)
	case b.TokenTypes != nil || b.KeyValid != nil:
		return fmt.Errorf("reference model: a ViT takes no token types or padding mask")
	}
	for i, l := range b.Labels {
		if l != model.IgnoreIndex && int(l) >= m.Vocab {
			return fmt.Errorf("reference model: label %d is %d, outside the %d classes", i, l, m.Vocab)
		}
	}
	return nil
}

// vitPixels are the rows the patch embedding reads: per image a zero row for the class token,
// then patch (py, px) for py, px in row-major order, each patch's pixels row-major.
func (m *Model) vitPixels(b Batch) []float64 {
	side, p := m.Cfg.Image, m.Cfg.Patch
	per := side / p
	x := make([]float64, b.B*b.T*p*p)
	for i := 0; i < b.B; i++ {
		for py := 0; py < per; py++ {
			for px := 0; px < per; px++ {
				r := i*b.T + 1 + py*per + px
				for ky := 0; ky < p; ky++ {
					for kx := 0; kx < p; kx++ {
						x[r*p*p+ky*p+kx] = b.Images[i*side*side+(py*p+ky)*side+px*p+kx]
					}
				}
			}
		}
	}
	return x
}

// vitForward runs the ViT and returns the class tokens' logits, B x classes.
func (m *Model) vitForward(p *refPass) []float64 {
	c, b := m.Cfg, p.b
	n, d, f, pp := b.B*b.T, c.Width, c.FFN, c.Patch*c.Patch
	x := p.patch.forward(m, vitPatch+".weight", "", true, m.vitPixels(b), n, pp, d)
	bias, cls, pos := m.P[vitPatch+".bias"], m.P[vitCLS], m.P[vitPositions]
	for r := 0; r < n; r++ {
		t := r % b.T
		for j := 0; j < d; j++ {
			if t == 0 {
				x[r*d+j] += cls[j]
			} else {
				x[r*d+j] += bias[j]
			}
			x[r*d+j] += pos[t*d+j]
		}
	}
	x = m.dropout(p, 0, x)
	p.blocks = make([]refBlock, c.Layers)
	for l := range p.blocks {
		blk, h := &p.blocks[l], model.ViTLayer(l)
		p.out.Residual = append(p.out.Residual, x)
		a := blk.ln1.forward(m, h+"layernorm_before", x, n, d)
		s := h + "attention.attention."
		q := blk.q.forward(m, s+"query.weight", s+"query.bias", true, a, n, d, d)
		k := blk.k.forward(m, s+"key.weight", s+"key.bias", true, a, n, d, d)
		v := blk.v.forward(m, s+"value.weight", s+"value.bias", true, a, n, d, d)
		y := blk.attn.forward(opref.Attention{B: b.B, T: b.T, H: c.Heads, Dh: d / c.Heads}, packQKV(q, k, v, n, d))
		o := h + "attention.output.dense"
		x = opref.Add(x, m.dropout(p, model.DropSite(l, false), blk.proj.forward(m, o+".weight", o+".bias", true, y, n, d, d)))
		a = blk.ln2.forward(m, h+"layernorm_after", x, n, d)
		u := blk.gelu.forward(blk.fc.forward(m, h+"intermediate.dense.weight", h+"intermediate.dense.bias", true, a, n, d, f))
		x = opref.Add(x, m.dropout(p, model.DropSite(l, true), blk.fcProj.forward(m, h+"output.dense.weight", h+"output.dense.bias", true, u, n, f, d)))
	}
	p.out.Residual = append(p.out.Residual, x)
	y := p.head.ln.forward(m, vitFinalNorm, x, n, d)
	first := make([]float64, b.B*d) // the class tokens
	for i := 0; i < b.B; i++ {
		copy(first[i*d:(i+1)*d], y[i*b.T*d:])
	}
	return p.head.decoder.forward(m, vitClassifier+".weight", vitClassifier+".bias", true, first, b.B, d, m.Vocab)
}

// vitBackward adds the gradients of the loss, given the class tokens' dlogits, to g.
func (m *Model) vitBackward(p *refPass, dlogits []float64, g map[string][]float64) {
	c, b := m.Cfg, p.b
	n, d := b.B*b.T, c.Width
	dfirst := p.head.decoder.backward(m, dlogits, g)
	dy := make([]float64, n*d)
	for i := 0; i < b.B; i++ {
		copy(dy[i*b.T*d:][:d], dfirst[i*d:(i+1)*d])
	}
	dx := p.head.ln.backward(m, dy, g)
	for l := c.Layers - 1; l >= 0; l-- {
		blk := &p.blocks[l]
		da := blk.fc.backward(m, blk.gelu.backward(blk.fcProj.backward(m, m.dropout(p, model.DropSite(l, true), dx), g)), g)
		dx = opref.Add(dx, blk.ln2.backward(m, da, g))
		dq, dk, dv := unpackQKV(blk.attn.backward(blk.proj.backward(m, m.dropout(p, model.DropSite(l, false), dx), g)), n, d)
		da = opref.Add(opref.Add(blk.q.backward(m, dq, g), blk.k.backward(m, dk, g)), blk.v.backward(m, dv, g))
		dx = opref.Add(dx, blk.ln1.backward(m, da, g))
	}
	dx = m.dropout(p, 0, dx)
	dbias, dcls, dpos := g[vitPatch+".bias"], g[vitCLS], g[vitPositions]
	for r := 0; r < n; r++ {
		t := r % b.T
		for j := 0; j < d; j++ {
			if t == 0 {
				dcls[j] += dx[r*d+j]
			} else {
				dbias[j] += dx[r*d+j]
			}
			dpos[t*d+j] += dx[r*d+j]
		}
	}
	p.patch.backward(m, dx, g)
}
