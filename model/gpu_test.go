package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

func TestGPTStepDeterministic(t *testing.T) {
	cfg := TinyGPT()
	var losses []float64
	var first map[string][]float32
	for run := 0; run < 2; run++ {
		n := NewTestNet(t, cfg, 17, 2, 8)
		rng := rand.New(rand.NewPCG(3, 4))
		var loss float64
		for step := 1; step <= 3; step++ {
			r, err := n.Step([]data.Batch{RandomBatch(rng, 2, 8, 17)}, ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, Step: step})
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
		SameParams(t, first, p)
	}
	if math.Float64bits(losses[0]) != math.Float64bits(losses[1]) {
		t.Fatalf("losses differ: %v", losses)
	}
}

// The GPU pads the vocabulary to a multiple of 4 (vocabStride): after steps with weight decay
// the pad rows of the token table (and BERT's decoder bias), their gradients and moments are
// still zero, the logits' pad columns are zero, and Params shows only the vocabulary
// (TestLogitsMatchReference checks Logits).
func TestVocabPadding(t *testing.T) {
	for _, c := range []struct {
		cfg           config.Model
		vocab, stride int
	}{{TinyGPT(), 23, 24}, {TinyBERT(), BERTVocab + 1, 264}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 6
			n := NewTestNet(t, c.cfg, c.vocab, b, tt)
			if n.vocabStride() != c.stride {
				t.Fatalf("vocab %d: stride %d, want %d", c.vocab, n.vocabStride(), c.stride)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			for step := 1; step <= 2; step++ {
				batch := RandomBatch(rng, b, tt, c.vocab)
				if c.cfg.Arch == "bert" {
					batch = RandomMLMBatch(rng, b, tt, 2)
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
		})
	}
}

// Dropout is deterministic: the same seed, batches and steps give bitwise the same losses and
// parameters; the masks change from one step to the next and between micro-batches.
func TestDropoutDeterministic(t *testing.T) {
	for _, c := range []struct {
		cfg   config.Model
		vocab int
	}{{TinyGPT(), 17}, {TinyBERT(), BERTVocab}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 8
			o := NewTestOps(t)
			var losses [2][]float64
			var params [2]map[string][]float32
			for run := range 2 {
				n := NewNetOn(t, o, WithDropout(c.cfg, 0.2), c.vocab, b, tt)
				rng := rand.New(rand.NewPCG(3, 4))
				for step := 1; step <= 3; step++ {
					r, err := n.Step(MicroBatches(rng, c.cfg.Arch, c.vocab, b, tt), ops.StepParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.95,
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
				batch := MicroBatches(rng, c.cfg.Arch, c.vocab, b, tt)[:1]
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
				n.SetPhaseStart(3)
				if l := loss(1, batch); math.Float64bits(l) != math.Float64bits(l4) {
					t.Errorf("run %d: step 1 of a phase after 3 steps has loss %v, the run's step 4 %v", run, l, l4)
				}
				n.SetPhaseStart(0)
			}
			for i := range losses[0] {
				if math.Float64bits(losses[0][i]) != math.Float64bits(losses[1][i]) {
					t.Fatalf("step %d: losses %v and %v", i+1, losses[0][i], losses[1][i])
				}
			}
			SameParams(t, params[0], params[1])
		})
	}
}

// Evaluation runs without dropout: a model with dropout evaluates (and samples) exactly as the
// same model without, while its training loss differs; dropout = 0 records no dropout
// dispatch, and each site of a model with dropout one forward and one backward.
func TestDropoutOnlyInTraining(t *testing.T) {
	for _, c := range []struct {
		cfg   config.Model
		vocab int
	}{{TinyGPT(), 23}, {TinyBERT(), BERTVocab}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			const b, tt = 2, 7
			o := NewTestOps(t)
			plain := NewNetOn(t, o, c.cfg, c.vocab, b, tt) // the same seed: the same parameters
			drop := NewNetOn(t, o, WithDropout(c.cfg, 0.3), c.vocab, b, tt)
			batch := MicroBatches(rand.New(rand.NewPCG(13, 14)), c.cfg.Arch, c.vocab, b, tt)[1]
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
	for site := range DropSite(layers-1, true) + 1 {
		off := int(DropoutOffset(site, size))
		if off < last+size && site > 0 {
			t.Fatalf("site %d starts at counter %d, inside site %d's range", site, off, site-1)
		}
		last = off
	}
	if DropSite(0, false) == 0 || DropSite(0, true) == DropSite(0, false) || DropSite(1, false) == DropSite(0, true) {
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
