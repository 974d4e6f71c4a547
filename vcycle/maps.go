// Package vcycle implements the multi-level V-cycle of Zou, Zhang and Deng (ICLR 2024) as
// docs/method.md states it: coalescing a model into one of half the width and depth,
// de-coalescing it back, interpolating with the saved parameters of the level above, and the
// schedule that trains each level in turn. The maps run as GPU kernels over the parameter
// buffers (gpu.go); cpu.go is their float64 statement, which the tests compare against.
package vcycle

import (
	"fmt"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk/ops"
)

// Maps is the pair of maps between two adjacent levels: a fine model and the coarse one
// coalesced from it.
type Maps struct {
	Fine, Coarse []model.ParamSpec
	links        []link // one per coarse parameter, in Coarse's order
}

// link says how coarse parameter Coarse[coarse] is made: from the fine parameters fine (one,
// or the two layers a depth pair averages), with rows x cols the matrix view of its width map
// and scale an extra factor of coalescing (de-coalescing divides by it).
type link struct {
	coarse     int
	fine       []int
	rows, cols ops.Axis
	scale      float64
}

// NewMaps builds the maps from the fine model fine to the model one level below it (halving
// width and/or depth). pairing is "adjacent" or "stride" (which fine layers a coarse layer
// averages) and rule "exact" or "reference" (how the tied embedding's scale is kept; see
// docs/method.md §3).
func NewMaps(fine config.Model, vocab int, width, depth bool, pairing, rule string) (*Maps, error) {
	coarse, err := fine.Halved(width, depth)
	if err != nil {
		return nil, err
	}
	m := &Maps{Fine: model.Params(fine, vocab), Coarse: model.Params(coarse, vocab)}
	byKey := map[string]int{}
	for i, p := range m.Fine {
		byKey[key(p.Layer, p.Local)] = i
	}
	for ci, p := range m.Coarse {
		l := link{coarse: ci, scale: 1}
		for _, layer := range fineLayers(p.Layer, fine.Layers, depth, pairing) {
			fi, ok := byKey[key(layer, p.Local)]
			if !ok {
				return nil, fmt.Errorf("vcycle: coarse parameter %s has no fine counterpart in layer %d", p.Name, layer)
			}
			l.fine = append(l.fine, fi)
		}
		if l.rows, l.cols, err = axes(p, coarse, width); err != nil {
			return nil, err
		}
		if width {
			l.scale = ruleScale(p, rule)
		}
		m.links = append(m.links, l)
	}
	return m, nil
}

func key(layer int, local string) string { return fmt.Sprint(layer, "/", local) }

// fineLayers are the fine layers coarse layer l averages (l itself without depth halving);
// outside the blocks (l < 0) it is l.
func fineLayers(l, fineLayers int, depth bool, pairing string) []int {
	switch {
	case l < 0 || !depth:
		return []int{l}
	case pairing == "stride":
		return []int{l, l + fineLayers/2}
	}
	return []int{2 * l, 2*l + 1}
}

// axes is the matrix view of coarse parameter p for the width map (all axes unmapped when
// width is not halved). Shapes are those of the coarse model.
func axes(p model.ParamSpec, coarse config.Model, width bool) (rows, cols ops.Axis, err error) {
	shape := p.Shape
	if len(shape) == 1 {
		shape = []int{1, shape[0]}
	}
	axis := func(r model.WidthRole, n int) ops.Axis {
		if !width {
			r = model.Fixed
		}
		switch r {
		case model.ResidualOut, model.FFNOut:
			return ops.Axis{Role: ops.RoleOut, Groups: n / half(r, coarse), Half: half(r, coarse)}
		case model.ResidualIn, model.FFNIn:
			return ops.Axis{Role: ops.RoleIn, Groups: n / half(r, coarse), Half: half(r, coarse)}
		}
		return ops.Axis{Role: ops.Unmapped, Groups: n, Half: 1}
	}
	rows, cols = axis(p.Rows, shape[0]), axis(p.Cols, shape[1])
	if rows.Small() != shape[0] || cols.Small() != shape[1] {
		return rows, cols, fmt.Errorf("vcycle: %s of shape %v does not fit its width map", p.Name, p.Shape)
	}
	return rows, cols, nil
}

// half is the size of a block of paired channels in the coarse model: big channel j pairs with
// j + half (so head h pairs with head h + H/2, FFN unit j with j + f/2).
func half(r model.WidthRole, coarse config.Model) int {
	if r == model.FFNOut || r == model.FFNIn {
		return coarse.FFN
	}
	return coarse.Width
}

// ruleScale is the extra factor coalescing applies to parameter p (de-coalescing applies its
// inverse) so that width de-coalescing keeps the tied decoder's logits (docs/method.md §3): under
// "exact" the LayerNorm feeding the decoder is doubled on coalescing, under "reference" the
// input embeddings.
func ruleScale(p model.ParamSpec, rule string) float64 {
	if rule == "exact" && p.Tied == model.HeadNorm || rule == "reference" && p.Tied == model.Embedding {
		return 2
	}
	return 1
}
