package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// Net is a model on the GPU for one micro-batch shape (B sequences of T tokens): its parameters,
// their gradients and AdamW moments, the activations, and the recorded sequences of a training
// micro-step, an evaluation pass and an optimizer update. The sequences are recorded once and
// replayed; the host only writes token ids, targets (and BERT's padding mask) and step
// parameters. Arch "gpt" is GPT-2 (gpt.go), "bert" BertForMaskedLM (bert.go), "vit"
// ViTForImageClassification (vit.go: B images of T = patches + 1 rows, Vocab its classes).
type Net struct {
	Cfg   config.Model
	Vocab int
	B, T  int
	Specs []ParamSpec

	o       *ops.Ops
	ctx     *vk.Context
	params  []*vk.Tensor
	grads   []*vk.Tensor
	m, v    []*vk.Tensor
	index   map[string]int
	tensors []*vk.Tensor // every tensor allocated, for Free
	pad     uint32       // BERT's [PAD] id: such inputs are padding no query attends to

	in    inputs
	act   activations
	grad  scratch
	drop  dropout
	step  *vk.Tensor // ops.StepParams
	parts *vk.Tensor // GradNorm partial sums
	clip  float32    // the update's gradient-norm clip (0: none)

	micro, eval, update, zero *vk.Sequence

	// The micro-step recorded bucket by bucket (buckets.go), once a data-parallel job asks.
	bucketSeqs []*vk.Sequence
	buckets    [][]int
}

// inputs are the tensors the host writes: ids and targets for each micro-batch, and for BERT
// the padding mask (1 = real token, 0 = [PAD]); positions and BERT's token types (all 0, one
// segment) are written once.
type inputs struct {
	ids, targets, pos *vk.Tensor
	types, keyValid   *vk.Tensor // BERT only
	// ViT only: every row's patch pixels, and the ids that select the class-token rows and the
	// patch rows (vit.go).
	pixels, clsRows, patchRows *vk.Tensor
}

// lnActs is what a LayerNorm saves for its backward: its input x, output y and the row
// statistics. x or y may be another activation (a residual stream).
type lnActs struct {
	x, y, mean, rstd *vk.Tensor
}

// layerActs are the activations one block saves for its backward pass. GPT-2 (pre-LN): ln1
// normalises the residual into the attention, ln2.x is the residual after attention. BERT
// (post-LN): ln1 normalises residual + attention output into ln1.y, ln2 residual + MLP output
// into the next layer's residual.
type layerActs struct {
	ln1, ln2      lnActs
	qkv, att, lse *vk.Tensor // attention: packed q, k, v (B, T, 3, H, Dh), output, log-sum-exp
	fch, fcg      *vk.Tensor // MLP hidden, before and after GELU
}

type activations struct {
	res      []*vk.Tensor // residual stream entering each block, and after the last
	layers   []layerActs
	emb      lnActs     // BERT: embedding sum and its LayerNorm (y is res[0])
	mlmDense *vk.Tensor // BERT: the MLM transform's dense output, and after GELU
	mlmGelu  *vk.Tensor
	final    lnActs // the LayerNorm before the tied decoder: GPT's ln_f, BERT's transform LayerNorm

	logits, losses, tmp *vk.Tensor // logits are overwritten by their gradient in the backward
}

// scratch holds the backward pass's running gradients.
type scratch struct {
	dres, dtmp, dqkv, dfc *vk.Tensor
	ddrop                 *vk.Tensor // the gradient of a dropout site's input (with dropout only)
	ones                  *vk.Tensor // B*T ones: bias gradients of strided outputs (1ᵀ·dy)
}

