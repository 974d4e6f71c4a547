#version 450
// add_bias: y[r, c] += bias[c] for a row-major rows x cols matrix y. Four columns per
// invocation: one vec4 when cols is a multiple of 4 (rows then start 16-byte aligned), else
// up to four scalars.
//
// Row grid: invocation gl_WorkGroupID.x * wg_x + local x takes columns 4q .. 4q + 3, and the
// row is gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y (the host spreads rows over y
// and z when y alone would exceed the device's limit).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 0) buffer Y4 { vec4 y4[]; };
layout(std430, binding = 1) readonly buffer Bias { float bias[]; };
layout(std430, binding = 1) readonly buffer Bias4 { vec4 bias4[]; };

layout(push_constant) uniform Push {
	uint rows, cols;
} p;

void main() {
	const uint q = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	const uint r = gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y;
	if (q > (p.cols - 1u) / 4u || r >= p.rows) {
		return;
	}
	const uint c = 4u * q;
	if (p.cols % 4u == 0u) {
		y4[(r * p.cols + c) / 4u] += bias4[q];
		return;
	}
	for (uint k = c; k < c + min(4u, p.cols - c); k++) {
		y[r * p.cols + k] += bias[k];
	}
}
