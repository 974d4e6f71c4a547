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
// or the two layers a depth pair averages), with rows x cols the matrix view of its width map.
// tied is the spread of the tied-embedding rule's rescaling (one copy holding 1/scale of the
// coarse value) and grow the spread of each fine copy when de-coalescing (depth_init).
type link struct {
	coarse     int
	fine       []int
	rows, cols ops.Axis
	tied       spread
	grow       []spread
	identity   bool // depth_init "zero": fine[1] belongs to the layer that starts as the identity
	branch     bool // a residual branch's output projection
}

// quantity is what a map carries: parameters or one of AdamW's moments (docs/method.md §9.4–§9.6).
type quantity int

const (
	theta quantity = iota
	firstMoment
	secondMoment
)

// spread is how de-coalescing copies one coarse element: into k fine copies, each holding c
// times its value (an output axis: 2 copies of 1; an input axis: 2 of 1/2). A copy's
// gradient is then c/(k c²) = 1/(k c) times the coarse gradient, which fixes the moments' maps.
type spread struct{ k, c float64 }

var (
	single = spread{1, 1}
	outAx  = spread{2, 1}
	inAx   = spread{2, 0.5}
)

// up is the factor de-coalescing applies to q along this spread: c for parameters, the
// gradient's 1/(k c) for the first moment and its square for the second.
func (s spread) up(q quantity) float64 {
	switch q {
	case theta:
		return s.c
	case firstMoment:
		return 1 / (s.k * s.c)
	}
	return 1 / (s.k * s.c * s.k * s.c)
}

// down is the factor coalescing applies to each of the k fine sources: the mean of the inverted
// up maps (for parameters the paper's average of output pairs and sum of input pairs; for the
// first moment the transpose sum of c times each copy's).
func (s spread) down(q quantity) float64 { return 1 / (s.k * s.up(q)) }

// axisSpread is the spread of a width axis.
func axisSpread(a ops.Axis) spread {
	switch a.Role {
	case ops.RoleOut:
		return outAx
	case ops.RoleIn:
		return inAx
	}
	return single
}

// NewMaps builds the maps from the fine model fine to the model one level below it (halving
// width and/or depth) under v's rules: depth_pairing (which fine layers a coarse layer
// averages), embedding (how the tied embedding's scale is kept; docs/method.md §3) and
// depth_init (how a depth pair is de-coalesced; §9.7).
func NewMaps(fine config.Model, vocab int, width, depth bool, v *config.VCycle) (*Maps, error) {
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
		l := link{coarse: ci, tied: single}
		for _, layer := range fineLayers(p.Layer, fine.Layers, depth, v.DepthPairing) {
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
			l.tied = spread{1, 1 / ruleScale(p, v.Embedding)}
		}
		l.grow = growth(p, len(l.fine), v.DepthInit)
		l.identity, l.branch = len(l.fine) == 2 && v.DepthInit == "zero", p.Branch
		m.links = append(m.links, l)
	}
	return m, nil
}

// growth is the spread of each of the n fine copies of parameter p when de-coalescing under
// depth_init (n = 2 for a depth pair): "copy" gives both copies the whole value, "halve" halves
// a residual branch's output projection in both (the pair then adds up to the coarse layer to
// first order), "zero" keeps the first copy and zeroes the second's output projection (the
// second layer is then the identity, receives no gradient, and starts with zero moments).
func growth(p model.ParamSpec, n int, depthInit string) []spread {
	switch {
	case n == 1:
		return []spread{single}
	case depthInit == "zero":
		return []spread{single, single} // the second copy is handled by link.identity
	case depthInit == "halve" && p.Branch:
		return []spread{{2, 0.5}, {2, 0.5}}
	}
	return []spread{{2, 1}, {2, 1}}
}

// upFactor is the factor de-coalescing applies to q from the coarse element into fine copy j
// (beyond what the width axes apply).
func (l link) upFactor(q quantity, j int) float64 {
	if l.identity && j == 1 && (q != theta || l.branch) {
		return 0 // the identity layer: its branch output is zero; without gradient yet, its moments too
	}
	return l.tied.up(q) * l.grow[j].up(q)
}

// downFactor is the factor coalescing applies to q from each fine source (beyond the width
// axes). A V-cycle coalesces a level before it ever grows it, so a depth pair is read as two
// copies whatever depth_init says.
func (l link) downFactor(q quantity) float64 {
	return l.tied.down(q) * spread{float64(len(l.fine)), 1}.down(q)
}

// widthFactor is the factor the width axes apply to q, up or down.
func (l link) widthFactor(q quantity, up bool) float64 {
	f := 1.0
	for _, a := range []ops.Axis{l.rows, l.cols} {
		if up {
			f *= axisSpread(a).up(q)
		} else {
			f *= axisSpread(a).down(q)
		}
	}
	return f
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