// NewNet allocates a model for micro-batches of b x t tokens and initialises its parameters
// from seed (normal with the configured std; GPT-2's residual projections scaled by
// 1/sqrt(2·layers)). Training's dropout masks derive from seed too (dropoutKey).
func NewNet(o *ops.Ops, cfg config.Model, vocab, b, t int, seed uint64) (*Net, error) {
	n, err := newNet(o, cfg, vocab, b, t)
	if err != nil {
		return nil, err
	}
	plan, err := n.plan()
	if err != nil {
		return nil, err
	}
	if !plan.Fits {
		return nil, fmt.Errorf("the model does not fit the device:\n%s", plan)
	}
	a := &alloc{mem: n.ctx}
	err = n.allocate(a, seed)
	n.tensors = a.all
	if err == nil {
		err = n.writeConstants()
	}
	if err != nil {
		n.Free()
		return nil, err
	}
	if err := n.initParams(seed); err != nil {
		n.Free()
		return nil, err
	}
	if err := n.record(); err != nil {
		n.Free()
		return nil, err
	}
	return n, nil
}

// newNet checks a model's shape and that its size is not absurd for the device (before
// listing its parameters), and returns it with nothing allocated.
func newNet(o *ops.Ops, cfg config.Model, vocab, b, t int) (*Net, error) {
	if cfg.Arch != "gpt" && cfg.Arch != "bert" && cfg.Arch != "vit" {
		return nil, fmt.Errorf("model.arch %q: the GPU runs \"gpt\", \"bert\" and \"vit\"", cfg.Arch)
	}
	if t > cfg.Context || b < 1 || t < 1 || cfg.Arch == "vit" && t != cfg.Context {
		return nil, fmt.Errorf("micro-batch %d x %d does not fit model.context = %d", b, t, cfg.Context)
	}
	if err := sizeGuard(cfg, vocab, o.Context().Capacity()); err != nil {
		return nil, err
	}
	n := &Net{Cfg: cfg, Vocab: vocab, B: b, T: t, Specs: Params(cfg, vocab), o: o, ctx: o.Context(), index: map[string]int{}}
	if cfg.Arch == "bert" {
		tok, err := data.NewTokenizer(cfg.Tokenizer)
		if err != nil {
			return nil, err
		}
		n.pad = data.BERTSpecials(tok.VocabSize()).Pad
	}
	return n, nil
}

func (n *Net) bert() bool { return n.Cfg.Arch == "bert" }

// rows is the number of tokens of a micro-batch, the rows of every activation.
func (n *Net) rows() int { return n.B * n.T }

// alloc is a small helper that collects the first allocation error. Its allocator is the
// device's context, or a vk.Plan that only sizes the tensors (PlanNet).
type alloc struct {
	mem vk.Allocator
	all []*vk.Tensor
	err error
}

// kind names the memory-plan term of the tensors allocated next.
func (a *alloc) kind(k string) {
	if p, ok := a.mem.(*vk.Plan); ok {
		p.Kind = k
	}
}

func (a *alloc) tensor(name string, size int) *vk.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := a.mem.NewTensor(name, size)
	if err != nil {
		a.err = err
		return nil
	}
	a.all = append(a.all, t)
	return t
}

// rows allocates a parameter-shaped tensor of rows x cols, held in row chunks (of multiples of
// 4 rows, which keeps the vocabulary products on ops.Gemm's vec4 path) when it exceeds the
// device's binding limit: the token (or class) tables.
func (a *alloc) rows(name string, rows, cols int) *vk.Tensor {
	if a.err != nil || rows == 1 {
		return a.tensor(name, rows*cols)
	}
	t, err := a.mem.NewRowTensor(name, rows, cols, 4)
	if err != nil {
		a.err = err
		return nil
	}
	a.all = append(a.all, t)
	return t
}

// layerNorm allocates a LayerNorm's statistics over rows rows of width, and its input x and
// output y unless given (another activation).
func (a *alloc) layerNorm(name string, rows, width int, x, y *vk.Tensor) lnActs {
	if x == nil {
		x = a.tensor(name+" input", rows*width)
	}
	if y == nil {
		y = a.tensor(name, rows*width)
	}
	return lnActs{x: x, y: y, mean: a.tensor(name+" mean", rows), rstd: a.tensor(name+" rstd", rows)}
}

