package model

import (
	"strings"

	"github.com/vktrain/vktrain/vk"
)

// IgnoreIndex marks a target the loss does not count (BERT's unmasked positions).
const IgnoreIndex = 0xFFFFFFFF

// Init says how a parameter starts.
type Init int

// Parameter initialisations.
const (
	InitNormal       Init = iota // N(0, init_std²)
	InitNormalScaled             // N(0, (init_std/sqrt(2·layers))²): projections into the residual stream (GPT-2)
	InitZeros
	InitOnes
)

// ParamSpec is one parameter tensor: its Hugging Face name, shape, initialisation, whether AdamW
// decays it, and the layer it belongs to (-1 outside the blocks) with its name inside the layer
// (Local), which the V-cycle's maps use.
type ParamSpec struct {
	Name  string
	Local string // the name without the layer prefix ("ln_1.weight"); Name outside the blocks
	Shape []int
	Init  Init
	Decay bool
	Layer int
}

// Size is the number of elements.
func (p ParamSpec) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Params lists every parameter of the model in a fixed order, named as Hugging Face's GPT-2
// (GPT2Model, Conv1D weights stored in x out) and BERT (BertForMaskedLM, Linear weights stored
// out x in) name them, so exported checkpoints load there. vocab is the token-table size.
func (m ModelConfig) Params(vocab int) []ParamSpec {
	ps, prefix := m.gptParams(vocab), gptLayer
	if m.Arch == "bert" {
		ps, prefix = m.bertParams(vocab), bertLayer
	}
	for i, p := range ps {
		ps[i].Local = p.Name
		if p.Layer >= 0 {
			ps[i].Local = strings.TrimPrefix(p.Name, prefix(p.Layer))
		}
	}
	return ps
}

// ParamTensor is the GPU tensor of parameter i (Specs[i]); it may hold padding past the spec's
// size.
func (n *Net) ParamTensor(i int) *vk.Tensor { return n.params[i] }

func (m ModelConfig) gptParams(vocab int) []ParamSpec {
	d, f := m.Width, m.FFN
	ps := []ParamSpec{
		{Name: "wte.weight", Shape: []int{vocab, d}, Init: InitNormal, Decay: true, Layer: -1},
		{Name: "wpe.weight", Shape: []int{m.Context, d}, Init: InitNormal, Decay: true, Layer: -1},
	}
	for i := 0; i < m.Layers; i++ {
		p := gptLayer(i)
		ps = append(ps,
			ParamSpec{Name: p + "ln_1.weight", Shape: []int{d}, Init: InitOnes, Layer: i},
			ParamSpec{Name: p + "ln_1.bias", Shape: []int{d}, Init: InitZeros, Layer: i},
			ParamSpec{Name: p + "attn.c_attn.weight", Shape: []int{d, 3 * d}, Init: InitNormal, Decay: true, Layer: i},
			ParamSpec{Name: p + "attn.c_attn.bias", Shape: []int{3 * d}, Init: InitZeros, Layer: i},
			ParamSpec{Name: p + "attn.c_proj.weight", Shape: []int{d, d}, Init: InitNormalScaled, Decay: true, Layer: i},
			ParamSpec{Name: p + "attn.c_proj.bias", Shape: []int{d}, Init: InitZeros, Layer: i},
			ParamSpec{Name: p + "ln_2.weight", Shape: []int{d}, Init: InitOnes, Layer: i},
			ParamSpec{Name: p + "ln_2.bias", Shape: []int{d}, Init: InitZeros, Layer: i},
			ParamSpec{Name: p + "mlp.c_fc.weight", Shape: []int{d, f}, Init: InitNormal, Decay: true, Layer: i},
			ParamSpec{Name: p + "mlp.c_fc.bias", Shape: []int{f}, Init: InitZeros, Layer: i},
			ParamSpec{Name: p + "mlp.c_proj.weight", Shape: []int{f, d}, Init: InitNormalScaled, Decay: true, Layer: i},
			ParamSpec{Name: p + "mlp.c_proj.bias", Shape: []int{d}, Init: InitZeros, Layer: i},
		)
	}
	return append(ps,
		ParamSpec{Name: "ln_f.weight", Shape: []int{d}, Init: InitOnes, Layer: -1},
		ParamSpec{Name: "ln_f.bias", Shape: []int{d}, Init: InitZeros, Layer: -1},
	)
}

func (m ModelConfig) bertParams(vocab int) []ParamSpec {
	d, f := m.Width, m.FFN
	e := "bert.embeddings."
	ps := []ParamSpec{
		{Name: e + "word_embeddings.weight", Shape: []int{vocab, d}, Init: InitNormal, Decay: true, Layer: -1},
		{Name: e + "position_embeddings.weight", Shape: []int{m.Context, d}, Init: InitNormal, Decay: true, Layer: -1},
		{Name: e + "token_type_embeddings.weight", Shape: []int{m.TypeVocab, d}, Init: InitNormal, Decay: true, Layer: -1},
		{Name: e + "LayerNorm.weight", Shape: []int{d}, Init: InitOnes, Layer: -1},
		{Name: e + "LayerNorm.bias", Shape: []int{d}, Init: InitZeros, Layer: -1},
	}
	linear := func(name string, out, in, layer int) []ParamSpec {
		return []ParamSpec{
			{Name: name + ".weight", Shape: []int{out, in}, Init: InitNormal, Decay: true, Layer: layer},
			{Name: name + ".bias", Shape: []int{out}, Init: InitZeros, Layer: layer},
		}
	}
	layerNorm := func(name string, layer int) []ParamSpec {
		return []ParamSpec{
			{Name: name + ".weight", Shape: []int{d}, Init: InitOnes, Layer: layer},
			{Name: name + ".bias", Shape: []int{d}, Init: InitZeros, Layer: layer},
		}
	}
	for i := 0; i < m.Layers; i++ {
		p := bertLayer(i)
		ps = append(ps, linear(p+"attention.self.query", d, d, i)...)
		ps = append(ps, linear(p+"attention.self.key", d, d, i)...)
		ps = append(ps, linear(p+"attention.self.value", d, d, i)...)
		ps = append(ps, linear(p+"attention.output.dense", d, d, i)...)
		ps = append(ps, layerNorm(p+"attention.output.LayerNorm", i)...)
		ps = append(ps, linear(p+"intermediate.dense", f, d, i)...)
		ps = append(ps, linear(p+"output.dense", d, f, i)...)
		ps = append(ps, layerNorm(p+"output.LayerNorm", i)...)
	}
	ps = append(ps, linear("cls.predictions.transform.dense", d, d, -1)...)
	ps = append(ps, layerNorm("cls.predictions.transform.LayerNorm", -1)...)
	return append(ps, ParamSpec{Name: "cls.predictions.bias", Shape: []int{vocab}, Init: InitZeros, Layer: -1})
}

// CountParams is the number of parameters (the tied output embedding counted once).
func CountParams(specs []ParamSpec) int {
	n := 0
	for _, p := range specs {
		n += p.Size()
	}
	return n
}
