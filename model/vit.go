package model

import (
	"fmt"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk"
)

// ViTForImageClassification (DeiT without its distillation token) as kernel dispatches, forward
// and backward side by side, exactly as the reference (model/reference) defines it. An image is
// cut into non-overlapping P x P patches; each patch's pixels (row-major) go through a linear
// map (Hugging Face's convolution with kernel and stride P); a class token goes first and
// learned position embeddings are added; pre-LN layers with unmasked attention follow, then a
// final LayerNorm and a linear classifier on the class token. Linear weights are stored out x in.
//
// The B images of a micro-batch are B sequences of T = patches + 1 rows: row 0 is the class
// token, row 1 + i patch i. The host writes every row's pixels (the class token's are zero), so
// the patch embedding is one matmul over all rows; its bias and the class token are added as
// one-row embedding tables through id tensors that select the patch rows or the class-token
// rows (an id past a table's one row adds nothing). The classifier runs on every row, and the
// loss counts only the class tokens' (every other target is IgnoreIndex).

// The names of ViT's parameters outside the layers.
const (
	vitEmbeddings = "vit.embeddings."
	vitCLS        = vitEmbeddings + "cls_token"
	vitPositions  = vitEmbeddings + "position_embeddings"
	vitPatch      = vitEmbeddings + "patch_embeddings.projection"
	vitFinalNorm  = "vit.layernorm"
	vitClassifier = "classifier"
)

// vitLNEps is the LayerNorm epsilon of DeiT (and timm's ViT).
const vitLNEps = 1e-6

func (n *Net) vit() bool { return n.Cfg.Arch == "vit" }

// vitBlock is the layers of encoder layer l and the names of its two LayerNorms.
type vitBlock struct {
	q, k, v, proj, fc, fcProj linear
	ln1, ln2                  string
}

func (n *Net) vitBlock(l int) vitBlock {
	d, f, h := n.Cfg.Width, n.Cfg.FFN, ViTLayer(l)
	a := h + "attention.attention."
	return vitBlock{
		q: dense(a+"query", d, d), k: dense(a+"key", d, d), v: dense(a+"value", d, d),
		proj: dense(h+"attention.output.dense", d, d), ln1: h + "layernorm_before",
		fc: dense(h+"intermediate.dense", d, f), fcProj: dense(h+"output.dense", f, d), ln2: h + "layernorm_after",
	}
}

// vitPatchMap is the patch embedding without its bias (added as an embedding row).
func (n *Net) vitPatchMap() linear {
	return linear{w: vitPatch + ".weight", in: n.Cfg.Patch * n.Cfg.Patch, out: n.Cfg.Width, outIn: true}
}

// vitClassifierMap is the classifier over the padded classes (vocabStride).
func (n *Net) vitClassifierMap() linear {
	return linear{w: vitClassifier + ".weight", b: vitClassifier + ".bias", in: n.Cfg.Width, out: n.vocabStride(), outIn: true}
}

// vitForward records the forward pass up to the logits; train applies dropout.
func (n *Net) vitForward(s *vk.Sequence, train bool) error {
	c, o, act := n.Cfg, n.o, n.act
	bt, d, f := n.rows(), c.Width, c.FFN
	if err := record(
		func() error { return n.linearForward(s, n.vitPatchMap(), n.in.pixels, cols{t: act.res[0]}) },
		func() error {
			return o.EmbeddingForward(s, n.in.patchRows, n.p(vitPatch+".bias"), act.res[0], bt, d, true)
		},
		func() error { return o.EmbeddingForward(s, n.in.clsRows, n.p(vitCLS), act.res[0], bt, d, true) },
		func() error { return o.EmbeddingForward(s, n.in.pos, n.p(vitPositions), act.res[0], bt, d, true) },
		func() error { return n.dropoutForward(s, train, 0, act.res[0]) },
	); err != nil {
		return err
	}
	for l := 0; l < c.Layers; l++ {
		a, b := act.layers[l], n.vitBlock(l)
		if err := record(
			func() error { return n.layerNormForward(s, b.ln1, a.ln1) },
			func() error { return n.linearForward(s, b.q, a.ln1.y, n.qkvCols(a.qkv, 0)) },
			func() error { return n.linearForward(s, b.k, a.ln1.y, n.qkvCols(a.qkv, 1)) },
			func() error { return n.linearForward(s, b.v, a.ln1.y, n.qkvCols(a.qkv, 2)) },
			func() error { return o.AttentionForward(s, n.attention(l)) },
			func() error { return n.linearForward(s, b.proj, a.att, cols{t: act.tmp}) },
			func() error { return n.dropoutForward(s, train, DropSite(l, false), act.tmp) },
			func() error { return o.Add(s, act.res[l], act.tmp, a.ln2.x, bt*d) },
			func() error { return n.layerNormForward(s, b.ln2, a.ln2) },
			func() error { return n.linearForward(s, b.fc, a.ln2.y, cols{t: a.fch}) },
			func() error { return o.GeluForward(s, a.fch, a.fcg, bt*f) },
			func() error { return n.linearForward(s, b.fcProj, a.fcg, cols{t: act.tmp}) },
			func() error { return n.dropoutForward(s, train, DropSite(l, true), act.tmp) },
			func() error { return o.Add(s, a.ln2.x, act.tmp, act.res[l+1], bt*d) },
		); err != nil {
			return err
		}
	}
	return record(
		func() error { return n.layerNormForward(s, vitFinalNorm, act.final) },
		func() error { return n.linearForward(s, n.vitClassifierMap(), act.final.y, cols{t: act.logits}) },
	)
}

