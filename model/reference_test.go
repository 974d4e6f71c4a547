package model_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/model/reference"
	"github.com/vktrain/vktrain/vk/ops"
	opref "github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/vktest"
)

// One GPU training step's loss and every gradient against the float64 CPU reference model.
func TestGPTStepMatchesReference(t *testing.T) {
	const vocab, b, tt = 23, 2, 7
	n := model.NewTestNet(t, model.TinyGPT(), vocab, b, tt)
	rng := rand.New(rand.NewPCG(1, 2))
	checkGradients(t, n, []data.Batch{model.RandomBatch(rng, b, tt, vocab), model.RandomBatch(rng, b, tt, vocab)}, 1)
}

// checkGradients runs Gradients over batches at optimizer step step and checks the loss and
// every gradient against the reference model over the net's parameters: each micro-batch's
// mean loss and gradients weighted by its share of the counted targets, with BERT's padding
// mask, and for a net with dropout the masks of the micro-step (dropoutKey). It returns the
// reference model and its batches.
func checkGradients(t *testing.T, n *model.Net, batches []data.Batch, step int) (*reference.Model, []reference.Batch) {
	t.Helper()
	params, err := n.Params()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.New(n.Cfg, n.Vocab, reference.Widen(params))
	if err != nil {
		t.Fatal(err)
	}
	loss, err := n.Gradients(batches, ops.StepParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range batches {
		total += model.Counted(b)
	}
	want := map[string][]float64{}
	var wantLoss float64
	var refBatches []reference.Batch
	for i, b := range batches {
		rb := reference.Batch{B: b.B, T: b.T, Input: b.Input, Target: b.Target, Train: true, DropoutKey: n.DropoutKey(step, i, len(batches))}
		if n.Cfg.Arch == "bert" {
			rb.KeyValid = n.KeyValid(b.Input)
		}
		if n.Cfg.Arch == "vit" {
			rb.T, rb.Images, rb.Labels = n.T, opref.F64(b.Images), b.Labels
		}
		refBatches = append(refBatches, rb)
		g := map[string][]float64{}
		l, err := ref.Loss(rb, g)
		if err != nil {
			t.Fatal(err)
		}
		w := float64(model.Counted(b)) / float64(total)
		wantLoss += l * w
		for k, v := range g {
			if want[k] == nil {
				want[k] = make([]float64, len(v))
			}
			for i := range v {
				want[k][i] += v[i] * w
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
	return ref, refBatches
}

// compareGrads checks every gradient against the reference's by normalised squared error.
func compareGrads(t *testing.T, specs []model.ParamSpec, grads map[string][]float32, want map[string][]float64) {
	t.Helper()
	var total float64 // the squared norm of every reference gradient
	for _, w := range want {
		for _, v := range w {
			total += v * v
		}
	}
	for _, p := range specs {
		got, w := grads[p.Name], want[p.Name]
		var num, den float64
		for i := range w {
			d := float64(got[i]) - w[i]
			num += d * d
			den += w[i] * w[i]
		}
		// Some gradients are exactly zero (the key bias: softmax ignores a constant shift); in
		// float32 the cancellation leaves noise of the order of the rounding error relative to
		// the gradients' scale.
		if den < 1e-20 {
			if num > 1e-13*total { // measured: up to 5e-16
				t.Errorf("%s: reference gradient is zero, GPU's squared norm is %g (%g of all the gradients')", p.Name, num, num/total)
			}
			continue
		}
		if nse := num / den; nse > 1e-6 {
			t.Errorf("%s: normalised squared error %g", p.Name, nse)
		}
	}
}

// A GPU step with dropout against the reference applying the same masks (ref.Dropout at the
// micro-step's key and each site's offset), at a step other than the first; the masks change
// the loss, so a GPU that dropped elsewhere, or not at all, would fail.
func TestDropoutStepMatchesReference(t *testing.T) {
	for _, c := range []struct {
		cfg   config.Model
		vocab int
	}{{model.TinyGPT(), 23}, {model.TinyBERT(), model.BERTVocab}, {model.TinyViT(), 10}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			b, tt := 2, 7
			if c.cfg.Arch == "vit" {
				b, tt = 3, c.cfg.Context
			}
			n := model.NewTestNet(t, model.WithDropout(c.cfg, 0.3), c.vocab, b, tt)
			batches := model.MicroBatches(rand.New(rand.NewPCG(11, 12)), c.cfg.Arch, c.vocab, b, tt)
			ref, rbs := checkGradients(t, n, batches, 3)
			with, without := trainingAndPlainLoss(t, ref, rbs[0])
			if math.Abs(with-without) < 1e-3*without {
				t.Errorf("dropout barely changes the reference loss (%v, %v without): the test checks nothing", with, without)
			}
		})
	}
}

// trainingAndPlainLoss is the reference's loss of rb in training (dropout, label smoothing) and
// outside it, so that a test can check its training setting changes something.
func trainingAndPlainLoss(t *testing.T, ref *reference.Model, rb reference.Batch) (training, plain float64) {
	t.Helper()
	var err error
	rb.Train = true
	if training, err = ref.Loss(rb, nil); err != nil {
		t.Fatal(err)
	}
	rb.Train = false
	if plain, err = ref.Loss(rb, nil); err != nil {
		t.Fatal(err)
	}
	return training, plain
}

// Label smoothing: a GPU step's loss and every gradient against the reference's smoothed
// target (GPT over a padded vocabulary, and ViT), and evaluation's loss stays the plain
// cross-entropy (ViT's Classify against the reference outside training).
func TestLabelSmoothingMatchesReference(t *testing.T) {
	for _, c := range []struct {
		cfg   config.Model
		vocab int
	}{{model.TinyGPT(), 23}, {model.TinyViT(), 10}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			cfg := c.cfg
			cfg.Smoothing = 0.2
			b, tt := 2, 7
			if cfg.Arch == "vit" {
				b, tt = 3, cfg.Context
			}
			n := model.NewTestNet(t, cfg, c.vocab, b, tt)
			batches := model.MicroBatches(rand.New(rand.NewPCG(13, 14)), cfg.Arch, c.vocab, b, tt)
			ref, rbs := checkGradients(t, n, batches, 1)
			smoothed, plain := trainingAndPlainLoss(t, ref, rbs[0])
			if math.Abs(smoothed-plain) < 1e-3*plain {
				t.Fatalf("smoothing barely changes the reference loss (%v, %v without): the test checks nothing", smoothed, plain)
			}
			if cfg.Arch != "vit" {
				return
			}
			got, err := n.Classify(batches[:1])
			if err != nil {
				t.Fatal(err)
			}
			// Classify runs on the parameters before the step (Gradients does not update them).
			if math.Abs(got.Loss-plain) > 1e-5*plain {
				t.Errorf("evaluation's loss %v, the reference's plain cross-entropy %v (smoothed %v)", got.Loss, plain, smoothed)
			}
		})
	}
}

