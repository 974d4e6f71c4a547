#version 450
// dropout: y[i] (+)= keep(i) ? x[i] * scale : 0 for i < n. Forward (x = activations) and
// backward (x = dy, the same rng contents) are the same map. Four elements per invocation, as
// one vec4 where all four lie inside (tensors are bound at 16-byte aligned offsets); 1-D grid
// (see common.glsl).
//
// keep(i) is r >= threshold, r = word 0 of Philox4x32-10 with key {seed, 0} and counter
// {lo, hi, 0, 0}, where hi:lo = offset + i as a 64-bit sum. seed and offset come from the rng
// tensor, not push constants, so a recorded sequence can replay with a new mask every step. The
// host passes threshold = ceil(p * 2^32) and scale = 1 / (1 - p); threshold 0 (p = 0) keeps
// every element without drawing and, with scale 1, copies x exactly.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "philox.glsl"

// x and y may be the same tensor: neither is restrict.
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 1) buffer Y4 { vec4 y4[]; };
layout(std430, binding = 2) readonly buffer Rng { uint rng[]; }; // {seed, offset}

layout(push_constant) uniform Push {
	uint n;          // elements
	uint threshold;  // drop when the random word is below it
	float scale;     // applied to the kept elements
	uint accumulate; // nonzero: add to y instead of overwriting it
} p;

bool keep(uint i) {
	if (p.threshold == 0u) {
		return true;
	}
	uint carry;
	const uint lo = uaddCarry(rng[1], i, carry);
	return philox4x32(uvec4(lo, carry, 0u, 0u), uvec2(rng[0], 0u)).x >= p.threshold;
}

void main() {
	const uint i = elementIndex(p.n, 4u);
	if (i >= p.n) {
		return;
	}
	if (p.n - i >= 4u) {
		const bvec4 k = bvec4(keep(i), keep(i + 1u), keep(i + 2u), keep(i + 3u));
		vec4 v = mix(vec4(0.0), x4[i / 4u] * p.scale, k); // a selection: NaN and inf drop too
		if (p.accumulate != 0u) {
			v += y4[i / 4u];
		}
		y4[i / 4u] = v;
		return;
	}
	for (uint j = i; j < p.n; j++) {
		float v = keep(j) ? x[j] * p.scale : 0.0;
		if (p.accumulate != 0u) {
			v += y[j];
		}
		y[j] = v;
	}
}
