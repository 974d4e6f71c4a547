package reference

import (
	"fmt"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	opref "github.com/vktrain/vktrain/vk/ops/ref"
)

// The float64 CPU reference model: GPT-2, BERT and ViT (vit.go), forward and backward, built from the
// per-op references in vk/ops/ref, to check the GPU model's every step against. Each op's
// forward saves what its backward needs, and the two sit side by side as in llm.c.
//
// GELU is the tanh approximation (opref.GeluForward) in both models: BERT's exact erf GELU is
// replaced by it, as in the GPU model. A training batch (Batch.Train) applies dropout where
// the GPU model does, with the masks it draws (opref.Dropout at the same Philox key and offsets).

// Batch is one micro-batch for the reference model: B sequences of T tokens, row-major.
type Batch struct {
	B, T   int
	Input  []uint32 // token ids, B*T
	Target []uint32 // target ids, B*T; model.IgnoreIndex is not counted
	// TokenTypes are BERT's segment ids (B*T, nil = all 0); GPT takes none.
	TokenTypes []uint32
	// KeyValid is BERT's padding mask (B*T, 0 = padding that no query attends to, nil = all
	// valid); GPT takes none.
	KeyValid []uint32
	// Train applies dropout of probability Cfg.Dropout with the masks of Philox key DropoutKey
	// (the GPU model's key for a micro-step, Net.dropoutKey), and Cfg.Smoothing's label
	// smoothing to the loss; without it the loss is the plain cross-entropy.
	Train      bool
	DropoutKey uint32
	// Images are a ViT's input: B images of Cfg.Image x Cfg.Image pixels, row-major, with their
	// Labels (model.IgnoreIndex is not counted); T is the patches plus the class token, and
	// Input and Target are nil.
	Images []float64
	Labels []uint32
}

// Model is a GPT-2 or BERT with float64 parameters, keyed by their Hugging Face names and
// shaped as Cfg.Params(Vocab) says.
type Model struct {
	Cfg   config.Model
	Vocab int
	Specs []model.ParamSpec
	P     map[string][]float64
}

// Forward is what a forward pass computed, for comparison with the GPU model.
type Forward struct {
	// Residual is the residual stream (B*T x width): for GPT the input of each block and then
	// the output of the last (before ln_f); for BERT the output of the embedding LayerNorm and
	// then of each layer.
	Residual [][]float64
	Logits   []float64 // B*T x vocab (ViT: B x classes, the class tokens')
	Losses   []float64 // per-token cross-entropy, B*T (ViT: B); 0 where the target is model.IgnoreIndex
	Loss     float64   // mean of Losses over the counted targets; 0 when none is counted
	Count    int       // targets counted
}

// New returns a reference model over params, which must hold exactly the parameters
// of model.Params(cfg, vocab) with their sizes. The model uses the slices, it does not copy them.
func New(cfg config.Model, vocab int, params map[string][]float64) (*Model, error) {
	switch {
	case cfg.Arch != "gpt" && cfg.Arch != "bert" && cfg.Arch != "vit":
		return nil, fmt.Errorf("reference model: arch %q is not \"gpt\", \"bert\" or \"vit\"", cfg.Arch)
	case cfg.Width < 1 || cfg.Heads < 1 || cfg.Width%cfg.Heads != 0:
		return nil, fmt.Errorf("reference model: width %d is not a positive multiple of heads %d", cfg.Width, cfg.Heads)
	case vocab < 1 || cfg.Context < 1 || cfg.FFN < 1 || cfg.Layers < 0:
		return nil, fmt.Errorf("reference model: vocab %d, context %d, ffn %d, layers %d", vocab, cfg.Context, cfg.FFN, cfg.Layers)
	case cfg.Arch == "bert" && cfg.TypeVocab < 1:
		return nil, fmt.Errorf("reference model: type_vocab %d", cfg.TypeVocab)
	}
	specs := model.Params(cfg, vocab)
	for _, s := range specs {
		p, ok := params[s.Name]
		if !ok {
			return nil, fmt.Errorf("reference model: parameter %s is missing", s.Name)
		}
		if len(p) != s.Size() {
			return nil, fmt.Errorf("reference model: parameter %s has %d values, shape %v needs %d", s.Name, len(p), s.Shape, s.Size())
		}
	}
	if len(params) != len(specs) {
		known := make(map[string]bool, len(specs))
		for _, s := range specs {
			known[s.Name] = true
		}
		for name := range params {
			if !known[name] {
				return nil, fmt.Errorf("reference model: unknown parameter %s", name)
			}
		}
	}
	return &Model{Cfg: cfg, Vocab: vocab, Specs: specs, P: params}, nil
}