// Memory-plan terms: what each tensor of a model is for.
const (
	KindParams      = "parameters"
	KindGrads       = "gradients"
	KindMoments     = "AdamW moments"
	KindActivations = "activations"
	KindWorkspace   = "workspace"
)

// allocate makes every tensor of the model with a (nothing is written).
func (n *Net) allocate(a *alloc, seed uint64) error {
	for i, p := range n.Specs {
		n.index[p.Name] = i
		rows, cols := n.storedRows(p)
		a.kind(KindParams)
		n.params = append(n.params, a.rows(p.Name, rows, cols))
		a.kind(KindGrads)
		n.grads = append(n.grads, a.rows("grad "+p.Name, rows, cols))
		a.kind(KindMoments)
		n.m = append(n.m, a.rows("adam m "+p.Name, rows, cols))
		n.v = append(n.v, a.rows("adam v "+p.Name, rows, cols))
	}
	c, bert := n.Cfg, n.bert()
	bt, d, f := n.rows(), c.Width, c.FFN
	a.kind(KindActivations)
	n.in = inputs{ids: a.tensor("ids", bt), targets: a.tensor("targets", bt), pos: a.tensor("positions", bt)}
	for l := 0; l <= c.Layers; l++ {
		n.act.res = append(n.act.res, a.tensor(fmt.Sprintf("residual %d", l), bt*d))
	}
	for l := 0; l < c.Layers; l++ {
		name := func(s string) string { return fmt.Sprintf("layer %d %s", l, s) }
		la := layerActs{qkv: a.tensor(name("qkv"), bt*3*d), att: a.tensor(name("attention"), bt*d),
			lse: a.tensor(name("lse"), bt*c.Heads), fch: a.tensor(name("fc"), bt*f), fcg: a.tensor(name("fc gelu"), bt*f)}
		if bert {
			la.ln1 = a.layerNorm(name("attention LayerNorm"), bt, d, nil, nil)
			la.ln2 = a.layerNorm(name("output LayerNorm"), bt, d, nil, n.act.res[l+1])
		} else { // pre-LN: GPT-2 and ViT
			la.ln1 = a.layerNorm(name("ln_1"), bt, d, n.act.res[l], nil)
			la.ln2 = a.layerNorm(name("ln_2"), bt, d, nil, nil)
		}
		n.act.layers = append(n.act.layers, la)
	}
	if bert {
		n.in.types, n.in.keyValid = a.tensor("token types", bt), a.tensor("key valid", bt)
		n.act.emb = a.layerNorm("embeddings LayerNorm", bt, d, nil, n.act.res[0])
		n.act.mlmDense, n.act.mlmGelu = a.tensor("transform dense", bt*d), a.tensor("transform gelu", bt*d)
		n.act.final = a.layerNorm("transform LayerNorm", bt, d, n.act.mlmGelu, nil)
	} else {
		n.act.final = a.layerNorm("ln_f", bt, d, n.act.res[c.Layers], nil)
	}
	if bert || n.vit() { // the bias gradients of q, k and v, strided in the packed qkv
		n.grad.ones = a.tensor("ones", bt)
	}
	if n.vit() {
		n.in.pixels = a.tensor("patch pixels", bt*c.Patch*c.Patch)
		n.in.clsRows, n.in.patchRows = a.tensor("class-token rows", bt), a.tensor("patch rows", bt)
	}
	n.act.logits, n.act.losses = a.tensor("logits", bt*n.vocabStride()), a.tensor("losses", bt)
	a.kind(KindWorkspace)
	n.act.tmp = a.tensor("projection", bt*d)
	n.grad.dres, n.grad.dtmp = a.tensor("d residual", bt*d), a.tensor("d tmp", bt*d)
	n.grad.dqkv, n.grad.dfc = a.tensor("d qkv", bt*3*d), a.tensor("d fc", bt*f)
	n.step = a.tensor("step parameters", ops.StepParamsLen)
	if err := n.newDropout(a, c.Dropout, seed); err != nil {
		return err
	}
	parts, err := n.o.SumSquaresPartialsLen(n.grads)
	if err != nil {
		return err
	}
	n.parts = a.tensor("grad-norm partials", max(1, parts))
	return a.err
}