// One GPU ViT step's loss and every gradient against the float64 reference, which cuts the
// images into patches itself: two micro-batches of three images, one label ignored in each.
func TestViTStepMatchesReference(t *testing.T) {
	cfg := model.TinyViT()
	n := model.NewTestNet(t, cfg, cfg.Classes, 3, cfg.Context)
	checkGradients(t, n, model.MicroBatches(rand.New(rand.NewPCG(3, 4)), "vit", cfg.Classes, 3, cfg.Context), 1)
}

// One GPU BERT step's loss and every gradient against the float64 reference: two micro-batches
// with different numbers of counted targets, one with padding; over the minimum vocabulary and
// over one that is not a multiple of 4 (the GPU pads it).
func TestBERTStepMatchesReference(t *testing.T) {
	for _, vocab := range []int{model.BERTVocab, model.BERTVocab + 1} {
		t.Run(fmt.Sprintf("vocab%d", vocab), func(t *testing.T) { testBERTStep(t, vocab) })
	}
}

func testBERTStep(t *testing.T, vocab int) {
	const b, tt = 2, 7
	n := model.NewTestNet(t, model.TinyBERT(), vocab, b, tt)
	rng := rand.New(rand.NewPCG(5, 6))
	checkGradients(t, n, []data.Batch{model.RandomMLMBatch(rng, b, tt, 0), model.RandomMLMBatch(rng, b, tt, 3)}, 1)
}

// Logits leaves the GPU's pad columns out (the vocabulary 23 is padded to 24): after a step, they
// are the reference's B*T x vocab logits.
func TestLogitsMatchReference(t *testing.T) {
	const vocab, b, tt = 23, 2, 6
	cfg := model.TinyGPT()
	n := model.NewTestNet(t, cfg, vocab, b, tt)
	rng := rand.New(rand.NewPCG(9, 9))
	if _, err := n.Step([]data.Batch{model.RandomBatch(rng, b, tt, vocab)}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95,
		Eps: 1e-8, WeightDecay: 0.1, Step: 1}); err != nil {
		t.Fatal(err)
	}
	params, err := n.Params()
	if err != nil {
		t.Fatal(err)
	}
	batch := model.RandomBatch(rng, b, tt, vocab)
	got, err := n.Logits(batch.Input)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reference.New(cfg, vocab, reference.Widen(params))
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Logits(reference.Batch{B: b, T: tt, Input: batch.Input, Target: batch.Target})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Logits: %d values, want %d", len(got), len(want))
	}
	if e := vktest.NSE(got, want); e > 1e-6 {
		t.Errorf("Logits: normalised squared error %g against the reference", e)
	}
}

// Classify's loss, predictions and confusion matrix are the reference's: its mean loss over
// the counted images and the argmax of its class-token logits.
func TestViTClassifyMatchesReference(t *testing.T) {
	cfg := model.TinyViT()
	const b = 4
	n := model.NewTestNet(t, cfg, cfg.Classes, b, cfg.Context)
	batch := model.RandomImageBatch(rand.New(rand.NewPCG(7, 8)), b, cfg.Image, cfg.Classes)
	params, err := n.Params()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.New(cfg, cfg.Classes, reference.Widen(params))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ref.Forward(reference.Batch{B: b, T: n.T, Images: opref.F64(batch.Images), Labels: batch.Labels})
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.Classify([]data.Batch{batch})
	if err != nil {
		t.Fatal(err)
	}
	if c.Count != b-1 || math.Abs(c.Loss-f.Loss) > 1e-5*f.Loss {
		t.Errorf("loss %v over %d images, reference %v over %d", c.Loss, c.Count, f.Loss, b-1)
	}
	right := 0
	for i, l := range batch.Labels[:b-1] {
		best := 0
		for k := range cfg.Classes {
			if f.Logits[i*cfg.Classes+k] > f.Logits[i*cfg.Classes+best] {
				best = k
			}
		}
		if c.Confusion[l][best] == 0 {
			t.Errorf("image %d: label %d, the reference predicts %d, the confusion matrix has no such case", i, l, best)
		}
		if int(l) == best {
			right++
		}
	}
	if want := float64(right) / float64(b-1); c.Accuracy != want {
		t.Errorf("accuracy %v, the reference's %v", c.Accuracy, want)
	}
}