// Widen widens float32 parameters (as the GPU model reads them back) to float64.
func Widen(p map[string][]float32) map[string][]float64 {
	out := make(map[string][]float64, len(p))
	for name, v := range p {
		out[name] = opref.F64(v)
	}
	return out
}

// Forward runs the forward pass.
func (m *Model) Forward(b Batch) (*Forward, error) {
	p, err := m.forward(b)
	if err != nil {
		return nil, err
	}
	return &p.out, nil
}

// Logits returns the logits, B*T rows of Vocab.
func (m *Model) Logits(b Batch) ([]float64, error) {
	p, err := m.forward(b)
	if err != nil {
		return nil, err
	}
	return p.out.Logits, nil
}

// Loss returns the mean cross-entropy over the counted targets (those not model.IgnoreIndex; 0 when
// none is) and, when grads is not nil, sets grads[name] to dLoss/dParam for every parameter
// (a new slice of the parameter's size; gradients are not accumulated across calls).
func (m *Model) Loss(b Batch, grads map[string][]float64) (float64, error) {
	p, err := m.forward(b)
	if err != nil {
		return 0, err
	}
	if grads != nil {
		g := m.backward(p)
		for name, v := range g {
			grads[name] = v
		}
	}
	return p.out.Loss, nil
}

// smoothing is the label smoothing of batch b's loss: the configuration's in training, else 0.
func (m *Model) smoothing(b Batch) float64 {
	if !b.Train {
		return 0
	}
	return m.Cfg.Smoothing
}

// eps is the LayerNorm epsilon: GPT-2's 1e-5, or Hugging Face BERT's 1e-12.
func (m *Model) eps() float64 {
	switch m.Cfg.Arch {
	case "bert":
		return 1e-12
	case "vit":
		return 1e-6
	}
	return 1e-5
}

func (m *Model) check(b Batch) error {
	if m.Cfg.Arch == "vit" {
		return m.checkImages(b)
	}
	n := b.B * b.T
	switch {
	case b.B < 1 || b.T < 1 || b.T > m.Cfg.Context:
		return fmt.Errorf("reference model: batch %d x %d does not fit context %d", b.B, b.T, m.Cfg.Context)
	case len(b.Input) != n || len(b.Target) != n:
		return fmt.Errorf("reference model: %d inputs and %d targets for a %d x %d batch", len(b.Input), len(b.Target), b.B, b.T)
	case b.TokenTypes != nil && len(b.TokenTypes) != n, b.KeyValid != nil && len(b.KeyValid) != n:
		return fmt.Errorf("reference model: %d token types and %d key-valid flags for a %d x %d batch", len(b.TokenTypes), len(b.KeyValid), b.B, b.T)
	case m.Cfg.Arch == "gpt" && (b.TokenTypes != nil || b.KeyValid != nil):
		return fmt.Errorf("reference model: GPT takes no token types or padding mask")
	}
	for i := 0; i < n; i++ {
		if int(b.Input[i]) >= m.Vocab {
			return fmt.Errorf("reference model: input %d is token %d, outside the vocabulary of %d", i, b.Input[i], m.Vocab)
		}
		if t := b.Target[i]; t != model.IgnoreIndex && int(t) >= m.Vocab {
			return fmt.Errorf("reference model: target %d is token %d, outside the vocabulary of %d", i, t, m.Vocab)
		}
		if b.TokenTypes != nil && int(b.TokenTypes[i]) >= m.Cfg.TypeVocab {
			return fmt.Errorf("reference model: token type %d is %d, type_vocab is %d", i, b.TokenTypes[i], m.Cfg.TypeVocab)
		}
	}
	return nil
}

