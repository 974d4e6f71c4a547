package vcycle

import (
	"fmt"

	"github.com/vktrain/vktrain/vk/ops"
)

// Params are a model's parameters in float64, by name (model.RefParams gives them from a Net).
type Params = map[string][]float64

// Coalesce is the coarse model made from the fine one (method.md sections 1 and 2): along each
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
// (method.md section 3): each fine channel copies its coarse channel, halved along an input
// axis; both layers of a depth pair copy their coarse layer.
func (m *Maps) DeCoalesce(coarse Params) (Params, error) {
	fine := Params{}
	for _, l := range m.links {
		src := coarse[m.Coarse[l.coarse].Name]
		if len(src) != l.rows.Small()*l.cols.Small() {
			return nil, fmt.Errorf("vcycle: %s has %d values, want %d", m.Coarse[l.coarse].Name, len(src), l.rows.Small()*l.cols.Small())
		}
		out := make([]float64, l.rows.Big()*l.cols.Big())
		for r := range l.rows.Big() {
			sr, wr := copyOf(l.rows, r)
			for c := range l.cols.Big() {
				sc, wc := copyOf(l.cols, c)
				out[r*l.cols.Big()+c] = wr * wc * src[sr*l.cols.Small()+sc] / l.scale
			}
		}
		for _, fi := range l.fine {
			fine[m.Fine[fi].Name] = append([]float64(nil), out...)
		}
	}
	return fine, nil
}

// Interpolate is (1-alpha)*saved + alpha*decoalesced for every parameter (method.md section 4).
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
