#version 450
// layernorm_backward: dx of layernorm.comp. For each row r, with xhat = (x - mean[r]) * rstd[r]
// and g = dy * gamma:
//   dx[r, c] (+)= rstd[r] * (g[c] - sum(g) / cols - xhat[c] * sum(g * xhat) / cols)
// One row per invocation, two passes; 1-D grid over the rows (see common.glsl). As in
// layernorm.comp, rows are read as vec4s when cols is a multiple of 4, else as scalars. dgamma
// and dbeta are column sums: layernorm_params_grad.comp.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// dx may be the same tensor as dy (none is restrict): a row belongs to one invocation, which
// reads each dy[r, c] before it writes dx[r, c].
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 1) readonly buffer Gamma4 { vec4 gamma4[]; };
layout(std430, binding = 2) readonly buffer Mean { float mean[]; };
layout(std430, binding = 3) readonly buffer Rstd { float rstd[]; };
layout(std430, binding = 4) readonly buffer DY { float dy[]; };
layout(std430, binding = 4) readonly buffer DY4 { vec4 dy4[]; };
layout(std430, binding = 5) buffer DX { float dx[]; };
layout(std430, binding = 5) buffer DX4 { vec4 dx4[]; };

layout(push_constant) uniform Push {
	uint rows, cols;
	uint accumulate; // nonzero: add to dx instead of overwriting it
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
	const float m = mean[r];
	const float s = rstd[r];
	if (p.cols % 4u == 0u) {
		const uint n4 = p.cols / 4u;
		const uint base = r * n4;
		vec4 sumG = vec4(0.0);
		vec4 sumGX = vec4(0.0);
		for (uint c = 0u; c < n4; c++) {
			const vec4 g = dy4[base + c] * gamma4[c];
			sumG += g;
			sumGX += g * (x4[base + c] - m) * s;
		}
		const float meanG = total(sumG) / n;
		const float meanGX = total(sumGX) / n;
		for (uint c = 0u; c < n4; c++) {
			vec4 d = s * (dy4[base + c] * gamma4[c] - meanG - (x4[base + c] - m) * s * meanGX);
			if (p.accumulate != 0u) {
				d += dx4[base + c];
			}
			dx4[base + c] = d;
		}
		return;
	}
	const uint base = r * p.cols;
	float sumG = 0.0;
	float sumGX = 0.0;
	for (uint c = 0u; c < p.cols; c++) {
		const float g = dy[base + c] * gamma[c];
		sumG += g;
		sumGX += g * (x[base + c] - m) * s;
	}
	const float meanG = sumG / n;
	const float meanGX = sumGX / n;
	for (uint c = 0u; c < p.cols; c++) {
		float d = s * (dy[base + c] * gamma[c] - meanG - (x[base + c] - m) * s * meanGX);
		if (p.accumulate != 0u) {
			d += dx[base + c];
		}
		dx[base + c] = d;
	}
}
