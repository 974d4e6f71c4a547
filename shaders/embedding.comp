#version 450
// embedding: out[t, :] (+)= table[ids[t] - first, :] for t < tokens; table is vocab x dim,
// row-major: rows first .. first + vocab - 1 of a row-chunked table. An id outside them reads
// nothing: its row of out is zeroed (or left as it is when accumulating).
// Four columns per invocation: one vec4 when dim is a multiple of 4 (rows then start 16-byte
// aligned), else up to four scalars.
//
// Row grid: invocation gl_WorkGroupID.x * wg_x + local x takes columns 4q .. 4q + 3, and the
// token is gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y (the host spreads tokens
// over y and z when y alone would exceed the device's limit).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer Ids { uint ids[]; };
layout(std430, binding = 1) readonly buffer Table { float table[]; };
layout(std430, binding = 1) readonly buffer Table4 { vec4 table4[]; };
layout(std430, binding = 2) buffer Out { float outs[]; };
layout(std430, binding = 2) buffer Out4 { vec4 outs4[]; };

layout(push_constant) uniform Push {
	uint tokens, dim, vocab;
	uint accumulate; // nonzero: add to out instead of overwriting it
	uint first;      // the table's first row
} p;

void main() {
	const uint q = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	const uint t = gl_WorkGroupID.z * gl_NumWorkGroups.y + gl_WorkGroupID.y;
	if (q > (p.dim - 1u) / 4u || t >= p.tokens) {
		return;
	}
	const uint c = 4u * q;
	const uint id = ids[t] - p.first; // ids below first wrap past vocab
	const bool valid = id < p.vocab;
	if (p.dim % 4u == 0u) {
		vec4 v = vec4(0.0);
		if (valid) {
			v = table4[(id * p.dim + c) / 4u];
		}
		if (p.accumulate != 0u) {
			v += outs4[(t * p.dim + c) / 4u];
		}
		outs4[(t * p.dim + c) / 4u] = v;
		return;
	}
	for (uint k = c; k < c + min(4u, p.dim - c); k++) {
		float v = 0.0;
		if (valid) {
			v = table[id * p.dim + k];
		}
		if (p.accumulate != 0u) {
			v += outs[t * p.dim + k];
		}
		outs[t * p.dim + k] = v;
	}
}
