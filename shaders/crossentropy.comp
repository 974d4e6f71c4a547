#version 450
// crossentropy: cross-entropy over the vocabulary fused with its softmax, one row per
// invocation (1-D grid over rows, see common.glsl). Row r of the logits starts at r*stride
// (stride >= vocab: a padded row keeps the matmuls on their vec4 path). With t = targets[r]:
//   forward  (BACKWARD = 0): out[r] = logsumexp(x_r) - x_r[t]
//   backward (BACKWARD = 1): out[r*stride + j] = (softmax(x_r)[j] - (j == t)) * scale for j < vocab,
//                            0 for vocab <= j < stride,
//                            scale = step[SLOT_LOSS_SCALE] (1/count, or 0 for count 0)
// A row whose target is ignoreIndex gets loss 0 and a zero gradient and its logits are not read;
// a target >= vocab (other than ignoreIndex) gets NaN, loss and gradient, so the bug shows.
// Three passes over the row: max, sum of exp(x - max), write. Backward may run in place (out
// bound to the logits' tensor): each element is read before it is written, by the same
// invocation.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint BACKWARD = 0;
layout(constant_id = 4) const uint SLOT_LOSS_SCALE = 0; // slot of the step-parameters tensor

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer T { uint targets[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(std430, binding = 3) readonly buffer S { float step[]; }; // backward only

layout(push_constant) uniform Push {
	uint rows;
	uint vocab;
	uint ignoreIndex;
	uint stride;
} p;

void main() {
	const uint r = elementIndex(p.rows, 1u);
	if (r >= p.rows) {
		return;
	}
	const uint t = targets[r];
	const uint base = r * p.stride;
	if (t == p.ignoreIndex || t >= p.vocab) {
		const float v = t == p.ignoreIndex ? 0.0 : uintBitsToFloat(0x7fc00000u); // quiet NaN
		if (BACKWARD == 0u) {
			o[r] = v;
		} else {
			for (uint j = 0; j < p.vocab; j++) {
				o[base + j] = v;
			}
			for (uint j = p.vocab; j < p.stride; j++) {
				o[base + j] = 0.0;
			}
		}
		return;
	}
	float m = x[base];
	for (uint j = 1; j < p.vocab; j++) {
		m = max(m, x[base + j]);
	}
	float s = 0.0;
	for (uint j = 0; j < p.vocab; j++) {
		s += exp(x[base + j] - m);
	}
	if (BACKWARD == 0u) {
		o[r] = log(s) - (x[base + t] - m);
		return;
	}
	const float scale = step[SLOT_LOSS_SCALE];
	const float k = scale / s;
	const float xt = x[base + t]; // read before an in-place write overwrites it
	for (uint j = 0; j < p.vocab; j++) {
		o[base + j] = exp(x[base + j] - m) * k;
	}
	o[base + t] = exp(xt - m) * k - scale;
	for (uint j = p.vocab; j < p.stride; j++) {
		o[base + j] = 0.0;
	}
}
