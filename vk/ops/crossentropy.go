package ops

import "github.com/vktrain/vktrain/vk"

// CrossEntropyForward records losses[r] = logsumexp(logits[r]) - logits[r][targets[r]] for each
// of rows rows of vocab logits (row-major), fused with the softmax. targets holds uint32 token
// ids; a row whose target is ignoreIndex gets loss 0, and a target >= vocab (other than
// ignoreIndex) gets NaN.
func (o *Ops) CrossEntropyForward(s *vk.Sequence, logits, targets, losses *vk.Tensor, rows, vocab int, ignoreIndex uint32) error {
	if err := checkShapes("cross-entropy", shaped{"logits", logits, []int{rows, vocab}}, shaped{"targets", targets, []int{rows}},
		shaped{"losses", losses, []int{rows}}); err != nil {
		return err
	}
	return counted(s, 3*float64(rows*vocab), o.crossEntropy(s, 0, rows, vocab, ignoreIndex, vk.In(logits), vk.In(targets), vk.Out(losses)))
}

// CrossEntropyBackward records the gradient of the mean loss over the step's counted targets:
// dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) * stepParams[StepLossScale], where the
// loss scale is 1/count (StepParams.Tokens: the non-ignored targets of the whole step, over
// all micro-batches). Rows whose target is ignoreIndex get zeros; a count of 0 makes every
// gradient zero (not NaN). dlogits may be logits itself (in place).
func (o *Ops) CrossEntropyBackward(s *vk.Sequence, logits, targets, dlogits, stepParams *vk.Tensor, rows, vocab int, ignoreIndex uint32) error {
	if err := checkShapes("cross-entropy backward", shaped{"logits", logits, []int{rows, vocab}},
		shaped{"targets", targets, []int{rows}}, shaped{"dlogits", dlogits, []int{rows, vocab}}, stepShape(stepParams)); err != nil {
		return err
	}
	return counted(s, 5*float64(rows*vocab), o.crossEntropy(s, 1, rows, vocab, ignoreIndex, vk.In(logits), vk.In(targets), vk.Out(dlogits), vk.In(stepParams)))
}

// crossEntropy records the crossentropy shader, one row per invocation.
func (o *Ops) crossEntropy(s *vk.Sequence, backward uint32, rows, vocab int, ignoreIndex uint32, args ...vk.Arg) error {
	e, err := o.entry("softmax", "default")
	if err != nil {
		return err
	}
	wg := e.Get("wg_x")
	k, err := o.ctx.Kernel("crossentropy", uint32(wg), 1, 1, backward, StepLossScale)
	if err != nil {
		return err
	}
	return s.Dispatch(k, grid1D(o.ctx, vk.Groups(rows, wg)), vk.Push(uint32(rows), uint32(vocab), ignoreIndex, uint32(vocab)), args...)
}
