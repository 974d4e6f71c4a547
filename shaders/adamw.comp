#version 450
// adamw: one AdamW step (torch.optim.AdamW) on n parameters, in vec4 blocks (lavapipe pays per
// load instruction, not per float), the last block maybe partial. Workgroup g updates the WG*PER
// blocks from g*WG*PER, its invocation l those at g*WG*PER + k*WG + l for k < PER (several per
// invocation amortise the per-invocation cost on lavapipe; adjacent lanes touch adjacent
// blocks); 1-D grid over the workgroups (see common.glsl). Everything that changes from step
// to step comes from the step-parameters tensor (vk/ops.StepParams), whose slots the host passes
// as constants 3..11, so a recorded sequence can be replayed every step:
//   g = grad * clip
//   p = p * decayFactor                        (decayFactor = 1 - lr*wd; only if p.decay != 0)
//   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g*g
//   p = p - stepSize * m / (sqrt(v) * invBias2Sqrt + eps)
// with stepSize = lr / (1 - beta1^t) and invBias2Sqrt = 1 / sqrt(1 - beta2^t).
// TEXELS = 1 reads the whole blocks of p, g, m and v through the vec4 texel views at bindings
// 8..11 (the same tensors as storage bindings 0..3, which take the writes): lavapipe fetches a
// texel with one vector load per lane, where a storage-buffer vec4 load loops over the lanes.
// Each block is read once, before its own invocation writes it, so the views never go stale.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint SLOT_BETA1 = 0;
layout(constant_id = 4) const uint SLOT_ONE_MINUS_BETA1 = 1;
layout(constant_id = 5) const uint SLOT_BETA2 = 2;
layout(constant_id = 6) const uint SLOT_ONE_MINUS_BETA2 = 3;
layout(constant_id = 7) const uint SLOT_EPS = 4;
layout(constant_id = 8) const uint SLOT_DECAY_FACTOR = 5;
layout(constant_id = 9) const uint SLOT_STEP_SIZE = 6;
layout(constant_id = 10) const uint SLOT_INV_BIAS2_SQRT = 7;
layout(constant_id = 11) const uint SLOT_CLIP_SCALE = 8;
layout(constant_id = 12) const uint PER = 256; // vec4 blocks per invocation
layout(constant_id = 13) const uint TEXELS = 0; // 1: read through the texel views (see above)

layout(std430, binding = 0) buffer P { vec4 param[]; };
layout(std430, binding = 1) readonly buffer G { vec4 grad[]; };
layout(std430, binding = 2) buffer M { vec4 m1[]; };
layout(std430, binding = 3) buffer V { vec4 m2[]; };
layout(std430, binding = 0) buffer P1 { float param1[]; };
layout(std430, binding = 1) readonly buffer G1 { float grad1[]; };
layout(std430, binding = 2) buffer M1 { float m11[]; };
layout(std430, binding = 3) buffer V1 { float m21[]; };
layout(std430, binding = 4) readonly buffer S { float step[]; };
layout(binding = 8) uniform samplerBuffer Pt;
layout(binding = 9) uniform samplerBuffer Gt;
layout(binding = 10) uniform samplerBuffer Mt;
layout(binding = 11) uniform samplerBuffer Vt;

layout(push_constant) uniform Push {
	uint n;     // parameters
	uint decay; // nonzero: apply the decoupled weight decay
} p;

void main() {
	const uint wg = gl_WorkGroupSize.x;
	const uint g = linearGroupID();
	const uint n4 = (p.n + 3u) / 4u; // vec4 blocks, the last one maybe partial
	if (p.n == 0u || g > (n4 - 1u) / (wg * PER)) {
		return; // padding group of a 2-D grid
	}
	const float clip = step[SLOT_CLIP_SCALE];
	const float beta1 = step[SLOT_BETA1], oneMinusBeta1 = step[SLOT_ONE_MINUS_BETA1];
	const float beta2 = step[SLOT_BETA2], oneMinusBeta2 = step[SLOT_ONE_MINUS_BETA2];
	const float decay = p.decay != 0u ? step[SLOT_DECAY_FACTOR] : 1.0;
	const float stepSize = step[SLOT_STEP_SIZE], invBias2Sqrt = step[SLOT_INV_BIAS2_SQRT], eps = step[SLOT_EPS];
	const uint first = g * wg * PER + gl_LocalInvocationID.x;
	for (uint k = 0; k < PER; k++) {
		const uint i = first + k * wg; // vec4 block: parameters 4i .. 4i+3
		if (i >= n4) {
			return;
		}
		const bool whole = 4u * i + 3u < p.n;
		vec4 gr, m, v, w;
		if (whole && TEXELS == 1u) {
			const int t = int(i);
			gr = texelFetch(Gt, t), m = texelFetch(Mt, t), v = texelFetch(Vt, t), w = texelFetch(Pt, t);
		} else if (whole) {
			gr = grad[i], m = m1[i], v = m2[i], w = param[i];
		} else { // the partial last block: its valid elements, zeros after them
			gr = m = v = w = vec4(0.0);
			for (uint e = 0; 4u * i + e < p.n; e++) {
				gr[e] = grad1[4u * i + e], m[e] = m11[4u * i + e], v[e] = m21[4u * i + e], w[e] = param1[4u * i + e];
			}
		}
		gr *= clip;
		m = beta1 * m + oneMinusBeta1 * gr;
		v = beta2 * v + oneMinusBeta2 * (gr * gr);
		w = w * decay - stepSize * m / (sqrt(v) * invBias2Sqrt + eps);
		if (whole) {
			m1[i] = m, m2[i] = v, param[i] = w;
		} else {
			for (uint e = 0; 4u * i + e < p.n; e++) {
				m11[4u * i + e] = m[e], m21[4u * i + e] = v[e], param1[4u * i + e] = w[e];
			}
		}
	}
}
