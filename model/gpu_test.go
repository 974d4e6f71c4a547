package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vktrain/vktrain/model/data"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

func tinyGPT() ModelConfig {
	return ModelConfig{Arch: "gpt", Tokenizer: "byte", Context: 8, Layers: 2, Width: 16, Heads: 2, FFN: 64, InitStd: 0.3}
}

func newTestNet(t *testing.T, cfg ModelConfig, vocab, b, tt int) *Net {
	t.Helper()
	return newNetOn(t, newTestOps(t), cfg, vocab, b, tt)
}

// newTestOps opens a context for a test's models (one per test: contexts are costly).
func newTestOps(t *testing.T) *ops.Ops {
	t.Helper()
	o, err := ops.New(vktest.Open(t), "")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// newNetOn is a model of seed 7 on o, freed when the test ends.
func newNetOn(t *testing.T, o *ops.Ops, cfg ModelConfig, vocab, b, tt int) *Net {
	t.Helper()
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
	n := newTestNet(t, tinyGPT(), vocab, b, tt)
	rng := rand.New(rand.NewPCG(1, 2))
	checkGradients(t, n, []data.Batch{randomBatch(rng, b, tt, vocab), randomBatch(rng, b, tt, vocab)}, 1)
}

// checkGradients runs Gradients over batches at optimizer step step and checks the loss and
// every gradient against the reference model over the net's parameters: each micro-batch's
// mean loss and gradients weighted by its share of the counted targets, with BERT's padding
// mask, and for a net with dropout the masks of the micro-step (dropoutKey). It returns the
// reference model and its batches.
func checkGradients(t *testing.T, n *Net, batches []data.Batch, step int) (*RefModel, []RefBatch) {
	t.Helper()
	params, err := n.Params()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewRefModel(n.Cfg, n.Vocab, RefParams(params))
	if err != nil {
		t.Fatal(err)
	}
	loss, err := n.Gradients(batches, ops.StepParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range batches {
		total += counted(b)
	}
	want := map[string][]float64{}
	var wantLoss float64
	var refBatches []RefBatch
	for i, b := range batches {
		rb := RefBatch{B: b.B, T: b.T, Input: b.Input, Target: b.Target, Train: true, DropoutKey: n.dropoutKey(step, i, len(batches))}
		if n.bert() {
			rb.KeyValid = n.keyValid(b.Input)
		}
		refBatches = append(refBatches, rb)
		g := map[string][]float64{}
		l, err := ref.Loss(rb, g)
		if err != nil {
			t.Fatal(err)
		}
		w := float64(counted(b)) / float64(total)
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
// sameParams fails unless two runs' parameters are bitwise equal.
func sameParams(t *testing.T, want, got map[string][]float32) {
	t.Helper()
	for name, v := range want {
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(got[name][i]) {
				t.Fatalf("%s[%d] differs between runs", name, i)
			}
		}
	}
}

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
		sameParams(t, first, p)
	}
	if math.Float64bits(losses[0]) != math.Float64bits(losses[1]) {
		t.Fatalf("losses differ: %v", losses)
	}
}

// The GPU pads the vocabulary to a multiple of 4 (vocabStride): after steps with weight decay
// the pad rows of the token table (and BERT's decoder bias), their gradients and moments are
// still zero, the logits' pad columns are zero, and Params and Logits show only the vocabulary.
func TestVocabPadding(t *testing.T) {
	for _, c := range []struct {
		cfg           ModelConfig
		vocab, stride int
	}{{tinyGPT(), 23, 24}, {tinyBERT(), bertVocab + 1, 264}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 6
			n := newTestNet(t, c.cfg, c.vocab, b, tt)
			if n.vocabStride() != c.stride {
				t.Fatalf("vocab %d: stride %d, want %d", c.vocab, n.vocabStride(), c.stride)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			for step := 1; step <= 2; step++ {
				batch := randomBatch(rng, b, tt, c.vocab)
				if c.cfg.Arch == "bert" {
					batch = randomMLMBatch(rng, b, tt, 2)
				}
				if _, err := n.Step([]data.Batch{batch}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8,
					WeightDecay: 0.1, Step: step}); err != nil {
					t.Fatal(err)
				}
			}
			padded := 0
			for i, p := range n.Specs {
				if n.stored(p) == p.Size() {
					continue
				}
				padded++
				for _, ts := range [][]*vk.Tensor{n.params, n.grads, n.m, n.v} {
					v, err := ts[i].ReadFloat32()
					if err != nil {
						t.Fatal(err)
					}
					for j := p.Size(); j < n.stored(p); j++ {
						if v[j] != 0 {
							t.Fatalf("%s (%s): pad element %d is %v", p.Name, ts[i].Name, j, v[j])
						}
					}
				}
			}
			if want := map[string]int{"gpt": 1, "bert": 2}[c.cfg.Arch]; padded != want {
				t.Errorf("%d padded parameters, want %d", padded, want)
			}
			logits, err := n.act.logits.ReadFloat32() // the last backward's gradient
			if err != nil {
				t.Fatal(err)
			}
			for r := range n.rows() {
				for j := c.vocab; j < n.vocabStride(); j++ {
					if v := logits[r*n.vocabStride()+j]; v != 0 {
						t.Fatalf("row %d: pad column %d of the logits' gradient is %v", r, j, v)
					}
				}
			}
			params, err := n.Params()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range n.Specs {
				if len(params[p.Name]) != p.Size() {
					t.Errorf("Params()[%s] has %d values, want %d", p.Name, len(params[p.Name]), p.Size())
				}
			}
			if c.cfg.Arch != "gpt" {
				return
			}
			// Logits leaves the pad columns out: compare with the reference's B*T x vocab.
			batch := randomBatch(rng, b, tt, c.vocab)
			got, err := n.Logits(batch.Input)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewRefModel(c.cfg, c.vocab, RefParams(params))
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.Logits(RefBatch{B: b, T: tt, Input: batch.Input, Target: batch.Target})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("Logits: %d values, want %d", len(got), len(want))
			}
			if e := vktest.NSE(got, want); e > 1e-6 {
				t.Errorf("Logits: normalised squared error %g against the reference", e)
			}
		})
	}
}

