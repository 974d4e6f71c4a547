package vcycle

import (
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// RecordCoalesce records coarse's parameters := Coalesce(fine's), buffer to buffer on the GPU.
// A depth pair is two dispatches into the same coarse buffer (half of each).
func (m *Maps) RecordCoalesce(o *ops.Ops, s *vk.Sequence, fine, coarse *model.Net) error {
	for _, l := range m.links {
		dst := coarse.ParamTensor(l.coarse)
		w := float32(l.scale / float64(len(l.fine)))
		for j, fi := range l.fine {
			beta := float32(0)
			if j > 0 {
				beta = 1
			}
			if err := o.Coalesce(s, fine.ParamTensor(fi), dst, l.rows, l.cols, beta, w); err != nil {
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
		for _, fi := range l.fine {
			split.Stream = uint32(fi)
			err := o.DeCoalesce(s, coarse.ParamTensor(l.coarse), fine.ParamTensor(fi), l.rows, l.cols,
				float32(1-alpha), float32(alpha/l.scale), split)
			if err != nil {
				return err
			}
		}
	}
	return nil
}
