package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// Net is a model on the GPU for one micro-batch shape (B sequences of T tokens): its parameters,
// their gradients and AdamW moments, the activations, and the recorded sequences of a training
// micro-step, an evaluation pass and an optimizer update. The sequences are recorded once and
// replayed; the host only writes token ids and step parameters.
type Net struct {
	Cfg   ModelConfig
	Vocab int
	B, T  int
	Specs []ParamSpec

	o      *ops.Ops
	ctx    *vk.Context
	params []*vk.Tensor
	grads  []*vk.Tensor
	m, v   []*vk.Tensor
	index  map[string]int

	in    inputs
	act   activations
	grad  scratch
	step  *vk.Tensor // ops.StepParams
	parts *vk.Tensor // GradNorm partial sums

	micro, eval, update, zero *vk.Sequence
	lossesHost                []float32
}

// inputs are the tensors the host writes for each micro-batch.
type inputs struct {
	ids, targets, pos *vk.Tensor
}

// layerActs are the activations one block saves for its backward pass.
type layerActs struct {
	ln1, mean1, rstd1 *vk.Tensor // pre-attention LayerNorm
	qkv, att, lse     *vk.Tensor // attention
	mid               *vk.Tensor // residual after attention
	ln2, mean2, rstd2 *vk.Tensor // pre-MLP LayerNorm
	fch, fcg          *vk.Tensor // MLP hidden, before and after GELU
}

type activations struct {
	res                 []*vk.Tensor // residual stream entering each block, and after the last
	layers              []layerActs
	lnf, meanf, rstdf   *vk.Tensor
	logits, losses, tmp *vk.Tensor // logits are overwritten by their gradient in the backward
}

// scratch holds the backward pass's running gradients.
type scratch struct {
	dres, dtmp, dqkv, dfc *vk.Tensor
}

