#version 450
// layernorm: for each row r of the row-major rows x cols matrix x,
//   mean[r] = sum_c x[r, c] / cols,  rstd[r] = 1 / sqrt(sum_c (x[r, c] - mean[r])^2 / cols + eps)
//   y[r, c] = (x[r, c] - mean[r]) * rstd[r] * gamma[c] + beta[c]
// (biased variance, eps inside the square root, as PyTorch). One row per invocation, two passes
// for the statistics; 1-D grid over the rows (see common.glsl). No barriers, no shared memory.
// When cols is a multiple of 4 (rows then start 16-byte aligned) the row is read as vec4s, with
// four partial sums; otherwise a scalar path runs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 1) readonly buffer Gamma4 { vec4 gamma4[]; };
layout(std430, binding = 2) readonly buffer Beta { float beta[]; };
layout(std430, binding = 2) readonly buffer Beta4 { vec4 beta4[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; };
layout(std430, binding = 4) writeonly buffer Mean { float mean[]; };
layout(std430, binding = 5) writeonly buffer Rstd { float rstd[]; };

layout(push_constant) uniform Push {
	uint rows, cols;
	float eps;
} p;

float total(vec4 v) {
	return (v.x + v.y) + (v.z + v.w);
}

void main() {
	const uint r = elementIndex(p.rows, 1u);
	if (r >= p.rows) {
		return;
	}
	const float n = float(p.cols);
	float m, s;
	if (p.cols % 4u == 0u) {
		const uint n4 = p.cols / 4u;
		const uint base = r * n4;
		vec4 sum = vec4(0.0);
		for (uint c = 0u; c < n4; c++) {
			sum += x4[base + c];
		}
		m = total(sum) / n;
		vec4 sq = vec4(0.0);
		for (uint c = 0u; c < n4; c++) {
			const vec4 d = x4[base + c] - m;
			sq += d * d;
		}
		s = 1.0 / sqrt(total(sq) / n + p.eps);
		for (uint c = 0u; c < n4; c++) {
			y4[base + c] = (x4[base + c] - m) * s * gamma4[c] + beta4[c];
		}
	} else {
		const uint base = r * p.cols;
		float sum = 0.0;
		for (uint c = 0u; c < p.cols; c++) {
			sum += x[base + c];
		}
		m = sum / n;
		float sq = 0.0;
		for (uint c = 0u; c < p.cols; c++) {
			const float d = x[base + c] - m;
			sq += d * d;
		}
		s = 1.0 / sqrt(sq / n + p.eps);
		for (uint c = 0u; c < p.cols; c++) {
			y[base + c] = (x[base + c] - m) * s * gamma[c] + beta[c];
		}
	}
	mean[r] = m;
	rstd[r] = s;
}
