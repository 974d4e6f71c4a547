#version 450
// reduce_clip: the last step of the gradient norm. One invocation sums partials[off .. off+n)
// in index order, takes the square root (the global L2 norm) and writes it and the clipping
// scale, min(1, maxNorm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_), or 1 when
// maxNorm <= 0, into the step-parameters tensor (vk/ops.StepParams), where AdamW reads the scale.
// Dispatched as one workgroup of one invocation.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint SLOT_CLIP_SCALE = 0;
layout(constant_id = 4) const uint SLOT_GRAD_NORM = 1;

layout(std430, binding = 0) readonly buffer X { float partials[]; };
layout(std430, binding = 1) writeonly buffer S { float step[]; };

layout(push_constant) uniform Push {
	uint n;   // partial sums of squares to add
	uint off; // the first one
	float maxNorm;
} p;

void main() {
	if (gl_GlobalInvocationID.x != 0u) {
		return;
	}
	float s = 0.0;
	for (uint i = 0; i < p.n; i++) {
		s += partials[p.off + i];
	}
	const float norm = sqrt(s);
	step[SLOT_GRAD_NORM] = norm;
	step[SLOT_CLIP_SCALE] = p.maxNorm > 0.0 ? min(1.0, p.maxNorm / (norm + 1e-6)) : 1.0;
}
