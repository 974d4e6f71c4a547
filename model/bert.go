package model

import (
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk"
)

// BertForMaskedLM as kernel dispatches, forward and backward side by side, exactly as the
// reference (reference.go) defines it: word + position + token-type embeddings and their
// LayerNorm, post-LN layers (attention with the padding mask, then the MLP, each added to the
// residual and normalised), and the MLM head: dense, GELU, LayerNorm and a decoder tied to the
// word embeddings with its own bias. Linear weights are stored out x in (nn.Linear). Inputs
// equal to [PAD] (data.BERTSpecials) are padding: no query attends to them.

// minVocab is the smallest token table arch needs over a tokenizer of tokVocab tokens: BERT
// appends its special tokens to the tokenizer's (data.BERTSpecials).
func minVocab(arch string, tokVocab int) int {
	if arch == "bert" {
		return data.MLMVocab(tokVocab)
	}
	return tokVocab
}

// bertEmbeddings is the prefix of the embedding parameters.
const bertEmbeddings = "bert.embeddings."

// bertWord is the word-embedding table, which the decoder shares.
const bertWord = bertEmbeddings + "word_embeddings.weight"

// bertBlock is the layers of encoder layer l and the names of its two LayerNorms.
type bertBlock struct {
	q, k, v, proj, fc, fcProj linear
	ln1, ln2                  string
}

func (n *Net) bertBlock(l int) bertBlock {
	d, f, h := n.Cfg.Width, n.Cfg.FFN, BERTLayer(l)
	self := h + "attention.self."
	return bertBlock{
		q: dense(self+"query", d, d), k: dense(self+"key", d, d), v: dense(self+"value", d, d),
		proj: dense(h+"attention.output.dense", d, d), ln1: h + "attention.output.LayerNorm",
		fc: dense(h+"intermediate.dense", d, f), fcProj: dense(h+"output.dense", f, d), ln2: h + "output.LayerNorm",
	}
}

// bertTransform is the MLM head's transform; bertDecoder its decoder, tied to the word
// embeddings, with the bias BERTDecoderBias, over the padded vocabulary (vocabStride).
const (
	bertTransform   = "cls.predictions.transform."
	BERTDecoderBias = "cls.predictions.bias"
)

func (n *Net) bertDecoder() linear {
	return linear{w: bertWord, b: BERTDecoderBias, in: n.Cfg.Width, out: n.vocabStride(), outIn: true}
}

// qkvCols is where q (part 0), k (1) or v (2) lie in the packed (B, T, 3, H, Dh) layout.
func (n *Net) qkvCols(t *vk.Tensor, part int) cols {
	d := n.Cfg.Width
	return cols{t: t, off: part * d, ld: 3 * d}
}

// bertForward records the forward pass up to the logits; train applies dropout.
func (n *Net) bertForward(s *vk.Sequence, train bool) error {
	c, o, act := n.Cfg, n.o, n.act
	bt, d, f, e := n.rows(), c.Width, c.FFN, bertEmbeddings
	if err := record(
		func() error { return o.EmbeddingForward(s, n.in.ids, n.p(bertWord), act.emb.x, bt, d, false) },
		func() error {
			return o.EmbeddingForward(s, n.in.pos, n.p(e+"position_embeddings.weight"), act.emb.x, bt, d, true)
		},
		func() error {
			return o.EmbeddingForward(s, n.in.types, n.p(e+"token_type_embeddings.weight"), act.emb.x, bt, d, true)
		},
		func() error { return n.layerNormForward(s, e+"LayerNorm", act.emb) },
		func() error { return n.dropoutForward(s, train, 0, act.res[0]) },
	); err != nil {
		return err
	}
	for l := 0; l < c.Layers; l++ {
		a, b, x := act.layers[l], n.bertBlock(l), act.res[l]
		if err := record(
			func() error { return n.linearForward(s, b.q, x, n.qkvCols(a.qkv, 0)) },
			func() error { return n.linearForward(s, b.k, x, n.qkvCols(a.qkv, 1)) },
			func() error { return n.linearForward(s, b.v, x, n.qkvCols(a.qkv, 2)) },
			func() error { return o.AttentionForward(s, n.attention(l)) },
			func() error { return n.linearForward(s, b.proj, a.att, cols{t: act.tmp}) },
			func() error { return n.dropoutForward(s, train, DropSite(l, false), act.tmp) },
			func() error { return o.Add(s, x, act.tmp, a.ln1.x, bt*d) },
			func() error { return n.layerNormForward(s, b.ln1, a.ln1) },
			func() error { return n.linearForward(s, b.fc, a.ln1.y, cols{t: a.fch}) },
			func() error { return o.GeluForward(s, a.fch, a.fcg, bt*f) },
			func() error { return n.linearForward(s, b.fcProj, a.fcg, cols{t: act.tmp}) },
			func() error { return n.dropoutForward(s, train, DropSite(l, true), act.tmp) },
			func() error { return o.Add(s, a.ln1.y, act.tmp, a.ln2.x, bt*d) },
			func() error { return n.layerNormForward(s, b.ln2, a.ln2) }, // into act.res[l+1]
		); err != nil {
			return err
		}
	}
	return record(
		func() error {
			return n.linearForward(s, dense(bertTransform+"dense", d, d), act.res[c.Layers], cols{t: act.mlmDense})
		},
		func() error { return o.GeluForward(s, act.mlmDense, act.mlmGelu, bt*d) },
		func() error { return n.layerNormForward(s, bertTransform+"LayerNorm", act.final) },
		func() error { return n.linearForward(s, n.bertDecoder(), act.final.y, cols{t: act.logits}) },
	)
}

