package model

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/model/data"
	"github.com/vktrain/vktrain/vk/ops"
)

func tinyBERT() ModelConfig {
	return ModelConfig{Arch: "bert", Tokenizer: "byte", Context: 8, Layers: 2, Width: 16, Heads: 2, FFN: 64, InitStd: 0.3, TypeVocab: 2}
}

// bertVocab is the token table of tinyBERT: the byte tokenizer's and BERT's specials.
var bertVocab = data.MLMVocab(data.Byte{}.VocabSize())

// randomMLMBatch is a batch of byte tokens, a quarter of them [MASK], with every other target
// ignored; the last pad positions of the last sequence are [PAD] (their targets ignored).
func randomMLMBatch(rng *rand.Rand, b, t, pad int) data.Batch {
	batch := data.Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
	sp := data.BERTSpecials(data.Byte{}.VocabSize())
	for i := range batch.Input {
		batch.Input[i], batch.Target[i] = uint32(rng.IntN(256)), IgnoreIndex
		if i%2 == 0 {
			batch.Target[i] = uint32(rng.IntN(256))
		}
		if rng.IntN(4) == 0 {
			batch.Input[i] = sp.Mask
		}
		if i >= b*t-pad {
			batch.Input[i], batch.Target[i] = sp.Pad, IgnoreIndex
		}
	}
	return batch
}

// One GPU BERT step's loss and every gradient against the float64 reference: two micro-batches
// with different numbers of counted targets, one with padding; over the minimum vocabulary and
// over one that is not a multiple of 4 (the GPU pads it).
func TestBERTStepMatchesReference(t *testing.T) {
	for _, vocab := range []int{bertVocab, bertVocab + 1} {
		t.Run(fmt.Sprintf("vocab%d", vocab), func(t *testing.T) { testBERTStep(t, vocab) })
	}
}

func testBERTStep(t *testing.T, vocab int) {
	const b, tt = 2, 7
	n := newTestNet(t, tinyBERT(), vocab, b, tt)
	rng := rand.New(rand.NewPCG(5, 6))
	checkGradients(t, n, []data.Batch{randomMLMBatch(rng, b, tt, 0), randomMLMBatch(rng, b, tt, 3)}, 1)
}

// The same inputs give bitwise the same BERT parameters after three steps, run after run.
func TestBERTStepDeterministic(t *testing.T) {
	var first map[string][]float32
	for run := 0; run < 2; run++ {
		n := newTestNet(t, tinyBERT(), bertVocab, 2, 8)
		rng := rand.New(rand.NewPCG(7, 8))
		for step := 1; step <= 3; step++ {
			if _, err := n.Step([]data.Batch{randomMLMBatch(rng, 2, 8, 2)}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95,
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
		sameParams(t, first, p)
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
