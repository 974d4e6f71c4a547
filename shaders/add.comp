#version 450
// add: y[i] = a[i] + b[i] for i < n (the residual add). Four elements per invocation, as one
// vec4 where all four lie inside (tensors are bound at 16-byte aligned offsets); 1-D grid
// (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// y may be the same tensor as a or b: none is restrict.
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Y4 { vec4 y4[]; };

layout(push_constant) uniform Push {
	uint n; // elements
} p;

void main() {
	const uint i = elementIndex(p.n, 4u);
	if (i >= p.n) {
		return;
	}
	if (p.n - i >= 4u) {
		y4[i / 4u] = a4[i / 4u] + b4[i / 4u];
		return;
	}
	for (uint j = i; j < p.n; j++) {
		y[j] = a[j] + b[j];
	}
}
