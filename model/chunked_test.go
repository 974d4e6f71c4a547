package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk/ops"
)

// tinyChunk is a chunk limit that splits the tiny models' token tables (rows of 16 floats) into
// chunks of 4 rows.
const tinyChunk = 256

// With the token table, its gradient and moments held in chunks of 4 rows, a step's loss and
// every gradient match the float64 reference (GPT's tied head; BERT's decoder with its bias; a
// ViT's classifier, whose 12 padded classes make 3 chunks).
func TestChunkedStepMatchesReference(t *testing.T) {
	const b = 2
	for _, c := range []struct {
		cfg   config.Model
		vocab int
	}{{model.TinyGPT(), 23}, {model.TinyBERT(), model.BERTVocab + 1}, {model.TinyViT(), 10}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			tt := min(7, c.cfg.Context) // a ViT's micro-batch is its whole context
			n := model.NewNetOn(t, model.NewChunkedTestOps(t, tinyChunk), c.cfg, c.vocab, b, tt)
			chunked := 0
			for i := range n.Specs {
				if n.ParamTensor(i).Chunked() {
					chunked++
				}
			}
			if chunked != 1 {
				t.Fatalf("%d parameters chunked at a %d-byte limit, want the table alone", chunked, tinyChunk)
			}
			checkGradients(t, n, model.MicroBatches(rand.New(rand.NewPCG(3, 16)), c.cfg.Arch, c.vocab, b, tt), 1)
		})
	}
}

// Ten steps with chunked token tables follow the unchunked run: the products along the
// vocabulary (the logits' gradient into the head's input) and the gradient norm add their
// chunks' partial sums in another order, so the losses agree within 1e-6 relative rather than
// bitwise; every other op gives the same bits.
func TestChunkedRunFollowsUnchunked(t *testing.T) {
	const vocab, b, tt, steps = 23, 2, 8, 10
	cfg := model.TinyGPT()
	var losses [2][]float64
	var params [2]map[string][]float32 // after the run
	for run, limit := range []uint64{0, tinyChunk} {
		n := model.NewNetOn(t, model.NewChunkedTestOps(t, limit), cfg, vocab, b, tt)
		if err := n.SetGradClip(1); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 16))
		for step := 1; step <= steps; step++ {
			r, err := n.Step([]data.Batch{model.RandomBatch(rng, b, tt, vocab)}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95,
				Eps: 1e-8, WeightDecay: 0.1, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			losses[run] = append(losses[run], r.Loss)
		}
		p, err := n.Params()
		if err != nil {
			t.Fatal(err)
		}
		params[run] = p
	}
	for i := range losses[0] {
		if d := math.Abs(losses[1][i] - losses[0][i]); d > 1e-6*math.Abs(losses[0][i]) {
			t.Errorf("step %d: loss %v chunked, %v unchunked", i+1, losses[1][i], losses[0][i])
		}
	}
	// The token table, which the chunks hold. (Not every parameter: the key bias has a zero
	// gradient in exact arithmetic, so AdamW turns the rounding noise of each run into steps of
	// full size, in directions that differ between any two summation orders.)
	want, got := params[0]["wte.weight"], params[1]["wte.weight"]
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - float64(w)
		num, den = num+d*d, den+float64(w)*float64(w)
	}
	if num > 1e-10*den {
		t.Errorf("wte.weight: normalised squared difference %g between the chunked and unchunked runs", num/den)
	}
	t.Logf("losses %v (chunked) and %v; token tables' normalised squared difference %g", losses[1], losses[0], num/den)
}