// withDropout is cfg trained with dropout p.
func withDropout(cfg ModelConfig, p float64) ModelConfig {
	cfg.Dropout = p
	return cfg
}

// testBatches are two micro-batches for arch: random tokens for GPT, masked ones with padding
// for BERT.
func testBatches(rng *rand.Rand, arch string, vocab, b, tt int) []data.Batch {
	if arch == "bert" {
		return []data.Batch{randomMLMBatch(rng, b, tt, 0), randomMLMBatch(rng, b, tt, 3)}
	}
	return []data.Batch{randomBatch(rng, b, tt, vocab), randomBatch(rng, b, tt, vocab)}
}

// A GPU step with dropout against the reference applying the same masks (ref.Dropout at the
// micro-step's key and each site's offset), at a step other than the first; the masks change
// the loss, so a GPU that dropped elsewhere, or not at all, would fail.
func TestDropoutStepMatchesReference(t *testing.T) {
	for _, c := range []struct {
		cfg   ModelConfig
		vocab int
	}{{tinyGPT(), 23}, {tinyBERT(), bertVocab}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 7
			n := newTestNet(t, withDropout(c.cfg, 0.3), c.vocab, b, tt)
			batches := testBatches(rand.New(rand.NewPCG(11, 12)), c.cfg.Arch, c.vocab, b, tt)
			ref, rbs := checkGradients(t, n, batches, 3)
			with, err := ref.Loss(rbs[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			rbs[0].Train = false
			without, err := ref.Loss(rbs[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(with-without) < 1e-3*without {
				t.Errorf("dropout barely changes the reference loss (%v, %v without): the test checks nothing", with, without)
			}
		})
	}
}

// Dropout is deterministic: the same seed, batches and steps give bitwise the same losses and
// parameters; the masks change from one step to the next and between micro-batches.
func TestDropoutDeterministic(t *testing.T) {
	for _, c := range []struct {
		cfg   ModelConfig
		vocab int
	}{{tinyGPT(), 17}, {tinyBERT(), bertVocab}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 8
			o := newTestOps(t)
			var losses [2][]float64
			var params [2]map[string][]float32
			for run := range 2 {
				n := newNetOn(t, o, withDropout(c.cfg, 0.2), c.vocab, b, tt)
				rng := rand.New(rand.NewPCG(3, 4))
				for step := 1; step <= 3; step++ {
					r, err := n.Step(testBatches(rng, c.cfg.Arch, c.vocab, b, tt), ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95,
						Eps: 1e-8, WeightDecay: 0.1, Step: step})
					if err != nil {
						t.Fatal(err)
					}
					losses[run] = append(losses[run], r.Loss)
				}
				var err error
				if params[run], err = n.Params(); err != nil {
					t.Fatal(err)
				}
				// The same micro-batch at the same step and position has the same mask, at
				// another step or position not.
				batch := testBatches(rng, c.cfg.Arch, c.vocab, b, tt)[:1]
				loss := func(step int, batches []data.Batch) float64 {
					l, err := n.Gradients(batches, ops.StepParams{Beta1: 0.9, Beta2: 0.95, Step: step})
					if err != nil {
						t.Fatal(err)
					}
					return l
				}
				l4 := loss(4, batch)
				if again := loss(4, batch); math.Float64bits(again) != math.Float64bits(l4) {
					t.Errorf("run %d: the same step's loss %v, then %v", run, l4, again)
				}
				if l5 := loss(5, batch); l5 == l4 {
					t.Errorf("run %d: steps 4 and 5 have the same loss %v: the mask did not change", run, l4)
				}
				if l4b := loss(4, append(batch, batch[0]))*2 - l4; l4b == l4 {
					t.Errorf("run %d: micro-batches 0 and 1 of step 4 have the same loss: the mask did not change", run)
				}
				// A V-cycle phase after 3 steps counts its steps from 1 again; its masks are the
				// run's steps 4 and on, not those of the phase before.
				n.drop.before = 3
				if l := loss(1, batch); math.Float64bits(l) != math.Float64bits(l4) {
					t.Errorf("run %d: step 1 of a phase after 3 steps has loss %v, the run's step 4 %v", run, l, l4)
				}
				n.drop.before = 0
			}
			for i := range losses[0] {
				if math.Float64bits(losses[0][i]) != math.Float64bits(losses[1][i]) {
					t.Fatalf("step %d: losses %v and %v", i+1, losses[0][i], losses[1][i])
				}
			}
			sameParams(t, params[0], params[1])
		})
	}
}

