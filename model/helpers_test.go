package model

// Helpers shared by the model's internal tests and its external ones (package model_test, which
// compare with the float64 reference model; model/reference imports this package), and the
// internals those reach.

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

func TinyGPT() config.Model {
	return config.Model{Arch: "gpt", Tokenizer: "byte", Context: 8, Layers: 2, Width: 16, Heads: 2, FFN: 64, InitStd: 0.3}
}

func NewTestNet(t *testing.T, cfg config.Model, vocab, b, tt int) *Net {
	t.Helper()
	return NewNetOn(t, NewTestOps(t), cfg, vocab, b, tt)
}

// NewTestOps opens a context for a test's models (one per test: contexts are costly).
func NewTestOps(t *testing.T) *ops.Ops {
	t.Helper()
	return NewChunkedTestOps(t, 0)
}

// NewChunkedTestOps is NewTestOps with the token tables held in row chunks of at most
// chunkBytes (0: as the environment and the device say).
func NewChunkedTestOps(t *testing.T, chunkBytes uint64) *ops.Ops {
	t.Helper()
	o, err := ops.New(vktest.OpenChunked(t, chunkBytes), "")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// NewNetOn is a model of seed 7 on o, freed when the test ends.
func NewNetOn(t *testing.T, o *ops.Ops, cfg config.Model, vocab, b, tt int) *Net {
	t.Helper()
	n, err := NewNet(o, cfg, vocab, b, tt, 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Free)
	return n
}

func RandomBatch(rng *rand.Rand, b, t, vocab int) data.Batch {
	batch := data.Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
	for i := range batch.Input {
		batch.Input[i] = uint32(rng.IntN(vocab))
		batch.Target[i] = uint32(rng.IntN(vocab))
	}
	return batch
}

// The same inputs give bitwise the same loss and gradients, run after run.
// SameParams fails unless two runs' parameters are bitwise equal.
func SameParams(t *testing.T, want, got map[string][]float32) {
	t.Helper()
	for name, v := range want {
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(got[name][i]) {
				t.Fatalf("%s[%d] differs between runs", name, i)
			}
		}
	}
}

// WithDropout is cfg trained with dropout p.
func WithDropout(cfg config.Model, p float64) config.Model {
	cfg.Dropout = p
	return cfg
}

// MicroBatches are two micro-batches for arch: random tokens for GPT, masked ones with padding
// for BERT, random images for ViT (TinyViT's).
func MicroBatches(rng *rand.Rand, arch string, vocab, b, tt int) []data.Batch {
	if arch == "vit" {
		return []data.Batch{RandomImageBatch(rng, b, 8, vocab), RandomImageBatch(rng, b, 8, vocab)}
	}
	if arch == "bert" {
		return []data.Batch{RandomMLMBatch(rng, b, tt, 0), RandomMLMBatch(rng, b, tt, 3)}
	}
	return []data.Batch{RandomBatch(rng, b, tt, vocab), RandomBatch(rng, b, tt, vocab)}
}

func TinyBERT() config.Model {
	return config.Model{Arch: "bert", Tokenizer: "byte", Context: 8, Layers: 2, Width: 16, Heads: 2, FFN: 64, InitStd: 0.3, TypeVocab: 2}
}

// BERTVocab is the token table of TinyBERT: the byte tokenizer's and BERT's specials.
var BERTVocab = data.MLMVocab(data.Byte{}.VocabSize())

// RandomMLMBatch is a batch of byte tokens, a quarter of them [MASK], with every other target
// ignored; the last pad positions of the last sequence are [PAD] (their targets ignored).
func RandomMLMBatch(rng *rand.Rand, b, t, pad int) data.Batch {
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

// DropoutKey is the Philox key of a micro-step's masks, which the reference applies too.
func (n *Net) DropoutKey(step, micro, micros int) uint32 { return n.dropoutKey(step, micro, micros) }

// KeyValid is BERT's padding mask of a micro-batch's ids.
func (n *Net) KeyValid(ids []uint32) []uint32 { return n.keyValid(ids) }

// TinyViT takes images of 8 x 8 pixels in 4 patches of 4 x 4 (5 rows with the class token),
// into 10 classes (padded to 12 on the GPU).
func TinyViT() config.Model {
	return config.Model{Arch: "vit", Context: 5, Layers: 2, Width: 16, Heads: 2, FFN: 64, InitStd: 0.3, Image: 8, Patch: 4, Classes: 10}
}

// RandomImageBatch is b random images of side x side pixels with random labels below classes;
// the last label is ignored.
func RandomImageBatch(rng *rand.Rand, b, side, classes int) data.Batch {
	batch := data.Batch{B: b, Images: make([]float32, b*side*side), Labels: make([]uint32, b)}
	for i := range batch.Images {
		batch.Images[i] = float32(rng.NormFloat64())
	}
	for i := range batch.Labels {
		batch.Labels[i] = uint32(rng.IntN(classes))
	}
	batch.Labels[b-1] = IgnoreIndex
	return batch
}
