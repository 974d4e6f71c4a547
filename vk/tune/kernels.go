package tune

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/ops/ref"
)

// tol is the largest normalised squared error a tuned kernel may show against the float64
// reference, the kernel tests' bound.
const tol = 1e-6

// kernel is a kernel the tuner can run and check at any shape: the profile op whose entry
// it runs, what Case.Dims holds, and how to set up one case.
type kernel struct {
	op    string
	dims  []string
	build func(w *work, c Case)
}

// kernels are the kernels the tuner knows, by Case.Kernel. Each runs what a training
// step runs: a forward pass with its backward where they share the op's entry.
var kernels = map[string]kernel{
	"add":           {"add", []string{"n"}, buildAdd},
	"bias_grad":     {"add", []string{"rows", "cols"}, buildBiasGrad},
	"gelu":          {"gelu", []string{"n"}, buildGelu},
	"layernorm":     {"layernorm", []string{"rows", "cols"}, buildLayerNorm},
	"embedding":     {"embedding", []string{"tokens", "dim", "vocab"}, buildEmbedding},
	"cross_entropy": {"softmax", []string{"rows", "vocab"}, buildCrossEntropy},
	"adamw":         {"adamw", []string{"n"}, buildAdamW},
	"grad_norm":     {"reduce", []string{"n"}, buildGradNorm},
	"attention":     {"attention", []string{"b", "h", "t", "dh"}, buildAttention},
	"matmul":        {"matmul", []string{"m", "n", "k"}, buildMatmul},
}

// work is one case set up on the device: its tensors, filled with random data, the dispatches
// that run them, and the check of their results against the reference after one run from the
// initial data. The first error sticks in err, so that the builders read straight.
type work struct {
	ctx     *vk.Context
	rng     *rand.Rand
	tensors []*vk.Tensor
	record  func(o *ops.Ops, s *vk.Sequence) error
	check   func() error
	err     error
}

// newWork sets up case c (its dims already checked).
func newWork(ctx *vk.Context, c Case, seed uint64) (*work, error) {
	w := &work{ctx: ctx, rng: rand.New(rand.NewPCG(seed, 7))}
	kernels[c.Kernel].build(w, c)
	if w.err != nil {
		w.free()
		return nil, fmt.Errorf("setting up %s: %w", c, w.err)
	}
	return w, nil
}

func (w *work) free() {
	for _, t := range w.tensors {
		t.Free()
	}
	w.tensors = nil
}

// tensor allocates a tensor holding data.
func (w *work) tensor(name string, data []float32) *vk.Tensor {
	if w.err != nil {
		return nil
	}
	t, err := w.ctx.NewTensor(name, len(data))
	if err != nil {
		w.err = err
		return nil
	}
	w.tensors = append(w.tensors, t)
	w.err = t.WriteFloat32(0, data)
	return t
}

// random allocates a tensor of n values uniform in [-scale, scale) and returns its float64 copy.
func (w *work) random(name string, n int, scale float64) (*vk.Tensor, []float64) {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((2*w.rng.Float64() - 1) * scale)
	}
	return w.tensor(name, x), ref.F64(x)
}

// ids allocates a tensor of n uint32 ids below limit.
func (w *work) ids(name string, n, limit int) (*vk.Tensor, []uint32) {
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(w.rng.IntN(limit))
	}
	t := w.tensor(name, make([]float32, n))
	if w.err == nil {
		w.err = t.WriteUint32(0, ids)
	}
	return t, ids
}

// steps allocates a step-parameters tensor for p.
func (w *work) steps(p ops.StepParams) *vk.Tensor {
	v, err := p.Encode()
	if err != nil {
		w.err = err
		return nil
	}
	return w.tensor("step parameters", v)
}

// expect compares the first len(want) values of t with want.
func expect(t *vk.Tensor, want []float64) error {
	got, err := t.ReadFloat32()
	if err != nil {
		return err
	}
	return expectValues(t.Name, got, want)
}

func expectValues(name string, got []float32, want []float64) error {
	if e := ref.NSE(got, want); !(e <= tol) {
		return fmt.Errorf("%s: normalised squared error %.3g against the reference exceeds %g", name, e, tol)
	}
	return nil
}

