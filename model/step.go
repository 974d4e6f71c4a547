package model

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// record records the four sequences the host replays: zeroing the gradients, a micro-step
// (forward with dropout, loss and backward), an evaluation pass (forward without dropout and
// loss) and the optimizer update.
func (n *Net) record() error {
	var err error
	if n.zero, err = n.ctx.NewSequence(); err != nil {
		return err
	}
	if err := n.recordZero(n.zero); err != nil {
		return err
	}
	if n.micro, err = n.ctx.NewSequence(); err != nil {
		return err
	}
	if err := n.recordMicro(n.micro); err != nil {
		return err
	}
	if n.eval, err = n.ctx.NewSequence(); err != nil {
		return err
	}
	if err := n.recordForward(n.eval, false); err != nil {
		return err
	}
	if err := n.recordLoss(n.eval); err != nil {
		return err
	}
	if n.update, err = n.ctx.NewSequence(); err != nil {
		return err
	}
	return n.recordUpdate(n.update, n.clip)
}

// recordZero records zeroing every gradient (pads included: the gradient norm reads them).
func (n *Net) recordZero(s *vk.Sequence) error {
	for _, g := range n.grads {
		if err := n.o.Fill(s, g, g.Len(), 0); err != nil {
			return err
		}
	}
	return nil
}

// recordMicro records a micro-step: the forward pass with dropout, the loss and the backward.
func (n *Net) recordMicro(s *vk.Sequence) error {
	if err := n.recordForward(s, true); err != nil {
		return err
	}
	return n.recordBackward(&segments{n: n, seqs: []*vk.Sequence{s}})
}

// TimedStep records a whole training step with one micro-batch (zeroing the gradients, the
// micro-step, clipping and AdamW) into a new timed sequence, for a breakdown of where a step's
// time goes (vk.Sequence.Times). Running it repeats a step on the inputs and step parameters
// the last Step wrote.
func (n *Net) TimedStep() (*vk.Sequence, error) {
	s, err := n.ctx.NewTimedSequence(n.zero.Dispatches() + n.micro.Dispatches() + n.update.Dispatches())
	if err != nil {
		return nil, err
	}
	if err := record(func() error { return n.recordZero(s) }, func() error { return n.recordMicro(s) },
		func() error { return n.recordUpdate(s, n.clip) }); err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

// recordUpdate records the global gradient norm, clipping to maxNorm (0: none) and AdamW.
func (n *Net) recordUpdate(s *vk.Sequence, maxNorm float32) error {
	if err := n.o.GradNorm(s, n.grads, n.parts, n.step, maxNorm); err != nil {
		return err
	}
	for i, p := range n.Specs {
		if err := n.o.AdamW(s, n.params[i], n.grads[i], n.m[i], n.v[i], n.step, p.Size(), p.Decay); err != nil {
			return err
		}
	}
	return nil
}

// SetGradClip re-records the update with a global gradient-norm clip (0 turns it off).
func (n *Net) SetGradClip(maxNorm float64) error {
	if err := n.update.Reset(); err != nil {
		return err
	}
	n.clip = float32(maxNorm)
	return n.recordUpdate(n.update, n.clip)
}

// Counted is the number of targets (an image batch's labels) of b the loss counts (not
// IgnoreIndex).
func Counted(b data.Batch) int {
	c := 0
	for _, ts := range [][]uint32{b.Target, b.Labels} {
		for _, t := range ts {
			if t != IgnoreIndex {
				c++
			}
		}
	}
	return c
}

// load writes a micro-batch's ids and targets (and BERT's padding mask, from its [PAD] ids), or
// a ViT's images and labels.
func (n *Net) load(b data.Batch) error {
	if n.vit() {
		return n.loadImages(b)
	}
	if len(b.Input) != n.B*n.T || len(b.Target) != n.B*n.T {
		return fmt.Errorf("batch of %d inputs and %d targets, the model takes %d x %d", len(b.Input), len(b.Target), n.B, n.T)
	}
	for _, id := range b.Input {
		if int(id) >= n.Vocab {
			return fmt.Errorf("token id %d is outside the vocabulary of %d", id, n.Vocab)
		}
	}
	if err := n.in.ids.WriteUint32(0, b.Input); err != nil {
		return err
	}
	if n.bert() {
		if err := n.in.keyValid.WriteUint32(0, n.keyValid(b.Input)); err != nil {
			return err
		}
	}
	return n.in.targets.WriteUint32(0, b.Target)
}

// lossSum reads the per-token losses of the last run and sums them in float64.
func (n *Net) lossSum() (float64, error) {
	l, err := n.act.losses.ReadFloat32()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range l {
		sum += float64(v)
	}
	return sum, nil
}

// StepResult is what one optimizer step measured.
type StepResult struct {
	Loss     float64 // mean over the counted targets of all micro-batches
	GradNorm float64 // before clipping
	FLOPs    float64 // of the kernels dispatched
}

// Share is the part of a step's micro-batches that one rank of a data-parallel job computes:
// the step has Micros micro-batches in all, this rank's start at index First, and Tokens is the
// number of targets the loss counts in all of them (the step's mean loss divides by it). When
// Ready is not nil the share's last micro-step runs bucket by bucket (Buckets) and Ready(k) is
// called as soon as bucket k's gradients are final.
type Share struct {
	First, Micros, Tokens int
	Ready                 func(bucket int) error
}

// Gradients runs the forward and backward passes of every micro-batch, leaving the gradient of
// the mean loss (over all their counted targets) in the gradient tensors. It returns that loss.
func (n *Net) Gradients(batches []data.Batch, sp ops.StepParams) (float64, error) {
	count := 0
	for _, b := range batches {
		count += Counted(b)
	}
	total, err := n.ShareGradients(batches, Share{Micros: len(batches), Tokens: count}, sp)
	if err != nil || count == 0 {
		return 0, err
	}
	return total / float64(count), nil
}

// ShareGradients runs the forward and backward passes of a rank's share of a step, batches,
// leaving in the gradient tensors their part of the gradient of the step's mean loss, and
// returns the summed loss of their counted targets (micro-batch by micro-batch, in order).
// Dropout masks depend on the seed, the run's step (sp.Step after the steps of earlier V-cycle
// phases) and the micro-batch's index in the step only, so a share draws the masks the whole
// step would give it.
func (n *Net) ShareGradients(batches []data.Batch, sh Share, sp ops.StepParams) (float64, error) {
	sp.Tokens = sh.Tokens
	if err := sp.Write(n.step); err != nil {
		return 0, err
	}
	if err := n.zero.Run(); err != nil {
		return 0, err
	}
	var total float64
	for i, b := range batches {
		if err := n.load(b); err != nil {
			return 0, err
		}
		if err := n.setDropout(sp.Step, sh.First+i, sh.Micros); err != nil {
			return 0, err
		}
		run := n.micro.Run
		if sh.Ready != nil && i == len(batches)-1 {
			run = func() error { return n.runBuckets(sh.Ready) }
		}
		if err := run(); err != nil {
			return 0, err
		}
		s, err := n.lossSum()
		if err != nil {
			return 0, err
		}
		total += s
	}
	return total, nil
}

// Update clips the gradients and applies AdamW with the step parameters the last Gradients or
// ShareGradients wrote; it returns the gradient norm before clipping.
func (n *Net) Update() (float64, error) {
	if err := n.update.Run(); err != nil {
		return 0, err
	}
	stepVals, err := n.step.ReadFloat32()
	if err != nil {
		return 0, err
	}
	return float64(stepVals[ops.StepGradNorm]), nil
}

// StepFLOPs is the work of the kernels of an optimizer step over micros micro-batches.
func (n *Net) StepFLOPs(micros int) float64 {
	return float64(micros)*n.micro.FLOPs() + n.zero.FLOPs() + n.update.FLOPs()
}

// Step is one optimizer step: gradients over the micro-batches, then clipping and AdamW with
// the step parameters sp (learning rate, betas, step count ...).
func (n *Net) Step(batches []data.Batch, sp ops.StepParams) (StepResult, error) {
	loss, err := n.Gradients(batches, sp)
	if err != nil {
		return StepResult{}, err
	}
	norm, err := n.Update()
	if err != nil {
		return StepResult{}, err
	}
	r := StepResult{Loss: loss, GradNorm: norm, FLOPs: n.StepFLOPs(len(batches))}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return r, fmt.Errorf("loss is %v", loss)
	}
	return r, nil
}

