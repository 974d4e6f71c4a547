package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/model/data"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

func tinyGPT() ModelConfig {
	return ModelConfig{Arch: "gpt", Tokenizer: "byte", Context: 8, Layers: 2, Width: 16, Heads: 2, FFN: 64, InitStd: 0.3}
}

func newTestNet(t *testing.T, cfg ModelConfig, vocab, b, tt int) *Net {
	t.Helper()
	ctx := vktest.Open(t)
	o, err := ops.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNet(o, cfg, vocab, b, tt, 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Free)
	return n
}

func randomBatch(rng *rand.Rand, b, t, vocab int) data.Batch {
	batch := data.Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
	for i := range batch.Input {
		batch.Input[i] = uint32(rng.IntN(vocab))
		batch.Target[i] = uint32(rng.IntN(vocab))
	}
	return batch
}

// One GPU training step's loss and every gradient against the float64 CPU reference model.
func TestGPTStepMatchesReference(t *testing.T) {
	const vocab, b, tt = 23, 2, 7
	cfg := tinyGPT()
	n := newTestNet(t, cfg, vocab, b, tt)
	params, err := n.Params()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewRefModel(cfg, vocab, RefParams(params))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batches := []data.Batch{randomBatch(rng, b, tt, vocab), randomBatch(rng, b, tt, vocab)}
	loss, err := n.Gradients(batches, ops.StepParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The reference: the mean over both micro-batches (equal counts) of each one's mean loss.
	want := map[string][]float64{}
	var wantLoss float64
	for _, bt := range batches {
		g := map[string][]float64{}
		l, err := ref.Loss(RefBatch{B: b, T: tt, Input: bt.Input, Target: bt.Target}, g)
		if err != nil {
			t.Fatal(err)
		}
		wantLoss += l / 2
		for k, v := range g {
			if want[k] == nil {
				want[k] = make([]float64, len(v))
			}
			for i := range v {
				want[k][i] += v[i] / 2
			}
		}
	}
	if math.Abs(loss-wantLoss) > 1e-5*math.Abs(wantLoss) {
		t.Fatalf("loss %v, reference %v", loss, wantLoss)
	}
	grads, err := n.Grads()
	if err != nil {
		t.Fatal(err)
	}
	compareGrads(t, n.Specs, grads, want)
}

// compareGrads checks every gradient against the reference's by normalised squared error.
func compareGrads(t *testing.T, specs []ParamSpec, grads map[string][]float32, want map[string][]float64) {
	t.Helper()
	for _, p := range specs {
		got, w := grads[p.Name], want[p.Name]
		var num, den float64
		for i := range w {
			d := float64(got[i]) - w[i]
			num += d * d
			den += w[i] * w[i]
		}
		// Some gradients are exactly zero (the key bias: softmax ignores a constant shift).
		if den < 1e-20 {
			if num > 1e-14 {
				t.Errorf("%s: reference gradient is zero, GPU's squared norm is %g", p.Name, num)
			}
			continue
		}
		if nse := num / den; nse > 1e-6 {
			t.Errorf("%s: normalised squared error %g", p.Name, nse)
		}
	}
}

// The same inputs give bitwise the same loss and gradients, run after run.
func TestGPTStepDeterministic(t *testing.T) {
	cfg := tinyGPT()
	var losses []float64
	var first map[string][]float32
	for run := 0; run < 2; run++ {
		n := newTestNet(t, cfg, 17, 2, 8)
		rng := rand.New(rand.NewPCG(3, 4))
		var loss float64
		for step := 1; step <= 3; step++ {
			r, err := n.Step([]data.Batch{randomBatch(rng, 2, 8, 17)}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			loss = r.Loss
		}
		losses = append(losses, loss)
		p, err := n.Params()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = p
			continue
		}
		for name, v := range p {
			for i := range v {
				if math.Float32bits(v[i]) != math.Float32bits(first[name][i]) {
					t.Fatalf("%s[%d] differs between runs", name, i)
				}
			}
		}
	}
	if math.Float64bits(losses[0]) != math.Float64bits(losses[1]) {
		t.Fatalf("losses differ: %v", losses)
	}
}
