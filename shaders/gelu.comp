#version 450
// gelu: y[i] = gelu(x[i]) for i < n, GPT-2's tanh form (see gelu.glsl). Four elements per
// invocation, as one vec4 where all four lie inside (tensors are bound at 16-byte aligned
// offsets); 1-D grid (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "gelu.glsl"

// x and y may be the same tensor: neither is restrict.
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) writeonly buffer Y4 { vec4 y4[]; };

layout(push_constant) uniform Push {
	uint n; // elements
} p;

void main() {
	const uint i = elementIndex(p.n, 4u);
	if (i >= p.n) {
		return;
	}
	if (p.n - i >= 4u) {
		y4[i / 4u] = gelu(x4[i / 4u]);
		return;
	}
	for (uint j = i; j < p.n; j++) {
		y[j] = gelu(vec4(x[j])).x;
	}
}
