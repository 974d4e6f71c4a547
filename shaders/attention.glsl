// attention.glsl: what the attention*.comp kernels share (include it after common.glsl and the
// shader's own bindings; it carries no #version).
//
// Layout (vk/ops/attention.go): the QKV projection packs q, k and v of token (b, t) in one row of
// qkv, shape (B, T, 3, H, DH): q of head h at qkvRow(b, t) + h*DH, k at + d, v at + 2d, with
// d = H*DH. The output o (and dO) is (B, T, H, DH), the per-row log-sum-exp (B, H, T). Scores are
// q.k / sqrt(DH); a key is masked when it lies after the query (CAUSAL) or is padding
// (KEY_VALID: keyValid[b*T + j] == 0). A query row whose keys are all masked has o = 0, lse = 0.
//
// Masking and the head size are specialization constants, so the hot loops carry no branches
// on them (on lavapipe every branch is a lane mask).
//
// The rows of a workgroup share (b, h) and loop over the other side's rows in the same order, so
// each step reads one row (k, v, q or dO) that every lane needs. Lavapipe turns any load whose
// address depends on a loop variable into a per-lane gather, so instead CH lanes load a row
// together, one element each (loadRow), and every lane takes the element it needs from its owner
// with a subgroup shuffle (rowElement): DH/CH loads per row instead of DH. CH must not exceed
// the subgroup size; the host passes min(subgroup size, 8).
//
// A shader that reads the padding mask defines KEY_VALID_BINDING (its binding) before the
// include; keyAllowed then consults it.

#ifndef VKTRAIN_ATTENTION_GLSL
#define VKTRAIN_ATTENTION_GLSL

#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(constant_id = 3) const uint DH = 64;          // head size, 1..64 (registers per row)
layout(constant_id = 4) const bool CAUSAL = false;   // query i sees keys j <= i only
layout(constant_id = 5) const bool KEY_VALID = false; // keyValid is bound and masks padded keys
layout(constant_id = 6) const uint CH = 8;            // lanes loading a row together, <= subgroup size
layout(constant_id = 7) const uint RQ = 1;            // rows per invocation
const uint NCH = (DH + CH - 1u) / CH;                 // chunks of CH elements in a row

// loadRow fills dst[0..NCH) with this lane's share of the DH elements of buf at off: chunk n
// holds element n*CH + (lane % CH) (clamped to the row). Every lane of the subgroup must run it.
#define loadRow(dst, buf, off) \
	[[unroll]] for (uint n_ = 0; n_ < NCH; n_++) { \
		dst[n_] = buf[(off) + min(n_ * CH + gl_SubgroupInvocationID % CH, DH - 1u)]; \
	}

// rowElement is element c (a constant once loops are unrolled) of a row read with loadRow.
#define rowElement(chunks, c) subgroupShuffle(chunks[(c) / CH], (c) % CH)

layout(push_constant) uniform Push {
	uint B;      // batch entries
	uint T;      // tokens per entry
	uint H;      // heads
	float scale; // 1/sqrt(DH)
} p;

// LOWEST stands for "no score yet": finite, so that exp(LOWEST - m) is 0 or 1, never NaN.
const float LOWEST = -3.402823466e38;

// qOffset, kOffset and vOffset are the first elements of q, k and v of token t, head h.
uint qOffset(uint b, uint t, uint h) {
	return (b * p.T + t) * 3u * p.H * DH + h * DH;
}
uint kOffset(uint b, uint t, uint h) {
	return qOffset(b, t, h) + p.H * DH;
}
uint vOffset(uint b, uint t, uint h) {
	return qOffset(b, t, h) + 2u * p.H * DH;
}

// outOffset is the first element of o (or dO) of token t, head h.
uint outOffset(uint b, uint t, uint h) {
	return ((b * p.T + t) * p.H + h) * DH;
}

// lseIndex is the log-sum-exp entry of query row t of head h.
uint lseIndex(uint b, uint t, uint h) {
	return (b * p.H + h) * p.T + t;
}

// causalAllows reports whether the causal mask lets query i see key j.
bool causalAllows(uint i, uint j) {
	return !CAUSAL || j <= i;
}

#ifdef KEY_VALID_BINDING
layout(std430, binding = KEY_VALID_BINDING) readonly buffer KeyValidBuf { uint keyValid[]; };

// keyReal reports whether key j (< T) of batch entry b is a real token, not padding.
bool keyReal(uint b, uint j) {
	return !KEY_VALID || keyValid[b * p.T + j] != 0u;
}

// keyAllowed reports whether query i of batch entry b attends to key j (< T).
bool keyAllowed(uint b, uint i, uint j) {
	const bool real = keyReal(b, j); // evaluated first: no short-circuit branch around the load
	return causalAllows(i, j) && real;
}
#endif

// The row kernels give each invocation RQ consecutive query (or key) rows, over a grid of
// (ceil(T / (RQ*wg_x)), H, B) workgroups so that a workgroup's rows share b and h: workgroup x
// covers rows firstRow() .. firstRow() + RQ*wg_x - 1 and invocation x owns ownRow(0 .. RQ-1).
// Causal loops run to (or from) the subgroup's last (first) row: the bound stays uniform across
// the subgroup, as loadRow needs, and wastes at most a subgroup's rows.
uint rowBatch() {
	return gl_WorkGroupID.z;
}
uint rowHead() {
	return gl_WorkGroupID.y;
}
uint firstRow() {
	return gl_WorkGroupID.x * gl_WorkGroupSize.x * RQ;
}
uint ownRow(uint r) {
	return firstRow() + gl_LocalInvocationID.x * RQ + r;
}

#endif
