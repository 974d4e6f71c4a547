package shaders

import "reflect"

// The contract between the Go host and the shaders: for every shader, one struct type for its
// push-constant block and one for its specialization constants. vk.Context.Kernel takes the spec
// struct and vk.Sequence.Dispatch the push struct of the kernel's shader, each checked against
// Contracts; tools/shaderbuild (make check-shaders) checks every type against the compiled SPIR-V
// and the member and constant names of the GLSL source.
//
// Push structs: the members of `layout(push_constant) uniform Push {...}` in order, one Go field
// per member, each a 4-byte scalar (uint32 for uint, int32 for int, float32 for float), so that
// the Go field offsets are the std430 offsets; the Go name is the GLSL name, capitalised (case
// and underscores aside they must be equal). Dispatch encodes the fields little-endian in order.
//
// Spec structs: every field carries the tag `spec:"ID"`, ID being its constant_id; the field
// order does not matter, Kernel orders the constants by id. uint32 stands for uint and for bool
// (VkBool32: 0 or 1), int32 for int, float32 for float. Every spec struct embeds Workgroup
// (ids 0, 1, 2); a shader with no other constant takes Workgroup itself. The Go name is the
// GLSL name without underscores (SLOT_BETA1: SlotBeta1).
//
// glslc drops the specialization constants a shader does not use from its SPIR-V. A field whose
// constant some shader of its type does not use is tagged `spec:"ID,optional"`: the check then
// accepts that constant missing from that shader's SPIR-V, and fails when no shader of the type
// lacks it (the mark must stay necessary). Kernel still passes the value: a map entry for an id
// the shader does not declare has no effect, and kernels keep their names and cache keys.

// Contract is one shader's pair of types; Push is nil for a shader without push constants.
type Contract struct {
	Push, Spec reflect.Type
}

// Workgroup is the workgroup size, specialization constants 0, 1 and 2 of every shader
// (common.glsl: layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;).
type Workgroup struct {
	X uint32 `spec:"0"`
	Y uint32 `spec:"1"`
	Z uint32 `spec:"2"`
}

// Contracts lists every shader (NAME of NAME.comp) with its push-constant and spec types.
var Contracts = map[string]Contract{
	"adamw":                 {reflect.TypeFor[AdamWPush](), reflect.TypeFor[AdamWSpec]()},
	"add":                   {reflect.TypeFor[CountPush](), reflect.TypeFor[Workgroup]()},
	"add_bias":              {reflect.TypeFor[RowsColsPush](), reflect.TypeFor[Workgroup]()},
	"add_bias_grad":         {reflect.TypeFor[RowsColsPush](), reflect.TypeFor[Workgroup]()},
	"attention_bwd_kv":      {reflect.TypeFor[AttentionPush](), reflect.TypeFor[AttentionSpec]()},
	"attention_bwd_q":       {reflect.TypeFor[AttentionPush](), reflect.TypeFor[AttentionSpec]()},
	"attention_bwd_rowdot":  {reflect.TypeFor[AttentionPush](), reflect.TypeFor[AttentionRowdotSpec]()},
	"attention_fwd":         {reflect.TypeFor[AttentionPush](), reflect.TypeFor[AttentionSpec]()},
	"attention_probs":       {reflect.TypeFor[AttentionPush](), reflect.TypeFor[AttentionSpec]()},
	"axpy":                  {reflect.TypeFor[AxpyPush](), reflect.TypeFor[Workgroup]()},
	"crossentropy":          {reflect.TypeFor[CrossEntropyPush](), reflect.TypeFor[CrossEntropySpec]()},
	"dropout":               {reflect.TypeFor[DropoutPush](), reflect.TypeFor[Workgroup]()},
	"embedding":             {reflect.TypeFor[EmbeddingPush](), reflect.TypeFor[Workgroup]()},
	"embedding_backward":    {reflect.TypeFor[EmbeddingBackwardPush](), reflect.TypeFor[Workgroup]()},
	"gelu":                  {reflect.TypeFor[CountPush](), reflect.TypeFor[Workgroup]()},
	"gelu_backward":         {reflect.TypeFor[GeluBackwardPush](), reflect.TypeFor[Workgroup]()},
	"layernorm":             {reflect.TypeFor[LayerNormPush](), reflect.TypeFor[Workgroup]()},
	"layernorm_backward":    {reflect.TypeFor[LayerNormBackwardPush](), reflect.TypeFor[Workgroup]()},
	"layernorm_params_grad": {reflect.TypeFor[RowsColsPush](), reflect.TypeFor[Workgroup]()},
	"matmul":                {reflect.TypeFor[MatmulPush](), reflect.TypeFor[MatmulSpec]()},
	"matmul_tiled":          {reflect.TypeFor[MatmulTiledPush](), reflect.TypeFor[MatmulTiledSpec]()},
	"reduce":                {reflect.TypeFor[ReducePush](), reflect.TypeFor[ReduceSpec]()},
	"reduce_clip":           {reflect.TypeFor[ReduceClipPush](), reflect.TypeFor[ReduceClipSpec]()},
	"remap":                 {reflect.TypeFor[RemapPush](), reflect.TypeFor[Workgroup]()},
}

