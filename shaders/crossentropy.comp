#version 450
// crossentropy: cross-entropy over the vocabulary fused with its softmax, one row per
// invocation (1-D grid over rows, see common.glsl). Row r of the logits starts at r*stride
// (stride >= vocab: a padded row keeps the matmuls on their vec4 path). With t = targets[r]:
//   forward  (BACKWARD = 0): loss[r] = logsumexp(x_r) - x_r[t]
//   backward (BACKWARD = 1): out[r*stride + j] = (softmax(x_r)[j] - q_j) * scale for j < vocab,
//                            0 for vocab <= j < stride,
//                            scale = step[SLOT_LOSS_SCALE] (1/count, or 0 for count 0);
//                            with LOSSES = 1 also loss[r] (no separate forward needed)
// q is the target distribution: with label smoothing e = p.smoothing (0 <= e < 1) q_j = e/vocab +
// (1-e)(j == t), and the loss is its cross-entropy with the softmax, logsumexp(x_r) - (1-e) x_r[t]
// - e mean(x_r); e = 0 is the one-hot target, computed as above (the same bits as without it).
// Both outputs are statically written, so the host binds a tensor to each (one it writes anyway
// where the output is not wanted: the shared dummy binding must never be written).
// A row whose target is ignoreIndex gets loss 0 and a zero gradient and its logits are not read;
// a target >= vocab (other than ignoreIndex) gets NaN, loss and gradient, so the bug shows.
// Three passes over the row: max, sum of exp(x - max), write. Backward may run in place (out
// bound to the logits' tensor): each element is read before it is written, by the same
// invocation. VEC = 1 (host-checked: stride a multiple of 4) reads and writes the row's whole
// quads as vec4s, a quarter of the load instructions (what costs on llvmpipe), and the rest of
// the row element by element.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint BACKWARD = 0;
layout(constant_id = 4) const uint SLOT_LOSS_SCALE = 0; // slot of the step-parameters tensor
layout(constant_id = 5) const uint VEC = 0;
layout(constant_id = 6) const uint LOSSES = 0; // backward: also write the losses (binding 4)

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer T { uint targets[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; }; // the gradient (backward)
layout(std430, binding = 2) writeonly buffer O4 { vec4 o4[]; };
layout(std430, binding = 3) writeonly buffer L { float losses[]; }; // forward, backward with LOSSES
layout(std430, binding = 4) readonly buffer S { float step[]; };    // backward only

layout(push_constant) uniform Push {
	uint rows;
	uint vocab;
	uint ignoreIndex;
	uint stride;
	float smoothing; // label smoothing e, 0 for the plain cross-entropy
} p;

void writeLoss(uint r, float v) {
	if (BACKWARD == 0u || LOSSES != 0u) {
		losses[r] = v;
	}
}

void main() {
	const uint r = elementIndex(p.rows, 1u);
	if (r >= p.rows) {
		return;
	}
	const uint t = targets[r];
	const uint base = r * p.stride;
	// The first quads*4 elements of the row as vec4s from quad q0, the rest one by one.
	const uint quads = VEC != 0u ? p.vocab / 4u : 0u;
	const uint q0 = base / 4u;
	if (t == p.ignoreIndex || t >= p.vocab) {
		const float v = t == p.ignoreIndex ? 0.0 : uintBitsToFloat(0x7fc00000u); // quiet NaN
		writeLoss(r, v);
		if (BACKWARD != 0u) {
			for (uint j = 0; j < quads; j++) {
				o4[q0 + j] = vec4(v);
			}
			for (uint j = 4u * quads; j < p.vocab; j++) {
				o[base + j] = v;
			}
			for (uint j = p.vocab; j < p.stride; j++) {
				o[base + j] = 0.0;
			}
		}
		return;
	}
	vec4 m4 = vec4(uintBitsToFloat(0xff800000u)); // -inf
	for (uint j = 0; j < quads; j++) {
		m4 = max(m4, x4[q0 + j]);
	}
	float m = max(max(m4.x, m4.y), max(m4.z, m4.w));
	for (uint j = 4u * quads; j < p.vocab; j++) {
		m = max(m, x[base + j]);
	}
	float mean = 0.0; // of the row's logits, read only with smoothing
	if (p.smoothing != 0.0) {
		vec4 a4 = vec4(0.0);
		for (uint j = 0; j < quads; j++) {
			a4 += x4[q0 + j];
		}
		float a = (a4.x + a4.y) + (a4.z + a4.w);
		for (uint j = 4u * quads; j < p.vocab; j++) {
			a += x[base + j];
		}
		mean = a / float(p.vocab);
	}
	vec4 s4 = vec4(0.0);
	for (uint j = 0; j < quads; j++) {
		s4 += exp(x4[q0 + j] - m);
	}
	float s = (s4.x + s4.y) + (s4.z + s4.w);
	for (uint j = 4u * quads; j < p.vocab; j++) {
		s += exp(x[base + j] - m);
	}
	const float xt = x[base + t]; // read before an in-place write overwrites it
	const float e = p.smoothing;
	writeLoss(r, e == 0.0 ? log(s) - (xt - m) : log(s) + m - (1.0 - e) * xt - e * mean);
	if (BACKWARD == 0u) {
		return;
	}
	const float scale = step[SLOT_LOSS_SCALE];
	const float k = scale / s;
	const float spread = e == 0.0 ? 0.0 : scale * e / float(p.vocab); // the smoothing's share of q
	for (uint j = 0; j < quads; j++) {
		o4[q0 + j] = exp(x4[q0 + j] - m) * k - spread;
	}
	for (uint j = 4u * quads; j < p.vocab; j++) {
		o[base + j] = exp(x[base + j] - m) * k - spread;
	}
	o[base + t] = exp(xt - m) * k - spread - (e == 0.0 ? scale : scale * (1.0 - e));
	for (uint j = p.vocab; j < p.stride; j++) {
		o[base + j] = 0.0;
	}
}
