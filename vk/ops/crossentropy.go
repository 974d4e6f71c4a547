package ops

import (
	"fmt"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// CrossEntropyForward records losses[r] = logsumexp(logits[r]) - logits[r][targets[r]] for each
// of rows rows of vocab logits (row-major, dense), fused with the softmax. targets holds uint32
// token ids; a row whose target is ignoreIndex gets loss 0, and a target >= vocab (other than
// ignoreIndex) gets NaN.
func (o *Ops) CrossEntropyForward(s *vk.Sequence, logits, targets, losses *vk.Tensor, rows, vocab int, ignoreIndex uint32) error {
	return o.CrossEntropyForwardStrided(s, logits, targets, losses, rows, vocab, vocab, ignoreIndex)
}

// CrossEntropyForwardStrided is CrossEntropyForward over rows that start every stride >= vocab
// elements: the loss covers the first vocab columns of each row and never reads the others (a
// padded row keeps the vocabulary matmuls on their vec4 path).
func (o *Ops) CrossEntropyForwardStrided(s *vk.Sequence, logits, targets, losses *vk.Tensor, rows, vocab, stride int, ignoreIndex uint32) error {
	if err := checkCrossEntropy("cross-entropy", vocab, stride, shaped{"logits", logits, []int{rows, stride}},
		shaped{"targets", targets, []int{rows}}, shaped{"losses", losses, []int{rows}}); err != nil {
		return err
	}
	// The shader's gradient output (binding 2) is bound to the losses, which it does not write.
	return counted(s, 3*float64(rows*vocab), o.crossEntropy(s, 0, false, rows, vocab, stride, ignoreIndex, 0,
		vk.In(logits), vk.In(targets), vk.Out(losses), vk.Out(losses)))
}

// CrossEntropyBackward records the gradient of the mean loss over the step's counted targets:
// dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) * stepParams[StepLossScale], where the
// loss scale is 1/count (StepParams.Tokens: the non-ignored targets of the whole step, over
// all micro-batches). Rows whose target is ignoreIndex get zeros; a count of 0 makes every
// gradient zero (not NaN). dlogits may be logits itself (in place).
func (o *Ops) CrossEntropyBackward(s *vk.Sequence, logits, targets, dlogits, stepParams *vk.Tensor, rows, vocab int, ignoreIndex uint32) error {
	return o.CrossEntropyBackwardStrided(s, logits, targets, dlogits, nil, stepParams, rows, vocab, vocab, ignoreIndex, 0)
}

// CrossEntropyBackwardStrided is CrossEntropyBackward over rows that start every stride >= vocab
// elements (see CrossEntropyForwardStrided); the columns from vocab to stride of dlogits get 0.
// When losses is not nil it also gets the forward's losses, from the same passes over the
// logits (training needs no separate forward). smoothing in [0, 1) is label smoothing: the
// target of a row is smoothing/vocab on every class plus 1-smoothing on its own, so the gradient
// is softmax - that distribution and the loss logsumexp - (1-smoothing) x[t] - smoothing mean(x)
// (0 gives the plain cross-entropy bit for bit).
func (o *Ops) CrossEntropyBackwardStrided(s *vk.Sequence, logits, targets, dlogits, losses, stepParams *vk.Tensor, rows, vocab, stride int, ignoreIndex uint32, smoothing float32) error {
	args := []shaped{{"logits", logits, []int{rows, stride}}, {"targets", targets, []int{rows}},
		{"dlogits", dlogits, []int{rows, stride}}, stepShape(stepParams)}
	lossOut := dlogits // the shader's loss output (binding 3), not written without losses
	if losses != nil {
		args, lossOut = append(args, shaped{"losses", losses, []int{rows}}), losses
	}
	if err := checkCrossEntropy("cross-entropy backward", vocab, stride, args...); err != nil {
		return err
	}
	if !(smoothing >= 0 && smoothing < 1) {
		return fmt.Errorf("cross-entropy backward: label smoothing %g is not in [0, 1)", smoothing)
	}
	return counted(s, 5*float64(rows*vocab), o.crossEntropy(s, 1, losses != nil, rows, vocab, stride, ignoreIndex, smoothing,
		vk.In(logits), vk.In(targets), vk.Out(dlogits), vk.Out(lossOut), vk.In(stepParams)))
}

// checkCrossEntropy checks the shapes and that the vocabulary fits in the row stride.
func checkCrossEntropy(op string, vocab, stride int, args ...shaped) error {
	if vocab < 1 || stride < vocab {
		return fmt.Errorf("%s: vocabulary %d must be positive and fit in the row stride %d", op, vocab, stride)
	}
	return checkShapes(op, args...)
}

// crossEntropy records the crossentropy shader, one row per invocation, with vec4 access when
// the row stride allows it; losses makes the backward write the losses too.
func (o *Ops) crossEntropy(s *vk.Sequence, backward uint32, losses bool, rows, vocab, stride int, ignoreIndex uint32, smoothing float32, args ...vk.Arg) error {
	e, err := o.entry("softmax", "default")
	if err != nil {
		return err
	}
	wg := e.Get("wg_x")
	k, err := o.ctx.Kernel("crossentropy", shaders.CrossEntropySpec{Workgroup: shaders.Workgroup{X: uint32(wg), Y: 1, Z: 1},
		Backward: backward, SlotLossScale: StepLossScale, Vec: boolU32(stride%4 == 0), Losses: boolU32(losses)})
	if err != nil {
		return err
	}
	return s.Dispatch(k, grid1D(o.ctx, vk.Groups(rows, wg)), shaders.CrossEntropyPush{Rows: uint32(rows), Vocab: uint32(vocab), IgnoreIndex: ignoreIndex, Stride: uint32(stride),
		Smoothing: smoothing}, args...)
}
