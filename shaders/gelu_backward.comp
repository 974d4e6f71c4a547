#version 450
// gelu_backward: dx[i] (+)= dy[i] * gelu'(x[i]) for i < n (see gelu.glsl). Four elements per
// invocation, as one vec4 where all four lie inside (tensors are bound at 16-byte aligned
// offsets); 1-D grid (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "gelu.glsl"

// dy and dx may be the same tensor: none is restrict.
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer DY4 { vec4 dy4[]; };
layout(std430, binding = 2) buffer DX { float dx[]; };
layout(std430, binding = 2) buffer DX4 { vec4 dx4[]; };

layout(push_constant) uniform Push {
	uint n;          // elements
	uint accumulate; // nonzero: add to dx instead of overwriting it
} p;

void main() {
	const uint i = elementIndex(p.n, 4u);
	if (i >= p.n) {
		return;
	}
	if (p.n - i >= 4u) {
		vec4 g = dy4[i / 4u] * geluGrad(x4[i / 4u]);
		if (p.accumulate != 0u) {
			g += dx4[i / 4u];
		}
		dx4[i / 4u] = g;
		return;
	}
	for (uint j = i; j < p.n; j++) {
		float g = dy[j] * geluGrad(vec4(x[j])).x;
		if (p.accumulate != 0u) {
			g += dx[j];
		}
		dx[j] = g;
	}
}
