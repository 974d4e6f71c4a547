package model

import (
	"fmt"
	"strings"

	"github.com/vktrain/vktrain/config"
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

// WidthRole says what one axis of a parameter's matrix view (Shape, a vector as one row) runs
// over, which is how halving the model's width maps it (docs/method.md §1).
type WidthRole int

// Width roles.
const (
	Fixed       WidthRole = iota // not halved: a vocabulary, positions, token types, a vector's one row
	ResidualOut                  // a layer's outputs over the residual width d (q|k|v packed: three blocks of d)
	ResidualIn                   // a layer's inputs over d
	FFNOut                       // outputs over the MLP width f
	FFNIn                        // inputs over f
)

// TiedRole marks the parameters that keep the tied output embedding's logits when the width is
// de-coalesced (docs/method.md §3): the "exact" rule rescales the LayerNorm feeding the tied
// decoder, the "reference" rule the input embeddings.
type TiedRole int

// Tied roles.
const (
	Untied    TiedRole = iota
	Embedding          // an input embedding table (tokens, positions, token types)
	HeadNorm           // the LayerNorm whose output the tied decoder reads
)

// ParamSpec is one parameter tensor: its Hugging Face name, shape, initialisation, whether AdamW
// decays it, the layer it belongs to (-1 outside the blocks) with its name inside the layer
// (Local), and the roles that say how the V-cycle's maps treat it.
type ParamSpec struct {
	Name       string
	Local      string // the name without the layer prefix ("ln_1.weight"); Name outside the blocks
	Shape      []int
	Init       Init
	Decay      bool
	Layer      int
	Rows, Cols WidthRole // the axes of the matrix view: Shape, or 1 x n for a vector
	Tied       TiedRole
	Branch     bool // a residual branch's output projection (weight or bias), which depth growth may scale (docs/method.md §9.7)
	// HFShape is the shape a checkpoint stores when Hugging Face's differs from the matrix view
	// (ViT's class token (1, 1, d), its patch embedding as a convolution (d, 1, P, P)).
	HFShape []int
}

// FileShape is the shape a checkpoint stores: HFShape, else Shape.
func (p ParamSpec) FileShape() []int {
	if p.HFShape != nil {
		return p.HFShape
	}
	return p.Shape
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
// (GPT2Model, Conv1D weights stored in x out), BERT (BertForMaskedLM, Linear weights stored
// out x in) and ViT (ViTForImageClassification) name them, so exported checkpoints load there.
// vocab is the token-table size (a ViT's classes).
func Params(m config.Model, vocab int) []ParamSpec {
	ps, prefix := gptParams(m, vocab), GPTLayer
	switch m.Arch {
	case "bert":
		ps, prefix = bertParams(m, vocab), BERTLayer
	case "vit":
		ps, prefix = vitParams(m, vocab), ViTLayer
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

// MomentTensors are AdamW's first and second moment tensors of parameter i, shaped as
// ParamTensor(i).
func (n *Net) MomentTensors(i int) (m, v *vk.Tensor) { return n.m[i], n.v[i] }

// The parameters of each architecture are built from three kinds of tensor: a linear layer's
// weight and bias, a LayerNorm's weight and bias, and an embedding table.

// linearParams is a linear layer's weight and bias between in and out (each a width role with
// its size). GPT-2's Conv1D stores the weight in x out, nn.Linear (outIn) out x in.
func linearParams(name string, in, out WidthRole, nIn, nOut, layer int, init Init, outIn bool) []ParamSpec {
	w := ParamSpec{Name: name + ".weight", Shape: []int{nIn, nOut}, Rows: in, Cols: out, Init: init, Decay: true, Layer: layer}
	if outIn {
		w.Shape, w.Rows, w.Cols = []int{nOut, nIn}, out, in
	}
	return []ParamSpec{w, {Name: name + ".bias", Shape: []int{nOut}, Cols: out, Init: InitZeros, Layer: layer}}
}

// branch marks a linear layer as a residual branch's output projection.
func branch(ps []ParamSpec) []ParamSpec {
	for i := range ps {
		ps[i].Branch = true
	}
	return ps
}

// layerNormParams is a LayerNorm over the residual width d.
func layerNormParams(name string, d, layer int, tied TiedRole) []ParamSpec {
	return []ParamSpec{
		{Name: name + ".weight", Shape: []int{d}, Cols: ResidualOut, Init: InitOnes, Layer: layer, Tied: tied},
		{Name: name + ".bias", Shape: []int{d}, Cols: ResidualOut, Init: InitZeros, Layer: layer, Tied: tied},
	}
}

// embeddingParams is an embedding table of rows vectors of width d.
func embeddingParams(name string, rows, d int) ParamSpec {
	return ParamSpec{Name: name, Shape: []int{rows, d}, Cols: ResidualOut, Init: InitNormal, Decay: true, Layer: -1, Tied: Embedding}
}

func gptParams(m config.Model, vocab int) []ParamSpec {
	d, f := m.Width, m.FFN
	ps := []ParamSpec{embeddingParams("wte.weight", vocab, d), embeddingParams("wpe.weight", m.Context, d)}
	for i := 0; i < m.Layers; i++ {
		p := GPTLayer(i)
		ps = append(ps, layerNormParams(p+"ln_1", d, i, Untied)...)
		ps = append(ps, linearParams(p+"attn.c_attn", ResidualIn, ResidualOut, d, 3*d, i, InitNormal, false)...)
		ps = append(ps, branch(linearParams(p+"attn.c_proj", ResidualIn, ResidualOut, d, d, i, InitNormalScaled, false))...)
		ps = append(ps, layerNormParams(p+"ln_2", d, i, Untied)...)
		ps = append(ps, linearParams(p+"mlp.c_fc", ResidualIn, FFNOut, d, f, i, InitNormal, false)...)
		ps = append(ps, branch(linearParams(p+"mlp.c_proj", FFNIn, ResidualOut, f, d, i, InitNormalScaled, false))...)
	}
	return append(ps, layerNormParams("ln_f", d, -1, HeadNorm)...)
}

func bertParams(m config.Model, vocab int) []ParamSpec {
	d, f := m.Width, m.FFN
	e := "bert.embeddings."
	ps := []ParamSpec{embeddingParams(e+"word_embeddings.weight", vocab, d), embeddingParams(e+"position_embeddings.weight", m.Context, d),
		embeddingParams(e+"token_type_embeddings.weight", m.TypeVocab, d)}
	ps = append(ps, layerNormParams(e+"LayerNorm", d, -1, Untied)...)
	dense := func(name string, in, out WidthRole, nIn, nOut, layer int) []ParamSpec {
		return linearParams(name, in, out, nIn, nOut, layer, InitNormal, true)
	}
	for i := 0; i < m.Layers; i++ {
		p := BERTLayer(i)
		for _, qkv := range []string{"query", "key", "value"} {
			ps = append(ps, dense(p+"attention.self."+qkv, ResidualIn, ResidualOut, d, d, i)...)
		}
		ps = append(ps, branch(dense(p+"attention.output.dense", ResidualIn, ResidualOut, d, d, i))...)
		ps = append(ps, layerNormParams(p+"attention.output.LayerNorm", d, i, Untied)...)
		ps = append(ps, dense(p+"intermediate.dense", ResidualIn, FFNOut, d, f, i)...)
		ps = append(ps, branch(dense(p+"output.dense", FFNIn, ResidualOut, f, d, i))...)
		ps = append(ps, layerNormParams(p+"output.LayerNorm", d, i, Untied)...)
	}
	ps = append(ps, dense("cls.predictions.transform.dense", ResidualIn, ResidualOut, d, d, -1)...)
	ps = append(ps, layerNormParams("cls.predictions.transform.LayerNorm", d, -1, HeadNorm)...)
	return append(ps, ParamSpec{Name: BERTDecoderBias, Shape: []int{vocab}, Init: InitZeros, Layer: -1})
}

// vitParams are ViTForImageClassification's: the patch embedding (a convolution with a P x P
// kernel and stride, a linear map from a patch's pixels), the class token and the position
// embeddings, pre-LN layers, the final LayerNorm and the classifier on the class token. The
// classifier is not tied to an input, so width de-coalescing keeps its logits without a rescale
// (docs/method.md §3): nothing has the HeadNorm role.
func vitParams(m config.Model, classes int) []ParamSpec {
	d, f, pp := m.Width, m.FFN, m.Patch*m.Patch
	patch := linearParams(vitPatch, Fixed, ResidualOut, pp, d, -1, InitNormal, true)
	patch[0].HFShape = []int{d, 1, m.Patch, m.Patch}
	cls := embeddingParams(vitCLS, 1, d) // neither decayed, as in DeiT
	cls.HFShape, cls.Decay = []int{1, 1, d}, false
	pos := embeddingParams(vitPositions, m.Context, d)
	pos.HFShape, pos.Decay = []int{1, m.Context, d}, false
	ps := []ParamSpec{cls, pos}
	for _, p := range patch {
		p.Layer, p.Tied = -1, Embedding // the reference rule scales every input embedding
		ps = append(ps, p)
	}
	dense := func(name string, in, out WidthRole, nIn, nOut, layer int) []ParamSpec {
		return linearParams(name, in, out, nIn, nOut, layer, InitNormal, true)
	}
	for i := 0; i < m.Layers; i++ {
		p := ViTLayer(i)
		ps = append(ps, layerNormParams(p+"layernorm_before", d, i, Untied)...)
		for _, qkv := range []string{"query", "key", "value"} {
			ps = append(ps, dense(p+"attention.attention."+qkv, ResidualIn, ResidualOut, d, d, i)...)
		}
		ps = append(ps, branch(dense(p+"attention.output.dense", ResidualIn, ResidualOut, d, d, i))...)
		ps = append(ps, layerNormParams(p+"layernorm_after", d, i, Untied)...)
		ps = append(ps, dense(p+"intermediate.dense", ResidualIn, FFNOut, d, f, i)...)
		ps = append(ps, branch(dense(p+"output.dense", FFNIn, ResidualOut, f, d, i))...)
	}
	ps = append(ps, layerNormParams(vitFinalNorm, d, -1, Untied)...)
	return append(ps, dense(vitClassifier, ResidualIn, Fixed, d, classes, -1)...)
}

// GPTLayer is the parameter-name prefix of GPT-2 block l.
func GPTLayer(l int) string { return fmt.Sprintf("h.%d.", l) }

// ViTLayer is the parameter-name prefix of ViT encoder layer l.
func ViTLayer(l int) string { return fmt.Sprintf("vit.encoder.layer.%d.", l) }

// BERTLayer is the parameter-name prefix of BERT encoder layer l.
func BERTLayer(l int) string { return fmt.Sprintf("bert.encoder.layer.%d.", l) }

// CountParams is the number of parameters (the tied output embedding counted once).
func CountParams(specs []ParamSpec) int {
	n := 0
	for _, p := range specs {
		n += p.Size()
	}
	return n
}

// TrainingFLOPsPerToken estimates one training step's FLOPs per token of model m on sequences
// of t tokens: 6 per weight of every matrix product (the token table counted once, as the tied
// decoder's product; forward 2, backward 4) and 12·t·d per layer for attention's two products.
// The V-cycle's FLOPs-based schedule uses it to weigh the levels' steps (docs/method.md §9.9).
func TrainingFLOPsPerToken(m config.Model, vocab, t int) float64 {
	n := 0
	for _, p := range Params(m, vocab) {
		if len(p.Shape) == 2 && (p.Layer >= 0 || p.Tied != Embedding || p.Shape[0] == vocab) {
			n += p.Size()
		}
	}
	return 6*float64(n) + 12*float64(m.Layers*t*m.Width)
}