// bertBackward records the backward pass from the gradient of the logits (in act.logits).
// g.dres carries the gradient of each layer's output; post-LN, it flows through the
// LayerNorms. It is cut into buckets after the head, each layer and the embeddings.
func (n *Net) bertBackward(seg *segments) error {
	c, o, act, g := n.Cfg, n.o, n.act, n.grad
	bt, d, f, e := n.rows(), c.Width, c.FFN, bertEmbeddings
	s := seg.cur()
	if err := record(
		func() error {
			return n.linearBackward(s, n.bertDecoder(), act.final.y, cols{t: act.logits}, g.dtmp, false)
		},
		func() error {
			return n.layerNormBackward(s, bertTransform+"LayerNorm", act.final, g.dtmp, g.dtmp, false)
		},
		func() error { return o.GeluBackward(s, act.mlmDense, g.dtmp, g.dtmp, bt*d, false) },
		func() error {
			return n.linearBackward(s, dense(bertTransform+"dense", d, d), act.res[c.Layers], cols{t: g.dtmp}, g.dres, false)
		},
	); err != nil {
		return err
	}
	if err := seg.cut(bertTransform, BERTDecoderBias); err != nil {
		return err
	}
	dmlp, dattn := n.dropoutGrad(g.dtmp), n.dropoutGrad(g.dres) // the branches' gradients through their dropout
	for l := c.Layers - 1; l >= 0; l-- {
		a, b, x := act.layers[l], n.bertBlock(l), act.res[l]
		s := seg.cur()
		if err := record(
			// g.dtmp: the gradient of ln1.y, through the residual and then the MLP.
			func() error { return n.layerNormBackward(s, b.ln2, a.ln2, g.dres, g.dtmp, false) },
			func() error { return n.dropoutBackward(s, DropSite(l, true), g.dtmp, dmlp) },
			func() error { return n.linearBackward(s, b.fcProj, a.fcg, cols{t: dmlp}, g.dfc, false) },
			func() error { return o.GeluBackward(s, a.fch, g.dfc, g.dfc, bt*f, false) },
			func() error { return n.linearBackward(s, b.fc, a.ln1.y, cols{t: g.dfc}, g.dtmp, true) },
			// g.dres: the gradient of x, through the residual and then the attention.
			func() error { return n.layerNormBackward(s, b.ln1, a.ln1, g.dtmp, g.dres, false) },
			func() error { return n.dropoutBackward(s, DropSite(l, false), g.dres, dattn) },
			func() error { return n.linearBackward(s, b.proj, a.att, cols{t: dattn}, g.dtmp, false) },
			func() error { return o.AttentionBackward(s, n.attention(l), g.dtmp, g.dqkv) },
			func() error { return n.linearBackward(s, b.q, x, n.qkvCols(g.dqkv, 0), g.dres, true) },
			func() error { return n.linearBackward(s, b.k, x, n.qkvCols(g.dqkv, 1), g.dres, true) },
			func() error { return n.linearBackward(s, b.v, x, n.qkvCols(g.dqkv, 2), g.dres, true) },
		); err != nil {
			return err
		}
		if err := seg.cut(BERTLayer(l)); err != nil {
			return err
		}
	}
	s = seg.cur()
	return record(
		func() error { return n.dropoutBackward(s, 0, g.dres, g.dres) },
		func() error { return n.layerNormBackward(s, e+"LayerNorm", act.emb, g.dres, g.dtmp, false) },
		func() error { return o.EmbeddingBackward(s, n.in.ids, g.dtmp, n.g(bertWord), bt, d) },
		func() error {
			return o.EmbeddingBackward(s, n.in.pos, g.dtmp, n.g(e+"position_embeddings.weight"), bt, d)
		},
		func() error {
			return o.EmbeddingBackward(s, n.in.types, g.dtmp, n.g(e+"token_type_embeddings.weight"), bt, d)
		},
		seg.end,
	)
}

// keyValid is the padding mask of ids: 0 for [PAD], 1 for every other token.
func (n *Net) keyValid(ids []uint32) []uint32 {
	kv := make([]uint32, len(ids))
	for i, id := range ids {
		if id != n.pad {
			kv[i] = 1
		}
	}
	return kv
}