// writeConstants writes the inputs that never change: positions, a ViT's class-token and patch
// rows, BERT's token types (all 0), and the ones the strided bias gradients use.
func (n *Net) writeConstants() error {
	bt := n.rows()
	pos := make([]uint32, bt)
	for i := range pos {
		pos[i] = uint32(i % n.T)
	}
	if err := n.in.pos.WriteUint32(0, pos); err != nil {
		return err
	}
	if n.vit() {
		cls, patch := n.vitRows()
		if err := n.in.clsRows.WriteUint32(0, cls); err != nil {
			return err
		}
		if err := n.in.patchRows.WriteUint32(0, patch); err != nil {
			return err
		}
	}
	if n.bert() {
		if err := n.in.types.WriteUint32(0, make([]uint32, bt)); err != nil {
			return err
		}
	}
	if n.grad.ones == nil {
		return nil
	}
	ones := make([]float32, bt)
	for i := range ones {
		ones[i] = 1
	}
	return n.grad.ones.WriteFloat32(0, ones)
}

// vocabStride is the vocabulary rounded up to a multiple of 4: the rows of the token table on
// the GPU and the row stride of the logits, so that the vocabulary matmuls (the logits, and
// their two backward products) take the vec4 path of ops.Gemm. The pad rows of the token table
// (and the pad of BERT's decoder bias) are zero and stay zero: their logits are 0 and the loss
// never reads them, so their gradient is 0 and AdamW never moves them.
func (n *Net) vocabStride() int { return (n.Vocab + 3) &^ 3 }

// stored is the number of elements of parameter p's GPU tensors (and of its gradient and
// moments): the tensors indexed by token (or a ViT's class) hold vocabStride rows, the others
// p.Size().
func (n *Net) stored(p ParamSpec) int {
	rows, cols := n.storedRows(p)
	return rows * cols
}

// storedRows is the shape of parameter p's GPU tensors as rows x cols: the tables indexed by
// token or class are vocabStride x width, and may be row-chunked (vk.Context.NewRowTensor);
// every other parameter is one row, never chunked.
func (n *Net) storedRows(p ParamSpec) (rows, cols int) {
	switch p.Name {
	case "wte.weight", bertWord, vitClassifier + ".weight":
		return n.vocabStride(), p.Size() / n.Vocab
	case BERTDecoderBias, vitClassifier + ".bias":
		return 1, n.vocabStride()
	}
	return 1, p.Size()
}

func (n *Net) initParams(seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	std := n.Cfg.InitStd
	for i, p := range n.Specs {
		vals := make([]float32, n.stored(p)) // the pad past p.Size() stays zero
		switch p.Init {
		case InitNormal, InitNormalScaled:
			s := std
			if p.Init == InitNormalScaled {
				s /= math.Sqrt(2 * float64(n.Cfg.Layers))
			}
			for j := range p.Size() {
				vals[j] = float32(rng.NormFloat64() * s)
			}
		case InitOnes:
			for j := range p.Size() {
				vals[j] = 1
			}
		}
		if err := n.params[i].WriteFloat32(0, vals); err != nil {
			return err
		}
	}
	return n.ResetMoments()
}

// ResetMoments zeroes AdamW's first and second moments (a fresh optimizer).
func (n *Net) ResetMoments() error {
	for i, p := range n.Specs {
		zeros := make([]float32, n.stored(p))
		if err := n.m[i].WriteFloat32(0, zeros); err != nil {
			return err
		}
		if err := n.v[i].WriteFloat32(0, zeros); err != nil {
			return err
		}
	}
	return nil
}

// Free releases the model's tensors and sequences.
func (n *Net) Free() {
	for _, s := range append([]*vk.Sequence{n.micro, n.eval, n.update, n.zero}, n.bucketSeqs...) {
		if s != nil {
			s.Release()
		}
	}
	for _, t := range n.tensors {
		t.Free()
	}
	n.tensors = nil
}