// AdamWPush is adamw.comp's push-constant block.
type AdamWPush struct {
	N     uint32 // parameters
	Decay uint32 // nonzero: apply the decoupled weight decay
}

// AdamWSpec is adamw.comp's specialization constants: the slots of the step-parameters tensor
// (ops.StepParams), the vec4 blocks per invocation and the texel-view switch.
type AdamWSpec struct {
	Workgroup
	SlotBeta1         uint32 `spec:"3"`
	SlotOneMinusBeta1 uint32 `spec:"4"`
	SlotBeta2         uint32 `spec:"5"`
	SlotOneMinusBeta2 uint32 `spec:"6"`
	SlotEps           uint32 `spec:"7"`
	SlotDecayFactor   uint32 `spec:"8"`
	SlotStepSize      uint32 `spec:"9"`
	SlotInvBias2Sqrt  uint32 `spec:"10"`
	SlotClipScale     uint32 `spec:"11"`
	Per               uint32 `spec:"12"` // vec4 blocks per invocation
	Texels            uint32 `spec:"13"` // 1: p, g, m and v read through texel views
}

// CountPush is the push-constant block of add.comp and gelu.comp: the element count.
type CountPush struct {
	N uint32
}

// RowsColsPush is the push-constant block of add_bias.comp, add_bias_grad.comp and
// layernorm_params_grad.comp: a row-major rows x cols matrix.
type RowsColsPush struct {
	Rows, Cols uint32
}

// AttentionPush is the push-constant block of the attention shaders (attention.glsl):
// attention_fwd, attention_probs, attention_bwd_rowdot, attention_bwd_kv and attention_bwd_q.
type AttentionPush struct {
	B, T, H uint32  // batch entries, tokens per entry, heads
	Scale   float32 // 1/sqrt(DH)
}

// AttentionSpec is the specialization constants of attention_fwd, attention_probs,
// attention_bwd_kv and attention_bwd_q (attention.glsl). attention_probs does not use CH.
type AttentionSpec struct {
	Workgroup
	DH       uint32 `spec:"3"`          // head size
	Causal   uint32 `spec:"4"`          // bool
	KeyValid uint32 `spec:"5"`          // bool
	CH       uint32 `spec:"6,optional"` // lanes loading a row together
	RQ       uint32 `spec:"7"`          // rows per invocation
}

// AttentionRowdotSpec is attention_bwd_rowdot.comp's specialization constants: AttentionSpec's
// (attention.glsl declares them all), of which it uses the head size only. The host passes the
// same values as to the other attention kernels (convert an AttentionSpec to it).
type AttentionRowdotSpec struct {
	Workgroup
	DH       uint32 `spec:"3"`
	Causal   uint32 `spec:"4,optional"`
	KeyValid uint32 `spec:"5,optional"`
	CH       uint32 `spec:"6,optional"`
	RQ       uint32 `spec:"7,optional"`
}

// AxpyPush is axpy.comp's push-constant block.
type AxpyPush struct {
	N           uint32
	Alpha, Beta float32
}

// CrossEntropyPush is crossentropy.comp's push-constant block.
type CrossEntropyPush struct {
	Rows, Vocab uint32
	IgnoreIndex uint32
	Stride      uint32  // elements between rows of the logits
	Smoothing   float32 // label smoothing e in [0, 1); 0 is the plain cross-entropy
}

// CrossEntropySpec is crossentropy.comp's specialization constants.
type CrossEntropySpec struct {
	Workgroup
	Backward      uint32 `spec:"3"`
	SlotLossScale uint32 `spec:"4"` // slot of the step-parameters tensor
	Vec           uint32 `spec:"5"` // 1: vec4 access
	Losses        uint32 `spec:"6"` // backward: also write the losses
}

