#version 450
// add_bias_grad: dbias[c] += sum over r of dy[r, c] for a row-major rows x cols matrix dy.
// Four columns per invocation (one vec4 when cols is a multiple of 4, else up to four
// scalars), each summing its rows in order: deterministic, no atomics, and the same sums on
// both paths. 1-D grid over the columns (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 0) readonly buffer DY4 { vec4 dy4[]; };
layout(std430, binding = 1) buffer DBias { float dbias[]; };
layout(std430, binding = 1) buffer DBias4 { vec4 dbias4[]; };

layout(push_constant) uniform Push {
	uint rows, cols;
} p;

void main() {
	const uint c = elementIndex(p.cols, 4u);
	if (c >= p.cols) {
		return;
	}
	if (p.cols % 4u == 0u) {
		const uint n4 = p.cols / 4u;
		vec4 sum = vec4(0.0);
		for (uint r = 0u; r < p.rows; r++) {
			sum += dy4[r * n4 + c / 4u];
		}
		dbias4[c / 4u] += sum;
		return;
	}
	for (uint k = c; k < c + min(4u, p.cols - c); k++) {
		float sum = 0.0;
		for (uint r = 0u; r < p.rows; r++) {
			sum += dy[r * p.cols + k];
		}
		dbias[k] += sum;
	}
}