// p returns the parameter tensor called name; g its gradient.
func (n *Net) p(name string) *vk.Tensor { return n.params[n.index[name]] }
func (n *Net) g(name string) *vk.Tensor { return n.grads[n.index[name]] }

// record runs the recording steps in order and stops at the first error.
func record(steps ...func() error) error {
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// The layers both models are built from, forward and backward side by side; every one runs on
// the B*T rows of a micro-batch.

// linear is an affine layer over the rows: weight w and bias b (b == "" means none). The weight
// is stored in x out (GPT-2's Conv1D: y = x·W + b) or, when outIn, out x in (nn.Linear, BERT and
// the tied decoders: y = x·Wᵀ + b).
type linear struct {
	w, b    string
	in, out int
	outIn   bool
}

// conv1D is GPT-2's layer name (name.weight in x out, name.bias).
func conv1D(name string, in, out int) linear {
	return linear{w: name + ".weight", b: name + ".bias", in: in, out: out}
}

// dense is nn.Linear's layer name (name.weight out x in, name.bias).
func dense(name string, in, out int) linear {
	return linear{w: name + ".weight", b: name + ".bias", in: in, out: out, outIn: true}
}

// cols is a linear layer's output (or its gradient) inside a row-major matrix: the columns from
// off of a tensor whose rows have ld elements (0: dense, as many as the layer's outputs).
type cols struct {
	t       *vk.Tensor
	off, ld int
}

func (n *Net) bias(l linear) *vk.Tensor {
	if l.b == "" {
		return nil
	}
	return n.p(l.b)
}

// linearForward records y = x·W + b (x·Wᵀ + b when outIn).
func (n *Net) linearForward(s *vk.Sequence, l linear, x *vk.Tensor, y cols) error {
	return n.o.Gemm(s, ops.Gemm{A: x, B: n.p(l.w), C: y.t, OffC: y.off, Ldc: y.ld, Bias: n.bias(l),
		M: n.rows(), N: l.out, K: l.in, TransB: l.outIn, Alpha: 1})
}

// linearBackward records dW += xᵀ·dy (dyᵀ·x when outIn), db += Σ dy and, when dx is not nil,
// dx = dy·Wᵀ (dy·W when outIn), or dx += ... when accumulate is set.
func (n *Net) linearBackward(s *vk.Sequence, l linear, x *vk.Tensor, dy cols, dx *vk.Tensor, accumulate bool) error {
	rows := n.rows()
	dw := ops.Gemm{A: x, B: dy.t, OffB: dy.off, Ldb: dy.ld, C: n.g(l.w), M: l.in, N: l.out, K: rows, TransA: true, Alpha: 1, Beta: 1}
	if l.outIn {
		dw = ops.Gemm{A: dy.t, OffA: dy.off, Lda: dy.ld, B: x, C: n.g(l.w), M: l.out, N: l.in, K: rows, TransA: true, Alpha: 1, Beta: 1}
	}
	if err := n.o.Gemm(s, dw); err != nil {
		return err
	}
	if l.b != "" {
		var err error
		if dy.off == 0 && (dy.ld == 0 || dy.ld == l.out) {
			err = n.o.BiasGrad(s, dy.t, n.g(l.b), rows, l.out)
		} else { // strided: db += 1ᵀ·dy
			err = n.o.Gemm(s, ops.Gemm{A: n.grad.ones, B: dy.t, OffB: dy.off, Ldb: dy.ld, C: n.g(l.b), M: 1, N: l.out, K: rows, Alpha: 1, Beta: 1})
		}
		if err != nil {
			return err
		}
	}
	if dx == nil {
		return nil
	}
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	return n.o.Gemm(s, ops.Gemm{A: dy.t, OffA: dy.off, Lda: dy.ld, B: n.p(l.w), C: dx, M: rows, N: l.in, K: l.out,
		TransB: !l.outIn, Alpha: 1, Beta: beta})
}

// The LayerNorm epsilons: GPT-2's, and Hugging Face BERT's (ViT's is vitLNEps).
const (
	lnEps     = 1e-5
	bertLNEps = 1e-12
)

// eps is the model's LayerNorm epsilon.
func (n *Net) eps() float32 {
	switch n.Cfg.Arch {
	case "bert":
		return bertLNEps
	case "vit":
		return vitLNEps
	}
	return lnEps
}

// layerNormForward records LayerNorm name (name.weight, name.bias) from a.x to a.y.
func (n *Net) layerNormForward(s *vk.Sequence, name string, a lnActs) error {
	return n.o.LayerNormForward(s, a.x, n.p(name+".weight"), n.p(name+".bias"), a.y, a.mean, a.rstd, n.rows(), n.Cfg.Width, n.eps())
}

// layerNormBackward records the gradients of LayerNorm name given dy: its parameters' are added
// to, dx is overwritten (added to when accumulate is set).
func (n *Net) layerNormBackward(s *vk.Sequence, name string, a lnActs, dy, dx *vk.Tensor, accumulate bool) error {
	return n.o.LayerNormBackward(s, a.x, n.p(name+".weight"), a.mean, a.rstd, dy, dx, n.g(name+".weight"), n.g(name+".bias"),
		n.rows(), n.Cfg.Width, accumulate)
}

// attention is layer l's attention: causal for GPT, over the padding mask for BERT, over every
// row for ViT.
func (n *Net) attention(l int) ops.Attention {
	c, a := n.Cfg, n.act.layers[l]
	return ops.Attention{QKV: a.qkv, Out: a.att, LSE: a.lse, B: n.B, T: n.T, H: c.Heads, Dh: c.Width / c.Heads,
		Causal: c.Arch == "gpt", KeyValid: n.in.keyValid}
}

// recordForward records the forward pass up to the logits; train applies dropout.
func (n *Net) recordForward(s *vk.Sequence, train bool) error {
	switch n.Cfg.Arch {
	case "bert":
		return n.bertForward(s, train)
	case "vit":
		return n.vitForward(s, train)
	}
	return n.gptForward(s, train)
}

// recordLoss records the per-token losses of the logits (an evaluation pass): the plain
// cross-entropy, without training's label smoothing.
func (n *Net) recordLoss(s *vk.Sequence) error {
	return n.o.CrossEntropyForwardStrided(s, n.act.logits, n.in.targets, n.act.losses, n.rows(), n.Vocab, n.vocabStride(), IgnoreIndex)
}

// recordBackward records the per-token losses and the gradient of the logits, which overwrites
// them (one kernel, one pass over the logits for both; with model.label_smoothing both are of the
// smoothed target), then the backward pass, adding every parameter's gradient to n.grads.
func (n *Net) recordBackward(seg *segments) error {
	if err := n.o.CrossEntropyBackwardStrided(seg.cur(), n.act.logits, n.in.targets, n.act.logits, n.act.losses, n.step,
		n.rows(), n.Vocab, n.vocabStride(), IgnoreIndex, float32(n.Cfg.Smoothing)); err != nil {
		return err
	}
	switch n.Cfg.Arch {
	case "bert":
		return n.bertBackward(seg)
	case "vit":
		return n.vitBackward(seg)
	}
	return n.gptBackward(seg)
}

// Dropout, as Hugging Face's GPT-2 (embd_pdrop, resid_pdrop) and BERT (hidden_dropout_prob)
// apply it in training: on the embeddings' output and on each block's two branch outputs (the
// attention's output projection and the MLP's) before they join the residual stream. Each site
// draws its own mask in every micro-step (ops.DropoutForward): its rng tensor holds the
// micro-step's Philox key (dropoutKey) and the site's counter offset (DropoutOffset), so that
// no two sites or micro-steps share random numbers. Evaluation and sampling run without
// dropout, and with model.dropout = 0 nothing is recorded.

// dropout is the training's dropout state: the probability, the key the run's seed gives the
// first micro-step, and the rng tensor of every site (nil when p = 0).
type dropout struct {
	p    float32
	seed uint32
	rng  []*vk.Tensor
	// before is the number of steps a run trained before the current V-cycle phase, whose
	// optimizer steps count from 1 again: masks are numbered by the run's step, so that a phase
	// does not repeat an earlier one's masks.
	before int
}

// DropSite is the index of a dropout site: 0 for the embeddings, 1+2l and 2+2l for block l's
// attention and MLP outputs.
func DropSite(l int, mlp bool) int {
	if mlp {
		return 2 + 2*l
	}
	return 1 + 2*l
}

// DropoutOffset is the first Philox counter of site's mask over n elements: the sites of a
// micro-step use disjoint counter ranges.
func DropoutOffset(site, n int) uint32 { return uint32(site * n) }

// dropoutKey is the Philox key of micro-batch micro of optimizer step step (from 1) of the
// phase, for a step of micros micro-batches: consecutive keys from the seed's, one per
// micro-step of the run.
func (n *Net) dropoutKey(step, micro, micros int) uint32 {
	return n.drop.seed + uint32((n.drop.before+step-1)*micros+micro)
}

// newDropout allocates the dropout state of a model trained with dropout p from seed.
func (n *Net) newDropout(a *alloc, p float64, seed uint64) error {
	if p == 0 || a.err != nil {
		return a.err
	}
	sites, size := DropSite(n.Cfg.Layers-1, true)+1, n.rows()*n.Cfg.Width
	if uint64(sites-1)*uint64(size) > math.MaxUint32 {
		return fmt.Errorf("model.dropout: %d dropout sites of %d x %d activations exceed the 2^32 counters of a micro-step's masks",
			sites, n.rows(), n.Cfg.Width)
	}
	n.drop = dropout{p: float32(p), seed: rand.New(rand.NewPCG(seed, 0xd209)).Uint32()}
	for site := range sites {
		n.drop.rng = append(n.drop.rng, a.tensor(fmt.Sprintf("dropout rng %d", site), 2))
	}
	n.grad.ddrop = a.tensor("d dropout", size)
	return a.err
}

// SetPhaseStart says that the steps of the phase now training (whose optimizer steps count from
// 1 again) follow step steps of the run: dropout masks are numbered by the run's step, so that a
// V-cycle phase does not repeat an earlier one's.
func (n *Net) SetPhaseStart(step int) { n.drop.before = step }

// setDropout writes the rng tensors of micro-batch micro of step step (of micros micro-batches).
func (n *Net) setDropout(step, micro, micros int) error {
	key, size := n.dropoutKey(step, micro, micros), n.rows()*n.Cfg.Width
	for site, t := range n.drop.rng {
		if err := t.WriteUint32(0, []uint32{key, DropoutOffset(site, size)}); err != nil {
			return err
		}
	}
	return nil
}

// dropoutForward records site's dropout of x (B*T x width) in place, when training with dropout.
func (n *Net) dropoutForward(s *vk.Sequence, train bool, site int, x *vk.Tensor) error {
	if !train || n.drop.p == 0 {
		return nil
	}
	return n.o.DropoutForward(s, x, x, n.drop.rng[site], n.rows()*n.Cfg.Width, n.drop.p)
}

// dropoutGrad is where dropoutBackward leaves the gradient of a site's input, given dy, the
// gradient of its output: dy itself without dropout, else the scratch tensor.
func (n *Net) dropoutGrad(dy *vk.Tensor) *vk.Tensor {
	if n.drop.p == 0 {
		return dy
	}
	return n.grad.ddrop
}

// dropoutBackward records dx = site's dropout of dy (dx may be dy); nothing without dropout.
func (n *Net) dropoutBackward(s *vk.Sequence, site int, dy, dx *vk.Tensor) error {
	if n.drop.p == 0 {
		return nil
	}
	return n.o.DropoutBackward(s, dy, dx, n.drop.rng[site], n.rows()*n.Cfg.Width, n.drop.p, false)
}
