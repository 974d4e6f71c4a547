#version 450
// layernorm_params_grad: the parameter gradients of layernorm.comp, accumulated:
//   dgamma[c] += sum_r dy[r, c] * (x[r, c] - mean[r]) * rstd[r],   dbeta[c] += sum_r dy[r, c]
// Four columns per invocation (one vec4 when cols is a multiple of 4, else up to four
// scalars), each summing its rows in order: deterministic, no atomics, and the same sums on
// both paths. 1-D grid over the columns (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer Mean { float mean[]; };
layout(std430, binding = 2) readonly buffer Rstd { float rstd[]; };
layout(std430, binding = 3) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) readonly buffer DY4 { vec4 dy4[]; };
layout(std430, binding = 4) buffer DGamma { float dgamma[]; };
layout(std430, binding = 4) buffer DGamma4 { vec4 dgamma4[]; };
layout(std430, binding = 5) buffer DBeta { float dbeta[]; };
layout(std430, binding = 5) buffer DBeta4 { vec4 dbeta4[]; };

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
		vec4 sumG = vec4(0.0);
		vec4 sumB = vec4(0.0);
		for (uint r = 0u; r < p.rows; r++) {
			const vec4 d = dy4[r * n4 + c / 4u];
			sumG += d * (x4[r * n4 + c / 4u] - mean[r]) * rstd[r];
			sumB += d;
		}
		dgamma4[c / 4u] += sumG;
		dbeta4[c / 4u] += sumB;
		return;
	}
	for (uint k = c; k < c + min(4u, p.cols - c); k++) {
		float sumG = 0.0;
		float sumB = 0.0;
		for (uint r = 0u; r < p.rows; r++) {
			const float d = dy[r * p.cols + k];
			sumG += d * (x[r * p.cols + k] - mean[r]) * rstd[r];
			sumB += d;
		}
		dgamma[k] += sumG;
		dbeta[k] += sumB;
	}
}