// vitBackward records the backward pass from the gradient of the logits (in act.logits).
func (n *Net) vitBackward(seg *segments) error {
	c, o, act, g := n.Cfg, n.o, n.act, n.grad
	bt, d, f := n.rows(), c.Width, c.FFN
	s := seg.cur()
	if err := record(
		func() error {
			return n.linearBackward(s, n.vitClassifierMap(), act.final.y, cols{t: act.logits}, g.dtmp, false)
		},
		func() error { return n.layerNormBackward(s, vitFinalNorm, act.final, g.dtmp, g.dres, false) },
	); err != nil {
		return err
	}
	if err := seg.cut(vitClassifier+".", vitFinalNorm+"."); err != nil {
		return err
	}
	dbranch := n.dropoutGrad(g.dres)
	for l := c.Layers - 1; l >= 0; l-- {
		a, b := act.layers[l], n.vitBlock(l)
		s := seg.cur()
		if err := record(
			func() error { return n.dropoutBackward(s, DropSite(l, true), g.dres, dbranch) },
			func() error { return n.linearBackward(s, b.fcProj, a.fcg, cols{t: dbranch}, g.dfc, false) },
			func() error { return o.GeluBackward(s, a.fch, g.dfc, g.dfc, bt*f, false) },
			func() error { return n.linearBackward(s, b.fc, a.ln2.y, cols{t: g.dfc}, g.dtmp, false) },
			func() error { return n.layerNormBackward(s, b.ln2, a.ln2, g.dtmp, g.dres, true) },
			func() error { return n.dropoutBackward(s, DropSite(l, false), g.dres, dbranch) },
			func() error { return n.linearBackward(s, b.proj, a.att, cols{t: dbranch}, g.dtmp, false) },
			func() error { return o.AttentionBackward(s, n.attention(l), g.dtmp, g.dqkv) },
			func() error { return n.linearBackward(s, b.q, a.ln1.y, n.qkvCols(g.dqkv, 0), g.dtmp, false) },
			func() error { return n.linearBackward(s, b.k, a.ln1.y, n.qkvCols(g.dqkv, 1), g.dtmp, true) },
			func() error { return n.linearBackward(s, b.v, a.ln1.y, n.qkvCols(g.dqkv, 2), g.dtmp, true) },
			func() error { return n.layerNormBackward(s, b.ln1, a.ln1, g.dtmp, g.dres, true) },
		); err != nil {
			return err
		}
		if err := seg.cut(ViTLayer(l)); err != nil {
			return err
		}
	}
	s = seg.cur()
	return record(
		func() error { return n.dropoutBackward(s, 0, g.dres, g.dres) },
		func() error { return o.EmbeddingBackward(s, n.in.pos, g.dres, n.g(vitPositions), bt, d) },
		func() error { return o.EmbeddingBackward(s, n.in.clsRows, g.dres, n.g(vitCLS), bt, d) },
		func() error { return o.EmbeddingBackward(s, n.in.patchRows, g.dres, n.g(vitPatch+".bias"), bt, d) },
		func() error { return n.linearBackward(s, n.vitPatchMap(), n.in.pixels, cols{t: g.dres}, nil, false) },
		seg.end,
	)
}

