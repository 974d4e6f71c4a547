package model

import (
	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/vk/tune"
)

// StepKernels are the kernels of one training step of cfg's model (GPT exactly; BERT's extra
// head transform and token-type embedding are left out) with their counts.
func StepKernels(cfg *config.Config, vocab int) []tune.Case {
	m := cfg.Model
	b, t, d, f := cfg.Train.Batch, cfg.Train.SeqLen, m.Width, m.FFN // t: the trained length, not the context
	rows := b * t
	micro := float64(max(cfg.Train.GradAccum, 1))
	perBlock := micro * float64(m.Layers)
	matmul := func(mm, n, k int, ta, tb bool, count float64) tune.Case {
		return tune.Case{Kernel: "matmul", Dims: []int{mm, n, k}, TransA: ta, TransB: tb, Count: count}
	}
	var cases []tune.Case
	// Each block's linear maps (QKV, projection, MLP in and out): forward, dW += xᵀ·dy, dx = dy·Wᵀ, db.
	for _, l := range [][2]int{{d, 3 * d}, {d, d}, {d, f}, {f, d}} {
		in, out := l[0], l[1]
		cases = append(cases, matmul(rows, out, in, false, false, perBlock), matmul(in, out, rows, true, false, perBlock),
			matmul(rows, in, out, false, true, perBlock), tune.Case{Kernel: "bias_grad", Dims: []int{rows, out}, Count: perBlock})
	}
	// The output head, tied to the token table (vocab x d): logits = x·Wᵀ, dW += dyᵀ·x, dx = dy·W.
	cases = append(cases, matmul(rows, vocab, d, false, true, micro), matmul(vocab, d, rows, true, false, micro),
		matmul(rows, d, vocab, false, false, micro),
		tune.Case{Kernel: "attention", Dims: []int{b, m.Heads, t, d / m.Heads}, Causal: m.Arch == "gpt", Count: perBlock},
		tune.Case{Kernel: "layernorm", Dims: []int{rows, d}, Count: 2*perBlock + micro},
		tune.Case{Kernel: "add", Dims: []int{rows * d}, Count: 2 * perBlock},
		tune.Case{Kernel: "gelu", Dims: []int{rows * f}, Count: perBlock},
		tune.Case{Kernel: "embedding", Dims: []int{rows, d, vocab}, Count: micro},
		tune.Case{Kernel: "embedding", Dims: []int{rows, d, t}, Count: micro},
		tune.Case{Kernel: "cross_entropy", Dims: []int{rows, vocab}, Count: micro})
	// Once per step and parameter tensor: add its gradient to the norm, update it. (Zeroing the
	// gradients is a transfer command, vk.Sequence.Fill: nothing to tune.)
	for _, p := range Params(m, vocab) {
		for _, k := range []string{"grad_norm", "adamw"} {
			cases = append(cases, tune.Case{Kernel: k, Dims: []int{p.Size()}, Count: 1})
		}
	}
	return cases
}