// refPass is one forward pass with everything its backward needs.
type refPass struct {
	b      Batch
	out    Forward
	pos    []uint32 // position of every token
	types  []uint32 // BERT token types (zeros when the batch has none)
	embLN  refLayerNorm
	patch  refLinear // ViT's patch embedding
	blocks []refBlock
	head   refHead
}

// refBlock is one transformer block's saved activations. GPT-2 (pre-LN) uses ln1, qkv, attn,
// proj, ln2, fc, gelu, fcProj; BERT (post-LN) uses q, k, v in place of qkv, and ln1 / ln2 as
// its attention-output and output LayerNorms.
type refBlock struct {
	ln1, ln2         refLayerNorm
	qkv, q, k, v     refLinear
	attn             refAttention
	proj, fc, fcProj refLinear
	gelu             refGelu
}

// refHead is the output head's saved activations: GPT's ln_f and tied projection; BERT's
// transform (dense, GELU, LayerNorm) and decoder; ViT's final LayerNorm and classifier.
type refHead struct {
	dense   refLinear
	gelu    refGelu
	ln      refLayerNorm
	decoder refLinear
}

func (m *Model) forward(b Batch) (*refPass, error) {
	if err := m.check(b); err != nil {
		return nil, err
	}
	n := b.B * b.T
	p := &refPass{b: b, pos: make([]uint32, n), types: b.TokenTypes}
	for i := range p.pos {
		p.pos[i] = uint32(i % b.T)
	}
	if p.types == nil {
		p.types = make([]uint32, n)
	}
	var logits []float64
	targets := b.Target
	switch m.Cfg.Arch {
	case "bert":
		logits = m.bertForward(p)
	case "vit":
		logits, targets, n = m.vitForward(p), b.Labels, b.B
	default:
		logits = m.gptForward(p)
	}
	p.out.Logits = logits
	p.out.Losses = opref.CrossEntropy(logits, targets, n, m.Vocab, model.IgnoreIndex, m.smoothing(b))
	p.out.Loss = opref.MeanLoss(p.out.Losses, targets, model.IgnoreIndex)
	for _, t := range targets {
		if t != model.IgnoreIndex {
			p.out.Count++
		}
	}
	return p, nil
}

func (m *Model) backward(p *refPass) map[string][]float64 {
	g := make(map[string][]float64, len(m.Specs))
	for _, s := range m.Specs {
		g[s.Name] = make([]float64, s.Size())
	}
	b := p.b
	n, targets := b.B*b.T, b.Target
	if m.Cfg.Arch == "vit" {
		n, targets = b.B, b.Labels
	}
	if p.out.Count == 0 {
		return g
	}
	dlogits := opref.CrossEntropyBackward(p.out.Logits, targets, n, m.Vocab, model.IgnoreIndex, m.smoothing(b), 1/float64(p.out.Count))
	switch m.Cfg.Arch {
	case "bert":
		m.bertBackward(p, dlogits, g)
	case "vit":
		m.vitBackward(p, dlogits, g)
	default:
		m.gptBackward(p, dlogits, g)
	}
	return g
}

// gptForward runs GPT-2: embeddings, pre-LN blocks, ln_f and the tied head; it returns the
// logits.
func (m *Model) gptForward(p *refPass) []float64 {
	c, b := m.Cfg, p.b
	n, d, f := b.B*b.T, c.Width, c.FFN
	x := opref.Add(opref.EmbeddingForward(b.Input, m.P["wte.weight"], d), opref.EmbeddingForward(p.pos, m.P["wpe.weight"], d))
	x = m.dropout(p, 0, x)
	p.blocks = make([]refBlock, c.Layers)
	for l := range p.blocks {
		blk, h := &p.blocks[l], model.GPTLayer(l)
		p.out.Residual = append(p.out.Residual, x)
		a := blk.ln1.forward(m, h+"ln_1", x, n, d)
		qkv := blk.qkv.forward(m, h+"attn.c_attn.weight", h+"attn.c_attn.bias", false, a, n, d, 3*d)
		y := blk.attn.forward(m.attention(b, true), qkv)
		x = opref.Add(x, m.dropout(p, model.DropSite(l, false), blk.proj.forward(m, h+"attn.c_proj.weight", h+"attn.c_proj.bias", false, y, n, d, d)))
		a = blk.ln2.forward(m, h+"ln_2", x, n, d)
		u := blk.gelu.forward(blk.fc.forward(m, h+"mlp.c_fc.weight", h+"mlp.c_fc.bias", false, a, n, d, f))
		x = opref.Add(x, m.dropout(p, model.DropSite(l, true), blk.fcProj.forward(m, h+"mlp.c_proj.weight", h+"mlp.c_proj.bias", false, u, n, f, d)))
	}
	p.out.Residual = append(p.out.Residual, x)
	a := p.head.ln.forward(m, "ln_f", x, n, d)
	return p.head.decoder.forward(m, "wte.weight", "", true, a, n, d, m.Vocab)
}

