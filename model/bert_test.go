package model

import (
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk/ops"
)

// The same inputs give bitwise the same BERT parameters after three steps, run after run.
func TestBERTStepDeterministic(t *testing.T) {
	var first map[string][]float32
	for run := 0; run < 2; run++ {
		n := NewTestNet(t, TinyBERT(), BERTVocab, 2, 8)
		rng := rand.New(rand.NewPCG(7, 8))
		for step := 1; step <= 3; step++ {
			if _, err := n.Step([]data.Batch{RandomMLMBatch(rng, 2, 8, 2)}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95,
				Eps: 1e-8, WeightDecay: 0.1, Step: step}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := n.Params()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = p
			continue
		}
		SameParams(t, first, p)
	}
}

// The minimum vocabulary: BERT's specials follow the tokenizer's tokens.
func TestMinVocab(t *testing.T) {
	if got := minVocab("bert", 256); got != 260 {
		t.Errorf("bert over bytes: %d, want 260", got)
	}
	if got := minVocab("gpt", 50257); got != 50257 {
		t.Errorf("gpt over gpt2: %d, want 50257", got)
	}
}
