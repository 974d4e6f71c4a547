#version 450
// fill: y[i] = value for i < n. One element per invocation; 1-D grid (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
	uint n;      // elements to write
	float value;
} p;

void main() {
	const uint i = elementIndex(p.n, 1u);
	if (i >= p.n) {
		return;
	}
	y[i] = p.value;
}