// gptBackward adds the gradients of the loss, given dlogits, to g.
func (m *Model) gptBackward(p *refPass, dlogits []float64, g map[string][]float64) {
	c, b := m.Cfg, p.b
	d := c.Width
	dx := p.head.ln.backward(m, p.head.decoder.backward(m, dlogits, g), g)
	for l := c.Layers - 1; l >= 0; l-- {
		blk := &p.blocks[l]
		da := blk.fc.backward(m, blk.gelu.backward(blk.fcProj.backward(m, m.dropout(p, model.DropSite(l, true), dx), g)), g)
		dx = opref.Add(dx, blk.ln2.backward(m, da, g))
		dqkv := blk.attn.backward(blk.proj.backward(m, m.dropout(p, model.DropSite(l, false), dx), g))
		dx = opref.Add(dx, blk.ln1.backward(m, blk.qkv.backward(m, dqkv, g), g))
	}
	dx = m.dropout(p, 0, dx)
	accumulate(g["wte.weight"], opref.EmbeddingBackward(b.Input, dx, m.Vocab, d))
	accumulate(g["wpe.weight"], opref.EmbeddingBackward(p.pos, dx, c.Context, d))
}

// bertForward runs BertForMaskedLM: embeddings and their LayerNorm, post-LN layers, the MLM
// transform and the decoder tied to the word embeddings; it returns the logits.
func (m *Model) bertForward(p *refPass) []float64 {
	c, b := m.Cfg, p.b
	n, d, f := b.B*b.T, c.Width, c.FFN
	e := "bert.embeddings."
	x := opref.Add(opref.EmbeddingForward(b.Input, m.P[e+"word_embeddings.weight"], d), opref.EmbeddingForward(p.pos, m.P[e+"position_embeddings.weight"], d))
	x = opref.Add(x, opref.EmbeddingForward(p.types, m.P[e+"token_type_embeddings.weight"], d))
	x = m.dropout(p, 0, p.embLN.forward(m, e+"LayerNorm", x, n, d))
	p.blocks = make([]refBlock, c.Layers)
	for l := range p.blocks {
		blk, h := &p.blocks[l], model.BERTLayer(l)
		p.out.Residual = append(p.out.Residual, x)
		s := h + "attention.self."
		q := blk.q.forward(m, s+"query.weight", s+"query.bias", true, x, n, d, d)
		k := blk.k.forward(m, s+"key.weight", s+"key.bias", true, x, n, d, d)
		v := blk.v.forward(m, s+"value.weight", s+"value.bias", true, x, n, d, d)
		y := blk.attn.forward(m.attention(b, false), packQKV(q, k, v, n, d))
		o := h + "attention.output."
		y = m.dropout(p, model.DropSite(l, false), blk.proj.forward(m, o+"dense.weight", o+"dense.bias", true, y, n, d, d))
		x = blk.ln1.forward(m, o+"LayerNorm", opref.Add(x, y), n, d)
		u := blk.gelu.forward(blk.fc.forward(m, h+"intermediate.dense.weight", h+"intermediate.dense.bias", true, x, n, d, f))
		u = m.dropout(p, model.DropSite(l, true), blk.fcProj.forward(m, h+"output.dense.weight", h+"output.dense.bias", true, u, n, f, d))
		x = blk.ln2.forward(m, h+"output.LayerNorm", opref.Add(x, u), n, d)
	}
	p.out.Residual = append(p.out.Residual, x)
	t := "cls.predictions.transform."
	u := p.head.gelu.forward(p.head.dense.forward(m, t+"dense.weight", t+"dense.bias", true, x, n, d, d))
	u = p.head.ln.forward(m, t+"LayerNorm", u, n, d)
	return p.head.decoder.forward(m, e+"word_embeddings.weight", model.BERTDecoderBias, true, u, n, d, m.Vocab)
}

