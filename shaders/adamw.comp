#version 450
// adamw: one AdamW step (torch.optim.AdamW) on n parameters. Workgroup g updates the WG*PER
// parameters from g*WG*PER, its invocation l those at g*WG*PER + k*WG + l for k < PER (several
// per invocation amortise the per-invocation cost on lavapipe; adjacent lanes touch adjacent
// elements); 1-D grid over the workgroups (see common.glsl). Everything that changes from step
// to step comes from the step-parameters tensor (vk/ops.StepParams), whose slots the host passes
// as constants 3..11, so a recorded sequence can be replayed every step:
//   g = grad * clip
//   p = p * decayFactor                        (decayFactor = 1 - lr*wd; only if p.decay != 0)
//   m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g*g
//   p = p - stepSize * m / (sqrt(v) * invBias2Sqrt + eps)
// with stepSize = lr / (1 - beta1^t) and invBias2Sqrt = 1 / sqrt(1 - beta2^t).
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
layout(constant_id = 12) const uint PER = 64; // parameters per invocation

layout(std430, binding = 0) buffer P { float param[]; };
layout(std430, binding = 1) readonly buffer G { float grad[]; };
layout(std430, binding = 2) buffer M { float m1[]; };
layout(std430, binding = 3) buffer V { float m2[]; };
layout(std430, binding = 4) readonly buffer S { float step[]; };

layout(push_constant) uniform Push {
	uint n;
	uint decay; // nonzero: apply the decoupled weight decay
} p;

void main() {
	const uint wg = gl_WorkGroupSize.x;
	const uint g = linearGroupID();
	if (p.n == 0u || g > (p.n - 1u) / (wg * PER)) {
		return; // padding group of a 2-D grid
	}
	const float clip = step[SLOT_CLIP_SCALE];
	const float beta1 = step[SLOT_BETA1], oneMinusBeta1 = step[SLOT_ONE_MINUS_BETA1];
	const float beta2 = step[SLOT_BETA2], oneMinusBeta2 = step[SLOT_ONE_MINUS_BETA2];
	const float decay = p.decay != 0u ? step[SLOT_DECAY_FACTOR] : 1.0;
	const float stepSize = step[SLOT_STEP_SIZE], invBias2Sqrt = step[SLOT_INV_BIAS2_SQRT], eps = step[SLOT_EPS];
	const uint first = g * wg * PER + gl_LocalInvocationID.x;
	for (uint k = 0; k < PER; k++) {
		const uint i = first + k * wg;
		if (i >= p.n) {
			return;
		}
		const float gr = grad[i] * clip;
		const float m = beta1 * m1[i] + oneMinusBeta1 * gr;
		const float v = beta2 * m2[i] + oneMinusBeta2 * (gr * gr);
		m1[i] = m;
		m2[i] = v;
		param[i] = param[i] * decay - stepSize * m / (sqrt(v) * invBias2Sqrt + eps);
	}
}