// Evaluation runs without dropout: a model with dropout evaluates (and samples) exactly as the
// same model without, while its training loss differs; dropout = 0 records no dropout
// dispatch, and each site of a model with dropout one forward and one backward.
func TestDropoutOnlyInTraining(t *testing.T) {
	for _, c := range []struct {
		cfg   ModelConfig
		vocab int
	}{{tinyGPT(), 23}, {tinyBERT(), bertVocab}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 7
			o := newTestOps(t)
			plain := newNetOn(t, o, c.cfg, c.vocab, b, tt) // the same seed: the same parameters
			drop := newNetOn(t, o, withDropout(c.cfg, 0.3), c.vocab, b, tt)
			batch := testBatches(rand.New(rand.NewPCG(13, 14)), c.cfg.Arch, c.vocab, b, tt)[1]
			var evals [2]float64
			for i, n := range []*Net{plain, drop} {
				sum, count, err := n.Evaluate(batch)
				if err != nil {
					t.Fatal(err)
				}
				evals[i] = sum / float64(count)
			}
			if math.Float64bits(evals[0]) != math.Float64bits(evals[1]) {
				t.Errorf("evaluation loss %v with dropout, %v without", evals[1], evals[0])
			}
			sp := ops.StepParams{Beta1: 0.9, Beta2: 0.95, Step: 1}
			trainPlain, err := plain.Gradients([]data.Batch{batch}, sp)
			if err != nil {
				t.Fatal(err)
			}
			trainDrop, err := drop.Gradients([]data.Batch{batch}, sp)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(trainPlain-evals[0]) > 1e-6*evals[0] {
				t.Errorf("without dropout: training loss %v, evaluation loss %v", trainPlain, evals[0])
			}
			if math.Abs(trainDrop-evals[0]) < 1e-3*evals[0] {
				t.Errorf("with dropout: training loss %v is the evaluation loss %v", trainDrop, evals[0])
			}
			if c.cfg.Arch == "gpt" {
				var logits [2][]float32
				for i, n := range []*Net{plain, drop} {
					if logits[i], err = n.Logits(batch.Input); err != nil {
						t.Fatal(err)
					}
				}
				if !slices.Equal(logits[0], logits[1]) {
					t.Error("logits (sampling) differ with dropout")
				}
			}
			sites := 1 + 2*c.cfg.Layers
			if got, want := drop.micro.Dispatches()-plain.micro.Dispatches(), 2*sites; got != want {
				t.Errorf("dropout adds %d dispatches to a micro-step, want %d (one forward, one backward per site)", got, want)
			}
			if got := drop.eval.Dispatches() - plain.eval.Dispatches(); got != 0 {
				t.Errorf("dropout adds %d dispatches to evaluation", got)
			}
		})
	}
}

// Every site of a micro-step draws from its own counter range, and every micro-step of a run
// from its own key: no two masks share random numbers.
func TestDropoutStreams(t *testing.T) {
	const layers, size = 3, 1000
	last := -1
	for site := range dropSite(layers-1, true) + 1 {
		off := int(dropoutOffset(site, size))
		if off < last+size && site > 0 {
			t.Fatalf("site %d starts at counter %d, inside site %d's range", site, off, site-1)
		}
		last = off
	}
	if dropSite(0, false) == 0 || dropSite(0, true) == dropSite(0, false) || dropSite(1, false) == dropSite(0, true) {
		t.Fatal("dropout sites collide")
	}
	n := &Net{drop: dropout{seed: 0xfffffffe}} // keys wrap around
	seen := map[uint32]bool{}
	for step := 1; step <= 5; step++ {
		for micro := range 3 {
			k := n.dropoutKey(step, micro, 3)
			if seen[k] {
				t.Fatalf("step %d, micro-batch %d: key %d was used before", step, micro, k)
			}
			seen[k] = true
		}
	}
}