// bertBackward adds the gradients of the loss, given dlogits, to g.
func (m *Model) bertBackward(p *refPass, dlogits []float64, g map[string][]float64) {
	c, b := m.Cfg, p.b
	n, d := b.B*b.T, c.Width
	du := p.head.ln.backward(m, p.head.decoder.backward(m, dlogits, g), g)
	dx := p.head.dense.backward(m, p.head.gelu.backward(du), g)
	for l := c.Layers - 1; l >= 0; l-- {
		blk := &p.blocks[l]
		dr := blk.ln2.backward(m, dx, g) // gradient of x + output.dense(...)
		dx = opref.Add(dr, blk.fc.backward(m, blk.gelu.backward(blk.fcProj.backward(m, m.dropout(p, model.DropSite(l, true), dr), g)), g))
		dr = blk.ln1.backward(m, dx, g) // gradient of x + attention.output.dense(...)
		dq, dk, dv := unpackQKV(blk.attn.backward(blk.proj.backward(m, m.dropout(p, model.DropSite(l, false), dr), g)), n, d)
		dx = opref.Add(dr, blk.q.backward(m, dq, g))
		dx = opref.Add(dx, blk.k.backward(m, dk, g))
		dx = opref.Add(dx, blk.v.backward(m, dv, g))
	}
	e := "bert.embeddings."
	dx = p.embLN.backward(m, m.dropout(p, 0, dx), g)
	accumulate(g[e+"word_embeddings.weight"], opref.EmbeddingBackward(b.Input, dx, m.Vocab, d))
	accumulate(g[e+"position_embeddings.weight"], opref.EmbeddingBackward(p.pos, dx, c.Context, d))
	accumulate(g[e+"token_type_embeddings.weight"], opref.EmbeddingBackward(p.types, dx, c.TypeVocab, d))
}

// dropout applies dropout site's mask to x (an activation, or in the backward the gradient of
// the site's output) when the pass trains with dropout, and returns x itself otherwise. The
// probability is rounded to float32, as the GPU model uses it.
func (m *Model) dropout(p *refPass, site int, x []float64) []float64 {
	if !p.b.Train || m.Cfg.Dropout == 0 {
		return x
	}
	return opref.Dropout(x, p.b.DropoutKey, model.DropoutOffset(site, len(x)), float64(float32(m.Cfg.Dropout)))
}

// attention is the shape of the batch's attention: causal for GPT, padded for BERT.
func (m *Model) attention(b Batch, causal bool) opref.Attention {
	return opref.Attention{B: b.B, T: b.T, H: m.Cfg.Heads, Dh: m.Cfg.Width / m.Cfg.Heads, Causal: causal, KeyValid: b.KeyValid}
}

// packQKV interleaves q, k and v (rows x d each) into opref.Attention's (rows, 3, d) layout.
func packQKV(q, k, v []float64, rows, d int) []float64 {
	qkv := make([]float64, 3*rows*d)
	for r := 0; r < rows; r++ {
		copy(qkv[(3*r+0)*d:][:d], q[r*d:][:d])
		copy(qkv[(3*r+1)*d:][:d], k[r*d:][:d])
		copy(qkv[(3*r+2)*d:][:d], v[r*d:][:d])
	}
	return qkv
}

// unpackQKV splits a (rows, 3, d) gradient into those of q, k and v.
func unpackQKV(qkv []float64, rows, d int) (q, k, v []float64) {
	q, k, v = make([]float64, rows*d), make([]float64, rows*d), make([]float64, rows*d)
	for r := 0; r < rows; r++ {
		copy(q[r*d:][:d], qkv[(3*r+0)*d:][:d])
		copy(k[r*d:][:d], qkv[(3*r+1)*d:][:d])
		copy(v[r*d:][:d], qkv[(3*r+2)*d:][:d])
	}
	return q, k, v
}

