// Package vcycle implements the multi-level V-cycle of Zou, Zhang and Deng (ICLR 2024) as
// ../shared/method.md states it: coalescing a model into one of half the width and depth,
// de-coalescing it back, interpolating with the saved parameters of the level above, and the
// schedule that trains each level in turn. The maps run as GPU kernels over the parameter
// buffers (gpu.go); cpu.go is their float64 statement, which the tests compare against.
package vcycle

import (
	"fmt"

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
// method.md section 3).
func NewMaps(fine model.ModelConfig, vocab int, width, depth bool, pairing, rule string) (*Maps, error) {
	coarse, err := fine.Halved(width, depth)
	if err != nil {
		return nil, err
	}
	m := &Maps{Fine: fine.Params(vocab), Coarse: coarse.Params(vocab)}
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
		if l.rows, l.cols, err = axes(fine.Arch, p, coarse, width); err != nil {
			return nil, err
		}
		if width {
			l.scale = ruleScale(fine.Arch, p.Local, rule)
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

// axis kinds of the width map: the residual width d, the packed q|k|v (three blocks of d), the
// FFN width f, each as an output or an input of its layer.
type kind int

const (
	none kind = iota
	dOut
	dIn
	qkvOut
	fOut
	fIn
)

// widthKinds gives each parameter's (rows, cols) kinds by its name within its layer: GPT-2's
// Conv1D weights are stored in x out, BERT's Linear weights out x in; vectors are one row.
var widthKinds = map[string]map[string][2]kind{
	"gpt": {
		"wte.weight": {none, dOut}, "wpe.weight": {none, dOut},
		"ln_1.weight": {none, dOut}, "ln_1.bias": {none, dOut},
		"ln_2.weight": {none, dOut}, "ln_2.bias": {none, dOut},
		"ln_f.weight": {none, dOut}, "ln_f.bias": {none, dOut},
		"attn.c_attn.weight": {dIn, qkvOut}, "attn.c_attn.bias": {none, qkvOut},
		"attn.c_proj.weight": {dIn, dOut}, "attn.c_proj.bias": {none, dOut},
		"mlp.c_fc.weight": {dIn, fOut}, "mlp.c_fc.bias": {none, fOut},
		"mlp.c_proj.weight": {fIn, dOut}, "mlp.c_proj.bias": {none, dOut},
	},
	"bert": {
		"bert.embeddings.word_embeddings.weight":       {none, dOut},
		"bert.embeddings.position_embeddings.weight":   {none, dOut},
		"bert.embeddings.token_type_embeddings.weight": {none, dOut},
		"bert.embeddings.LayerNorm.weight":             {none, dOut}, "bert.embeddings.LayerNorm.bias": {none, dOut},
		"attention.self.query.weight": {dOut, dIn}, "attention.self.query.bias": {none, dOut},
		"attention.self.key.weight": {dOut, dIn}, "attention.self.key.bias": {none, dOut},
		"attention.self.value.weight": {dOut, dIn}, "attention.self.value.bias": {none, dOut},
		"attention.output.dense.weight": {dOut, dIn}, "attention.output.dense.bias": {none, dOut},
		"attention.output.LayerNorm.weight": {none, dOut}, "attention.output.LayerNorm.bias": {none, dOut},
		"intermediate.dense.weight": {fOut, dIn}, "intermediate.dense.bias": {none, fOut},
		"output.dense.weight": {dOut, fIn}, "output.dense.bias": {none, dOut},
		"output.LayerNorm.weight": {none, dOut}, "output.LayerNorm.bias": {none, dOut},
		"cls.predictions.transform.dense.weight": {dOut, dIn}, "cls.predictions.transform.dense.bias": {none, dOut},
		"cls.predictions.transform.LayerNorm.weight": {none, dOut},
		"cls.predictions.transform.LayerNorm.bias":   {none, dOut},
		"cls.predictions.bias":                       {none, none},
	},
}

// axes is the matrix view of coarse parameter p for the width map (all axes unmapped when
// width is not halved). Shapes are those of the coarse model.
func axes(arch string, p model.ParamSpec, coarse model.ModelConfig, width bool) (rows, cols ops.Axis, err error) {
	kinds, ok := widthKinds[arch][p.Local]
	if !ok {
		return rows, cols, fmt.Errorf("vcycle: no width map for %s parameter %s", arch, p.Name)
	}
	shape := p.Shape
	if len(shape) == 1 {
		shape = []int{1, shape[0]}
	}
	axis := func(k kind, n int) ops.Axis {
		if !width {
			k = none
		}
		switch k {
		case dOut, qkvOut, fOut:
			return ops.Axis{Role: ops.RoleOut, Groups: n / half(k, coarse), Half: half(k, coarse)}
		case dIn, fIn:
			return ops.Axis{Role: ops.RoleIn, Groups: n / half(k, coarse), Half: half(k, coarse)}
		}
		return ops.Axis{Role: ops.Unmapped, Groups: n, Half: 1}
	}
	rows, cols = axis(kinds[0], shape[0]), axis(kinds[1], shape[1])
	if rows.Small() != shape[0] || cols.Small() != shape[1] {
		return rows, cols, fmt.Errorf("vcycle: %s of shape %v does not fit its width map", p.Name, p.Shape)
	}
	return rows, cols, nil
}

// half is the size of a block of paired channels in the coarse model: big channel j pairs with
// j + half (so head h pairs with head h + H/2, FFN unit j with j + f/2).
func half(k kind, coarse model.ModelConfig) int {
	if k == fOut || k == fIn {
		return coarse.FFN
	}
	return coarse.Width
}

// ruleScale is the extra factor coalescing applies to a parameter (de-coalescing applies its
// inverse) so that width de-coalescing keeps the tied decoder's logits: under "exact" the
// LayerNorm feeding the decoder is doubled on coalescing, under "reference" the embeddings.
func ruleScale(arch, local, rule string) float64 {
	var scaled []string
	switch {
	case rule == "exact" && arch == "gpt":
		scaled = []string{"ln_f.weight", "ln_f.bias"}
	case rule == "exact":
		scaled = []string{"cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"}
	case arch == "gpt":
		scaled = []string{"wte.weight", "wpe.weight"}
	default:
		scaled = []string{"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
			"bert.embeddings.token_type_embeddings.weight"}
	}
	for _, s := range scaled {
		if s == local {
			return 2
		}
	}
	return 1
}