// Evaluate returns the summed loss and the number of counted targets of a forward pass.
func (n *Net) Evaluate(b data.Batch) (float64, int, error) {
	if err := n.load(b); err != nil {
		return 0, 0, err
	}
	if err := n.eval.Run(); err != nil {
		return 0, 0, err
	}
	s, err := n.lossSum()
	return s, Counted(b), err
}

// Params reads every parameter from the device, by name.
func (n *Net) Params() (map[string][]float32, error) { return n.readAll(n.params) }

// Grads reads every gradient from the device, by parameter name.
func (n *Net) Grads() (map[string][]float32, error) { return n.readAll(n.grads) }

func (n *Net) readAll(ts []*vk.Tensor) (map[string][]float32, error) {
	out := map[string][]float32{}
	for i, p := range n.Specs {
		v, err := ts[i].ReadFloat32()
		if err != nil {
			return nil, err
		}
		out[p.Name] = v[:p.Size()]
	}
	return out, nil
}

// Moments reads AdamW's first and second moments, by parameter name.
func (n *Net) Moments() (m, v map[string][]float32, err error) {
	if m, err = n.readAll(n.m); err != nil {
		return nil, nil, err
	}
	v, err = n.readAll(n.v)
	return m, v, err
}

// SetMoments writes AdamW's moments by parameter name (a resumed run).
func (n *Net) SetMoments(m, v map[string][]float32) error {
	if err := writeAll(n.m, n.Specs, m); err != nil {
		return err
	}
	return writeAll(n.v, n.Specs, v)
}

// SetParams writes parameters by name; every parameter must be given with its size.
func (n *Net) SetParams(vals map[string][]float32) error { return writeAll(n.params, n.Specs, vals) }

func writeAll(ts []*vk.Tensor, specs []ParamSpec, vals map[string][]float32) error {
	for i, p := range specs {
		v, ok := vals[p.Name]
		if !ok || len(v) != p.Size() {
			return fmt.Errorf("parameter %s: %d values given, want %d", p.Name, len(v), p.Size())
		}
		if err := ts[i].WriteFloat32(0, v); err != nil {
			return err
		}
	}
	return nil
}