// accumulate adds src to dst.
func accumulate(dst, src []float64) {
	for i, v := range src {
		dst[i] += v
	}
}

// refLinear is an affine map y = x·W + b saved for its backward. W is stored in x out
// (Hugging Face's Conv1D, GPT-2) or, when outIn, out x in (nn.Linear, BERT and the tied heads).
type refLinear struct {
	w, b           string // parameter names; b == "" means no bias
	outIn          bool
	x              []float64
	rows, in, outs int
}

// weight returns the index in W of the weight from input i to output o.
func (l *refLinear) weight(i, o int) int {
	if l.outIn {
		return o*l.in + i
	}
	return i*l.outs + o
}

func (l *refLinear) forward(m *Model, w, b string, outIn bool, x []float64, rows, in, out int) []float64 {
	*l = refLinear{w: w, b: b, outIn: outIn, x: x, rows: rows, in: in, outs: out}
	W := m.P[w]
	y := make([]float64, rows*out)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			var s float64
			for i := 0; i < in; i++ {
				s += x[r*in+i] * W[l.weight(i, o)]
			}
			y[r*out+o] = s
		}
	}
	if b == "" {
		return y
	}
	return opref.AddBias(y, m.P[b], rows, out)
}

// backward adds dW = xᵀ·dy and db = Σ dy to g and returns dx = dy·Wᵀ.
func (l *refLinear) backward(m *Model, dy []float64, g map[string][]float64) []float64 {
	W, dW := m.P[l.w], g[l.w]
	dx := make([]float64, l.rows*l.in)
	for r := 0; r < l.rows; r++ {
		for o := 0; o < l.outs; o++ {
			d := dy[r*l.outs+o]
			for i := 0; i < l.in; i++ {
				dx[r*l.in+i] += d * W[l.weight(i, o)]
				dW[l.weight(i, o)] += d * l.x[r*l.in+i]
			}
		}
	}
	if l.b != "" {
		accumulate(g[l.b], opref.BiasGrad(dy, l.rows, l.outs))
	}
	return dx
}

// refLayerNorm is a LayerNorm over rows of the residual width, saved for its backward; its
// parameters are name+".weight" and name+".bias".
type refLayerNorm struct {
	name        string
	x           []float64
	mean, rstd  []float64
	rows, width int
}

func (l *refLayerNorm) forward(m *Model, name string, x []float64, rows, width int) []float64 {
	y, mean, rstd := opref.LayerNormForward(x, m.P[name+".weight"], m.P[name+".bias"], rows, width, m.eps())
	*l = refLayerNorm{name: name, x: x, mean: mean, rstd: rstd, rows: rows, width: width}
	return y
}

func (l *refLayerNorm) backward(m *Model, dy []float64, g map[string][]float64) []float64 {
	dx, dgamma, dbeta := opref.LayerNormBackward(l.x, m.P[l.name+".weight"], l.mean, l.rstd, dy, l.rows, l.width)
	accumulate(g[l.name+".weight"], dgamma)
	accumulate(g[l.name+".bias"], dbeta)
	return dx
}

// refGelu is a GELU (tanh form) saved for its backward.
type refGelu struct{ x []float64 }

func (l *refGelu) forward(x []float64) []float64 {
	l.x = x
	return opref.GeluForward(x)
}

func (l *refGelu) backward(dy []float64) []float64 { return opref.GeluBackward(l.x, dy) }

// refAttention is a scaled-dot-product attention over packed qkv, saved for its backward.
type refAttention struct {
	a   opref.Attention
	qkv []float64
}

func (l *refAttention) forward(a opref.Attention, qkv []float64) []float64 {
	*l = refAttention{a: a, qkv: qkv}
	y, _ := opref.AttentionForward(a, qkv)
	return y
}

func (l *refAttention) backward(dy []float64) []float64 {
	return opref.AttentionBackward(l.a, l.qkv, dy)
}