// DropoutPush is dropout.comp's push-constant block.
type DropoutPush struct {
	N          uint32
	Threshold  uint32  // drop when the random word is below it
	Scale      float32 // applied to the kept elements
	Accumulate uint32
}

// EmbeddingPush is embedding.comp's push-constant block.
type EmbeddingPush struct {
	Tokens, Dim, Vocab uint32
	Accumulate         uint32
	First              uint32 // the table's first row (a chunk of a row-chunked table)
}

// EmbeddingBackwardPush is embedding_backward.comp's push-constant block.
type EmbeddingBackwardPush struct {
	Tokens, Dim, Vocab uint32
	First              uint32 // the table's first row (a chunk of a row-chunked table)
}

// GeluBackwardPush is gelu_backward.comp's push-constant block.
type GeluBackwardPush struct {
	N          uint32
	Accumulate uint32
}

// LayerNormPush is layernorm.comp's push-constant block.
type LayerNormPush struct {
	Rows, Cols uint32
	Eps        float32
}

// LayerNormBackwardPush is layernorm_backward.comp's push-constant block.
type LayerNormBackwardPush struct {
	Rows, Cols uint32
	Accumulate uint32
}

// MatmulPush is matmul.comp's push-constant block. matmul_tiled.comp's lacks RowsFast
// (MatmulTiledPush).
type MatmulPush struct {
	M, N, K                   uint32
	Lda, Ldb, Ldc             uint32 // stored row strides, elements
	OffA, OffB, OffC, OffBias uint32 // element offsets of matrix 0 and of the bias
	StrideA, StrideB, StrideC uint32 // elements between batch entries
	Alpha, Beta               float32
	HasBias                   uint32
	RowsFast                  uint32 // 1: workgroup x walks the row blocks, y the column blocks
}

// MatmulSpec is matmul.comp's specialization constants.
type MatmulSpec struct {
	Workgroup
	TM     uint32 `spec:"3"` // rows of C per group of SG lanes
	TN     uint32 `spec:"4"` // columns of C per invocation
	TransA uint32 `spec:"5"`
	TransB uint32 `spec:"6"`
	SG     uint32 `spec:"7"` // lanes sharing rows
	Vec    uint32 `spec:"8"` // 1: vec4 memory access
	Texels uint32 `spec:"9"` // 1: A and B through texel views
}

// MatmulTiledPush is matmul_tiled.comp's push-constant block: MatmulPush without RowsFast.
type MatmulTiledPush struct {
	M, N, K                   uint32
	Lda, Ldb, Ldc             uint32
	OffA, OffB, OffC, OffBias uint32
	StrideA, StrideB, StrideC uint32
	Alpha, Beta               float32
	HasBias                   uint32
}

// MatmulTiledSpec is matmul_tiled.comp's specialization constants.
type MatmulTiledSpec struct {
	Workgroup
	TM     uint32 `spec:"3"`
	TN     uint32 `spec:"4"`
	TransA uint32 `spec:"5"`
	TransB uint32 `spec:"6"`
	BK     uint32 `spec:"7"`
}

// ReducePush is reduce.comp's push-constant block.
type ReducePush struct {
	N      uint32 // elements to sum
	InOff  uint32 // first element of x
	OutOff uint32 // first partial written
}

// ReduceSpec is reduce.comp's specialization constants.
type ReduceSpec struct {
	Workgroup
	Per    uint32 `spec:"3"` // elements each invocation sums
	Square uint32 `spec:"4"`
	Texels uint32 `spec:"5"` // 1: x read through a texel view, vec4 blocks per lane
}

// ReduceClipPush is reduce_clip.comp's push-constant block.
type ReduceClipPush struct {
	N       uint32 // partial sums of squares to add
	Off     uint32 // the first one
	MaxNorm float32
}

// ReduceClipSpec is reduce_clip.comp's specialization constants.
type ReduceClipSpec struct {
	Workgroup
	SlotClipScale uint32 `spec:"3"`
	SlotGradNorm  uint32 `spec:"4"`
}

// RemapPush is remap.comp's push-constant block.
type RemapPush struct {
	Rows, Cols       uint32 // destination
	SrcCols          uint32
	RowRole, RowHalf uint32
	ColRole, ColHalf uint32
	Decoalesce       uint32
	Beta, Scale      float32
	Split            float32 // standard deviation of the antisymmetric split (0: none)
	Seed, Stream     uint32
	SrcOff, DstOff   uint32 // a band of rows of a row-chunked parameter: its first elements
	SrcFirst         uint32 // the band's first source element in the whole source
}
