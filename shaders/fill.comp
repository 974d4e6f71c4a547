#version 450
// fill: y[i] = value for i < n. One vec4 block per invocation (lavapipe pays per store
// instruction, not per float), the last block maybe partial; 1-D grid (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 0) writeonly buffer Y4 { vec4 y4[]; };

layout(push_constant) uniform Push {
	uint n;      // elements to write
	float value;
} p;

void main() {
	const uint i = elementIndex(p.n, 4u);
	if (i >= p.n) {
		return;
	}
	if (p.n - i >= 4u) {
		y4[i / 4u] = vec4(p.value);
		return;
	}
	for (uint j = i; j < p.n; j++) {
		y[j] = p.value;
	}
}