// plus returns a + b element-wise.
func plus(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

func buildAdd(w *work, c Case) {
	n := c.Dims[0]
	a, a64 := w.random("a", n, 1)
	b, b64 := w.random("b", n, 1)
	y, _ := w.random("y", n, 1)
	w.record = func(o *ops.Ops, s *vk.Sequence) error { return o.Add(s, a, b, y, n) }
	w.check = func() error { return expect(y, ref.Add(a64, b64)) }
}

func buildBiasGrad(w *work, c Case) {
	rows, cols := c.Dims[0], c.Dims[1]
	dy, dy64 := w.random("dy", rows*cols, 1)
	db, db64 := w.random("dbias", cols, 1)
	w.record = func(o *ops.Ops, s *vk.Sequence) error { return o.BiasGrad(s, dy, db, rows, cols) }
	w.check = func() error { return expect(db, plus(db64, ref.BiasGrad(dy64, rows, cols))) }
}

func buildGelu(w *work, c Case) {
	n := c.Dims[0]
	x, x64 := w.random("x", n, 3)
	dy, dy64 := w.random("dy", n, 1)
	y, _ := w.random("y", n, 1)
	dx, _ := w.random("dx", n, 1)
	w.record = func(o *ops.Ops, s *vk.Sequence) error {
		if err := o.GeluForward(s, x, y, n); err != nil {
			return err
		}
		return o.GeluBackward(s, x, dy, dx, n, false)
	}
	w.check = func() error {
		return errors.Join(expect(y, ref.GeluForward(x64)), expect(dx, ref.GeluBackward(x64, dy64)))
	}
}

func buildLayerNorm(w *work, c Case) {
	rows, cols := c.Dims[0], c.Dims[1]
	const eps = 1e-5
	x, x64 := w.random("x", rows*cols, 2)
	gamma, gamma64 := w.random("gamma", cols, 1)
	beta, beta64 := w.random("beta", cols, 1)
	dy, dy64 := w.random("dy", rows*cols, 1)
	dgamma, dgamma64 := w.random("dgamma", cols, 1)
	dbeta, dbeta64 := w.random("dbeta", cols, 1)
	y, _ := w.random("y", rows*cols, 1)
	dx, _ := w.random("dx", rows*cols, 1)
	mean, _ := w.random("mean", rows, 1)
	rstd, _ := w.random("rstd", rows, 1)
	w.record = func(o *ops.Ops, s *vk.Sequence) error {
		if err := o.LayerNormForward(s, x, gamma, beta, y, mean, rstd, rows, cols, eps); err != nil {
			return err
		}
		return o.LayerNormBackward(s, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, false)
	}
	w.check = func() error {
		wy, wmean, wrstd := ref.LayerNormForward(x64, gamma64, beta64, rows, cols, eps)
		wdx, wdgamma, wdbeta := ref.LayerNormBackward(x64, gamma64, wmean, wrstd, dy64, rows, cols)
		return errors.Join(expect(y, wy), expect(mean, wmean), expect(rstd, wrstd), expect(dx, wdx),
			expect(dgamma, plus(dgamma64, wdgamma)), expect(dbeta, plus(dbeta64, wdbeta)))
	}
}

func buildEmbedding(w *work, c Case) {
	tokens, dim, vocab := c.Dims[0], c.Dims[1], c.Dims[2]
	ids, ids32 := w.ids("ids", tokens, vocab)
	table, table64 := w.random("table", vocab*dim, 1)
	dout, dout64 := w.random("dout", tokens*dim, 1)
	dtable, dtable64 := w.random("dtable", vocab*dim, 1)
	out, _ := w.random("out", tokens*dim, 1)
	w.record = func(o *ops.Ops, s *vk.Sequence) error {
		if err := o.EmbeddingForward(s, ids, table, out, tokens, dim, false); err != nil {
			return err
		}
		return o.EmbeddingBackward(s, ids, dout, dtable, tokens, dim)
	}
	w.check = func() error {
		return errors.Join(expect(out, ref.EmbeddingForward(ids32, table64, dim)),
			expect(dtable, plus(dtable64, ref.EmbeddingBackward(ids32, dout64, vocab, dim))))
	}
}

func buildCrossEntropy(w *work, c Case) {
	rows, vocab := c.Dims[0], c.Dims[1]
	const ignore = math.MaxUint32
	logits, logits64 := w.random("logits", rows*vocab, 4)
	targets, targets32 := w.ids("targets", rows, vocab)
	losses, _ := w.random("losses", rows, 1)
	dlogits, _ := w.random("dlogits", rows*vocab, 1)
	step := w.steps(ops.StepParams{Beta1: 0.9, Beta2: 0.95, Step: 1, Tokens: rows})
	w.record = func(o *ops.Ops, s *vk.Sequence) error {
		if err := o.CrossEntropyForward(s, logits, targets, losses, rows, vocab, ignore); err != nil {
			return err
		}
		return o.CrossEntropyBackward(s, logits, targets, dlogits, step, rows, vocab, ignore)
	}
	w.check = func() error {
		return errors.Join(expect(losses, ref.CrossEntropy(logits64, targets32, rows, vocab, ignore, 0)),
			expect(dlogits, ref.CrossEntropyBackward(logits64, targets32, rows, vocab, ignore, 0, 1/float64(rows))))
	}
}

func buildAdamW(w *work, c Case) {
	n := c.Dims[0]
	h := ref.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	param, param64 := w.random("param", n, 1)
	grad, grad64 := w.random("grad", n, 1)
	m, m64 := w.random("m", n, 1)
	v0 := make([]float32, n)
	for i := range v0 {
		v0[i] = w.rng.Float32()
	}
	v, v64 := w.tensor("v", v0), ref.F64(v0)
	step := w.steps(ops.StepParams{LR: h.LR, Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps, WeightDecay: h.WeightDecay, Step: 1})
	w.record = func(o *ops.Ops, s *vk.Sequence) error { return o.AdamW(s, param, grad, m, v, step, n, true) }
	w.check = func() error {
		h.Update(param64, grad64, m64, v64, 1, true)
		return errors.Join(expect(param, param64), expect(m, m64), expect(v, v64))
	}
}

func buildGradNorm(w *work, c Case) {
	n := c.Dims[0]
	const maxNorm = 1
	g, g64 := w.random("grad", n, 1)
	step := w.steps(ops.StepParams{Beta1: 0.9, Beta2: 0.95, Step: 1})
	ctx := w.ctx
	w.record = func(o *ops.Ops, s *vk.Sequence) error {
		grads := []*vk.Tensor{g}
		size, err := o.SumSquaresPartialsLen(grads) // depends on the candidate's workgroup size
		if err != nil {
			return err
		}
		partials, err := ctx.NewTensor("partials", size)
		if err != nil {
			return err
		}
		w.tensors = append(w.tensors, partials)
		return o.GradNorm(s, grads, partials, step, maxNorm)
	}
	w.check = func() error {
		got, err := step.ReadFloat32()
		if err != nil {
			return err
		}
		norm := ref.GradNorm(g64)
		return expectValues("gradient norm and clip scale", []float32{got[ops.StepGradNorm], got[ops.StepClipScale]},
			[]float64{norm, ref.ClipScale(norm, maxNorm)})
	}
}

func buildAttention(w *work, c Case) {
	b, h, t, dh := c.Dims[0], c.Dims[1], c.Dims[2], c.Dims[3]
	ra := ref.Attention{B: b, T: t, H: h, Dh: dh, Causal: c.Causal}
	qkv, qkv64 := w.random("qkv", b*t*3*h*dh, 1)
	dOut, dOut64 := w.random("dOut", b*t*h*dh, 1)
	out, _ := w.random("out", b*t*h*dh, 1)
	lse, _ := w.random("lse", b*h*t, 1)
	dqkv, _ := w.random("dqkv", b*t*3*h*dh, 1)
	a := ops.Attention{QKV: qkv, Out: out, LSE: lse, B: b, T: t, H: h, Dh: dh, Causal: c.Causal}
	w.record = func(o *ops.Ops, s *vk.Sequence) error {
		if err := o.AttentionForward(s, a); err != nil {
			return err
		}
		return o.AttentionBackward(s, a, dOut, dqkv)
	}
	w.check = func() error {
		wout, wlse := ref.AttentionForward(ra, qkv64)
		return errors.Join(expect(out, wout), expect(lse, wlse), expect(dqkv, ref.AttentionBackward(ra, qkv64, dOut64)))
	}
}

func buildMatmul(w *work, c Case) {
	m, n, k := c.Dims[0], c.Dims[1], c.Dims[2]
	g := ops.Gemm{M: m, N: n, K: k, TransA: c.TransA, TransB: c.TransB, Alpha: 1}
	rg := ref.Gemm{M: m, N: n, K: k, TransA: c.TransA, TransB: c.TransB, Lda: k, Ldb: n, Ldc: n, Alpha: 1}
	if c.TransA {
		rg.Lda = m
	}
	if c.TransB {
		rg.Ldb = k
	}
	var a64, b64, c64 []float64
	g.A, a64 = w.random("A", m*k, 1)
	g.B, b64 = w.random("B", k*n, 1)
	g.C, c64 = w.random("C", m*n, 1)
	w.record = func(o *ops.Ops, s *vk.Sequence) error { return o.Gemm(s, g) }
	w.check = func() error { return expect(g.C, rg.Apply(a64, b64, nil, c64)) }
}
