package vcycle

import (
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// tensor is net's GPU tensor of q for parameter i.
func tensor(net *model.Net, q quantity, i int) *vk.Tensor {
	m, v := net.MomentTensors(i)
	switch q {
	case firstMoment:
		return m
	case secondMoment:
		return v
	}
	return net.ParamTensor(i)
}

// RecordCoalesce records coarse's parameters := Coalesce(fine's), buffer to buffer on the GPU.
// A depth pair is two dispatches into the same coarse buffer.
func (m *Maps) RecordCoalesce(o *ops.Ops, s *vk.Sequence, fine, coarse *model.Net) error {
	return m.recordDown(o, s, theta, fine, coarse)
}

// RecordMomentsDown records coarse's AdamW moments := the coalesced moments of fine
// (docs/method.md §9.6).
func (m *Maps) RecordMomentsDown(o *ops.Ops, s *vk.Sequence, fine, coarse *model.Net) error {
	if err := m.recordDown(o, s, firstMoment, fine, coarse); err != nil {
		return err
	}
	return m.recordDown(o, s, secondMoment, fine, coarse)
}

// recordDown records coarse's q := the coalesced q of fine. The shader weighs a pair's
// sources as parameters' coalescing does; the scale turns that into q's weights.
func (m *Maps) recordDown(o *ops.Ops, s *vk.Sequence, q quantity, fine, coarse *model.Net) error {
	for _, l := range m.links {
		dst := tensor(coarse, q, l.coarse)
		w := float32(l.downFactor(q) * l.widthFactor(q, false) / l.widthFactor(theta, false))
		for j, fi := range l.fine {
			beta := float32(0)
			if j > 0 {
				beta = 1
			}
			if err := o.Coalesce(s, tensor(fine, q, fi), dst, l.rows, l.cols, beta, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// RecordInterpolate records fine's parameters := (1-alpha)*fine's + alpha*DeCoalesce(coarse's,
// split): fine holds the parameters saved just before it was coalesced (docs/method.md §4).
// split.Stream is set per fine parameter (its index). With alpha = 0 nothing is recorded.
func (m *Maps) RecordInterpolate(o *ops.Ops, s *vk.Sequence, coarse, fine *model.Net, alpha float64, split ops.Split) error {
	if alpha == 0 {
		return nil
	}
	for _, l := range m.links {
		for j, fi := range l.fine {
			split.Stream = uint32(fi)
			err := o.DeCoalesce(s, coarse.ParamTensor(l.coarse), fine.ParamTensor(fi), l.rows, l.cols,
				float32(1-alpha), float32(alpha*l.upFactor(theta, j)), split)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// RecordMomentsUp records fine's AdamW moments := the de-coalesced moments of coarse
// (docs/method.md §9.4), replacing what fine held: the moments of the interpolated model are
// mapped as if alpha were 1 (§9.8).
func (m *Maps) RecordMomentsUp(o *ops.Ops, s *vk.Sequence, coarse, fine *model.Net) error {
	for _, q := range []quantity{firstMoment, secondMoment} {
		for _, l := range m.links {
			for j, fi := range l.fine {
				w := float32(l.upFactor(q, j) * l.widthFactor(q, true) / l.widthFactor(theta, true))
				err := o.DeCoalesce(s, tensor(coarse, q, l.coarse), tensor(fine, q, fi), l.rows, l.cols, 0, w, ops.Split{})
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}