// NewNet allocates a model for micro-batches of b x t tokens and initialises its parameters
// from seed (normal with the configured std; residual projections scaled by 1/sqrt(2·layers)).
func NewNet(o *ops.Ops, cfg ModelConfig, vocab, b, t int, seed uint64) (*Net, error) {
	if cfg.Arch != "gpt" {
		return nil, fmt.Errorf("model.arch %q: only \"gpt\" runs on the GPU so far", cfg.Arch)
	}
	if t > cfg.Context || b < 1 || t < 1 {
		return nil, fmt.Errorf("micro-batch %d x %d does not fit model.context = %d", b, t, cfg.Context)
	}
	n := &Net{Cfg: cfg, Vocab: vocab, B: b, T: t, Specs: cfg.Params(vocab), o: o, ctx: o.Context(), index: map[string]int{}}
	if err := n.allocate(); err != nil {
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

// alloc is a small helper that collects the first allocation error.
type alloc struct {
	ctx *vk.Context
	all []*vk.Tensor
	err error
}

func (a *alloc) tensor(name string, size int) *vk.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := a.ctx.NewTensor(name, size)
	if err != nil {
		a.err = err
		return nil
	}
	a.all = append(a.all, t)
	return t
}

func (n *Net) allocate() error {
	a := &alloc{ctx: n.ctx}
	for i, p := range n.Specs {
		n.index[p.Name] = i
		n.params = append(n.params, a.tensor(p.Name, p.Size()))
		n.grads = append(n.grads, a.tensor("grad "+p.Name, p.Size()))
		n.m = append(n.m, a.tensor("adam m "+p.Name, p.Size()))
		n.v = append(n.v, a.tensor("adam v "+p.Name, p.Size()))
	}
	c := n.Cfg
	bt, d, f := n.B*n.T, c.Width, c.FFN
	n.in = inputs{ids: a.tensor("ids", bt), targets: a.tensor("targets", bt), pos: a.tensor("positions", bt)}
	for l := 0; l <= c.Layers; l++ {
		n.act.res = append(n.act.res, a.tensor(fmt.Sprintf("residual %d", l), bt*d))
	}
	for l := 0; l < c.Layers; l++ {
		name := func(s string) string { return fmt.Sprintf("h.%d %s", l, s) }
		n.act.layers = append(n.act.layers, layerActs{
			ln1: a.tensor(name("ln_1"), bt*d), mean1: a.tensor(name("ln_1 mean"), bt), rstd1: a.tensor(name("ln_1 rstd"), bt),
			qkv: a.tensor(name("qkv"), bt*3*d), att: a.tensor(name("attention"), bt*d), lse: a.tensor(name("lse"), bt*c.Heads),
			mid: a.tensor(name("residual mid"), bt*d),
			ln2: a.tensor(name("ln_2"), bt*d), mean2: a.tensor(name("ln_2 mean"), bt), rstd2: a.tensor(name("ln_2 rstd"), bt),
			fch: a.tensor(name("fc"), bt*f), fcg: a.tensor(name("fc gelu"), bt*f),
		})
	}
	n.act.lnf, n.act.meanf, n.act.rstdf = a.tensor("ln_f", bt*d), a.tensor("ln_f mean", bt), a.tensor("ln_f rstd", bt)
	n.act.logits, n.act.losses, n.act.tmp = a.tensor("logits", bt*n.Vocab), a.tensor("losses", bt), a.tensor("projection", bt*d)
	n.grad = scratch{dres: a.tensor("d residual", bt*d), dtmp: a.tensor("d tmp", bt*d),
		dqkv: a.tensor("d qkv", bt*3*d), dfc: a.tensor("d fc", bt*f)}
	n.step = a.tensor("step parameters", ops.StepParamsLen)
	if a.err != nil {
		return a.err
	}
	parts, err := n.o.SumSquaresPartialsLen(n.grads)
	if err != nil {
		return err
	}
	if n.parts = a.tensor("grad-norm partials", max(1, parts)); a.err != nil {
		return a.err
	}
	pos := make([]uint32, bt)
	for i := range pos {
		pos[i] = uint32(i % n.T)
	}
	return n.in.pos.WriteUint32(0, pos)
}

func (n *Net) initParams(seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	std := n.Cfg.InitStd
	for i, p := range n.Specs {
		vals := make([]float32, p.Size())
		switch p.Init {
		case InitNormal, InitNormalScaled:
			s := std
			if p.Init == InitNormalScaled {
				s /= math.Sqrt(2 * float64(n.Cfg.Layers))
			}
			for j := range vals {
				vals[j] = float32(rng.NormFloat64() * s)
			}
		case InitOnes:
			for j := range vals {
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
		zeros := make([]float32, p.Size())
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
	for _, s := range []*vk.Sequence{n.micro, n.eval, n.update, n.zero} {
		if s != nil {
			s.Release()
		}
	}
	for _, group := range [][]*vk.Tensor{n.params, n.grads, n.m, n.v} {
		freeAll(group)
	}
	freeAll(n.act.res)
	for _, l := range n.act.layers {
		freeAll([]*vk.Tensor{l.ln1, l.mean1, l.rstd1, l.qkv, l.att, l.lse, l.mid, l.ln2, l.mean2, l.rstd2, l.fch, l.fcg})
	}
	freeAll([]*vk.Tensor{n.in.ids, n.in.targets, n.in.pos, n.act.lnf, n.act.meanf, n.act.rstdf, n.act.logits,
		n.act.losses, n.act.tmp, n.grad.dres, n.grad.dtmp, n.grad.dqkv, n.grad.dfc, n.step, n.parts})
}

func freeAll(ts []*vk.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Free()
		}
	}
}

// p returns the parameter tensor called name; g its gradient.
func (n *Net) p(name string) *vk.Tensor { return n.params[n.index[name]] }
func (n *Net) g(name string) *vk.Tensor { return n.grads[n.index[name]] }
