package vcycle

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/ops/ref"
)

// Params are a model's parameters in float64, by name (model.RefParams gives them from a Net).
type Params = map[string][]float64

// Coalesce is the coarse model made from the fine one (docs/method.md §1 and §2): along each
// width axis, output pairs averaged and input pairs summed; each coarse layer the average of
// its fine pair.
func (m *Maps) Coalesce(fine Params) (Params, error) { return m.coalesce(theta, fine) }

// MomentsDown is the coarse model's AdamW moments (m, v) made from the fine model's
// (docs/method.md §9.6).
func (m *Maps) MomentsDown(fineM, fineV Params) (coarseM, coarseV Params, err error) {
	if coarseM, err = m.coalesce(firstMoment, fineM); err != nil {
		return nil, nil, err
	}
	coarseV, err = m.coalesce(secondMoment, fineV)
	return coarseM, coarseV, err
}

func (m *Maps) coalesce(q quantity, fine Params) (Params, error) {
	coarse := Params{}
	for _, l := range m.links {
		p := m.Coarse[l.coarse]
		out := make([]float64, l.rows.Small()*l.cols.Small())
		w := l.downFactor(q) * l.widthFactor(q, false)
		for _, fi := range l.fine {
			src := fine[m.Fine[fi].Name]
			if len(src) != l.rows.Big()*l.cols.Big() {
				return nil, fmt.Errorf("vcycle: %s has %d values, want %d", m.Fine[fi].Name, len(src), l.rows.Big()*l.cols.Big())
			}
			for r := range l.rows.Small() {
				for c := range l.cols.Small() {
					sum := 0.0
					for _, br := range pair(l.rows, r) {
						for _, bc := range pair(l.cols, c) {
							sum += src[br*l.cols.Big()+bc]
						}
					}
					out[r*l.cols.Small()+c] += w * sum
				}
			}
		}
		coarse[p.Name] = out
	}
	return coarse, nil
}

// DeCoalesce is the fine model made from the coarse one, the pseudo-inverse of Coalesce
// (docs/method.md §3): each fine channel copies its coarse channel, halved along an input
// axis; both layers of a depth pair copy their coarse layer as depth_init says (§9.7). A split
// with Sigma > 0 adds the antisymmetric ±D along input axes (see ops.Split; the stream is the
// fine parameter's index).
func (m *Maps) DeCoalesce(coarse Params, split ops.Split) (Params, error) {
	return m.decoalesce(theta, coarse, split)
}

// MomentsUp is the fine model's AdamW moments (m, v) made from the coarse model's
// (docs/method.md §9.4).
func (m *Maps) MomentsUp(coarseM, coarseV Params) (fineM, fineV Params, err error) {
	if fineM, err = m.decoalesce(firstMoment, coarseM, ops.Split{}); err != nil {
		return nil, nil, err
	}
	fineV, err = m.decoalesce(secondMoment, coarseV, ops.Split{})
	return fineM, fineV, err
}

func (m *Maps) decoalesce(q quantity, coarse Params, split ops.Split) (Params, error) {
	fine := Params{}
	for _, l := range m.links {
		src := coarse[m.Coarse[l.coarse].Name]
		if len(src) != l.rows.Small()*l.cols.Small() {
			return nil, fmt.Errorf("vcycle: %s has %d values, want %d", m.Coarse[l.coarse].Name, len(src), l.rows.Small()*l.cols.Small())
		}
		for j, fi := range l.fine {
			out := make([]float64, l.rows.Big()*l.cols.Big())
			w := l.widthFactor(q, true)
			for r := range l.rows.Big() {
				sr := copyOf(l.rows, r)
				for c := range l.cols.Big() {
					si := sr*l.cols.Small() + copyOf(l.cols, c)
					v := w * src[si]
					if split.Sigma != 0 {
						v += splitSign(l.rows, l.cols, r, c) * float64(split.Sigma) * splitNoise(split.Seed, uint32(fi), uint32(si))
					}
					out[r*l.cols.Big()+c] = l.upFactor(q, j) * v
				}
			}
			fine[m.Fine[fi].Name] = out
		}
	}
	return fine, nil
}

// splitSign is +1 for the first channel of an input-axis pair, -1 for the second, and 0 when
// neither axis is an input axis.
func splitSign(rows, cols ops.Axis, r, c int) float64 {
	a, i := cols, c
	if cols.Role != ops.RoleIn {
		a, i = rows, r
	}
	switch {
	case a.Role != ops.RoleIn:
		return 0
	case i%(2*a.Half) < a.Half:
		return 1
	}
	return -1
}

// splitNoise is the standard normal the remap shader draws for small element i: Philox4x32
// with counter {i, stream, 0, 0} and key {seed, 0x5EED}, then Box-Muller over 24-bit uniforms.
func splitNoise(seed, stream, i uint32) float64 {
	r := ref.Philox4x32([4]uint32{i, stream, 0, 0}, [2]uint32{seed, 0x5EED})
	u1 := float64(r[0]>>8+1) / (1 << 24)
	u2 := float64(r[1]>>8) / (1 << 24)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// Interpolate is (1-alpha)*saved + alpha*decoalesced for every parameter (docs/method.md §4).
func Interpolate(saved, decoalesced Params, alpha float64) (Params, error) {
	out := Params{}
	for name, s := range saved {
		d, ok := decoalesced[name]
		if !ok || len(d) != len(s) {
			return nil, fmt.Errorf("vcycle: interpolating %s: the de-coalesced model has no such parameter", name)
		}
		v := make([]float64, len(s))
		for i := range s {
			v[i] = (1-alpha)*s[i] + alpha*d[i]
		}
		out[name] = v
	}
	return out, nil
}

// pair gives the fine indices that coarse index i of axis a combines.
func pair(a ops.Axis, i int) []int {
	if a.Role == ops.Unmapped {
		return []int{i}
	}
	first := i/a.Half*2*a.Half + i%a.Half
	return []int{first, first + a.Half}
}

// copyOf gives the coarse index that fine index i of axis a copies.
func copyOf(a ops.Axis, i int) int {
	if a.Role == ops.Unmapped {
		return i
	}
	return i/(2*a.Half)*a.Half + i%a.Half
}
