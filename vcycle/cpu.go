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
func (m *Maps) Coalesce(fine Params) (Params, error) {
	coarse := Params{}
	for _, l := range m.links {
		p := m.Coarse[l.coarse]
		out := make([]float64, l.rows.Small()*l.cols.Small())
		for _, fi := range l.fine {
			src := fine[m.Fine[fi].Name]
			if len(src) != l.rows.Big()*l.cols.Big() {
				return nil, fmt.Errorf("vcycle: %s has %d values, want %d", m.Fine[fi].Name, len(src), l.rows.Big()*l.cols.Big())
			}
			w := l.scale / float64(len(l.fine))
			for r := range l.rows.Small() {
				rs, wr := pair(l.rows, r)
				for c := range l.cols.Small() {
					cs, wc := pair(l.cols, c)
					sum := 0.0
					for _, br := range rs {
						for _, bc := range cs {
							sum += src[br*l.cols.Big()+bc]
						}
					}
					out[r*l.cols.Small()+c] += w * wr * wc * sum
				}
			}
		}
		coarse[p.Name] = out
	}
	return coarse, nil
}

// DeCoalesce is the fine model made from the coarse one, the pseudo-inverse of Coalesce
// (docs/method.md §3): each fine channel copies its coarse channel, halved along an input
// axis; both layers of a depth pair copy their coarse layer. A split with Sigma > 0 adds the
// antisymmetric ±D along input axes (see ops.Split; the stream is the fine parameter's index).
func (m *Maps) DeCoalesce(coarse Params, split ops.Split) (Params, error) {
	fine := Params{}
	for _, l := range m.links {
		src := coarse[m.Coarse[l.coarse].Name]
		if len(src) != l.rows.Small()*l.cols.Small() {
			return nil, fmt.Errorf("vcycle: %s has %d values, want %d", m.Coarse[l.coarse].Name, len(src), l.rows.Small()*l.cols.Small())
		}
		for _, fi := range l.fine {
			out := make([]float64, l.rows.Big()*l.cols.Big())
			for r := range l.rows.Big() {
				sr, wr := copyOf(l.rows, r)
				for c := range l.cols.Big() {
					sc, wc := copyOf(l.cols, c)
					si := sr*l.cols.Small() + sc
					v := wr * wc * src[si]
					if split.Sigma != 0 {
						v += splitSign(l.rows, l.cols, r, c) * float64(split.Sigma) * splitNoise(split.Seed, uint32(fi), uint32(si))
					}
					out[r*l.cols.Big()+c] = v / l.scale
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

// pair gives the fine indices coarse index i of axis a combines and their weight: an output
// pair is averaged, an input pair summed.
func pair(a ops.Axis, i int) ([]int, float64) {
	if a.Role == ops.Unmapped {
		return []int{i}, 1
	}
	first := i/a.Half*2*a.Half + i%a.Half
	if a.Role == ops.RoleOut {
		return []int{first, first + a.Half}, 0.5
	}
	return []int{first, first + a.Half}, 1
}

// copyOf gives the coarse index fine index i of axis a copies and its weight: an input axis
// copies half.
func copyOf(a ops.Axis, i int) (int, float64) {
	if a.Role == ops.Unmapped {
		return i, 1
	}
	s := i/(2*a.Half)*a.Half + i%a.Half
	if a.Role == ops.RoleIn {
		return s, 0.5
	}
	return s, 1
}