// vitRows are the id tensors' contents: 0 on the class-token rows (clsRows) or on the patch
// rows (patchRows), 1 (past the one-row tables) elsewhere.
func (n *Net) vitRows() (cls, patch []uint32) {
	cls, patch = make([]uint32, n.rows()), make([]uint32, n.rows())
	for r := range cls {
		if r%n.T == 0 {
			patch[r] = 1
		} else {
			cls[r] = 1
		}
	}
	return cls, patch
}

// Patchify lays out B images of side x side pixels as the model's input rows: per image the
// class token's row (zeros) and then each patch's p x p pixels, row-major, the patches in
// row-major order over the image (Hugging Face's convolution followed by flatten).
func Patchify(images []float32, b, side, p int) []float32 {
	per := side / p
	out := make([]float32, b*(per*per+1)*p*p)
	for i := range b {
		img := images[i*side*side:]
		for py := range per {
			for px := range per {
				row := out[(i*(per*per+1)+1+py*per+px)*p*p:]
				for y := range p {
					copy(row[y*p:(y+1)*p], img[(py*p+y)*side+px*p:][:p])
				}
			}
		}
	}
	return out
}

// loadImages writes a micro-batch of images: their patch rows, and the labels as the class
// tokens' targets (every other row's is IgnoreIndex).
func (n *Net) loadImages(b data.Batch) error {
	side := n.Cfg.Image
	if b.B != n.B || len(b.Images) != n.B*side*side || len(b.Labels) != n.B {
		return fmt.Errorf("batch of %d images (%d pixels, %d labels), the model takes %d images of %d x %d",
			b.B, len(b.Images), len(b.Labels), n.B, side, side)
	}
	targets := make([]uint32, n.rows())
	for i := range targets {
		targets[i] = IgnoreIndex
	}
	for i, l := range b.Labels {
		if l != IgnoreIndex && int(l) >= n.Vocab {
			return fmt.Errorf("label %d is outside the %d classes", l, n.Vocab)
		}
		targets[i*n.T] = l
	}
	if err := n.in.pixels.WriteFloat32(0, Patchify(b.Images, n.B, side, n.Cfg.Patch)); err != nil {
		return err
	}
	return n.in.targets.WriteUint32(0, targets)
}

// Classified is what a forward pass over labelled images measured.
type Classified struct {
	Loss      float64 // mean over the counted images
	Accuracy  float64 // share of the counted images whose most likely class is their label
	Count     int     // images counted (labels not IgnoreIndex)
	Confusion [][]int // Confusion[label][predicted] counts
}

// Classify runs the forward pass over batches of images and measures the loss, the accuracy
// and the confusion matrix; images labelled IgnoreIndex (an evaluation set's padding) are left
// out.
func (n *Net) Classify(batches []data.Batch) (Classified, error) {
	c := Classified{Confusion: make([][]int, n.Vocab)}
	for i := range c.Confusion {
		c.Confusion[i] = make([]int, n.Vocab)
	}
	var lossSum float64
	correct := 0
	for _, b := range batches {
		pred, err := n.Predict(b)
		if err != nil {
			return c, err
		}
		s, err := n.lossSum()
		if err != nil {
			return c, err
		}
		lossSum += s
		for i, l := range b.Labels {
			if l == IgnoreIndex {
				continue
			}
			c.Count++
			c.Confusion[l][pred[i]]++
			if int(l) == pred[i] {
				correct++
			}
		}
	}
	if c.Count > 0 {
		c.Loss, c.Accuracy = lossSum/float64(c.Count), float64(correct)/float64(c.Count)
	}
	return c, nil
}

// Predict runs the forward pass over a batch of images and returns each image's most likely
// class (the first of equals).
func (n *Net) Predict(b data.Batch) ([]int, error) {
	if !n.vit() {
		return nil, fmt.Errorf("classifying images needs a vit model, this is %s", n.Cfg.Arch)
	}
	if err := n.load(b); err != nil {
		return nil, err
	}
	if err := n.eval.Run(); err != nil {
		return nil, err
	}
	logits, err := n.act.logits.ReadFloat32()
	if err != nil {
		return nil, err
	}
	pred, stride := make([]int, n.B), n.vocabStride()
	for i := range pred {
		row := logits[i*n.T*stride:][:n.Vocab]
		for k, v := range row {
			if v > row[pred[i]] {
				pred[i] = k
			}
		}
	}
	return pred, nil
}
