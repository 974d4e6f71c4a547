#version 450
// reduce: partial sums, deterministic and barrier-free. Workgroup g covers the WG*PER elements
// from g*WG*PER of x[inOff .. inOff+n); its invocation l sums (SQUARE: the squares of) the
// elements g*WG*PER + k*WG + l for k = 0..PER-1 in that order, and writes the sum to
// partials[outOff + g*WG + l] (0 past the end). So ceil(n / (WG*PER)) * WG partials come out,
// always in the same order: summing them again (SQUARE = 0) down to a few, then reduce_clip,
// gives the same bits on every run. 1-D grid over the workgroups (see common.glsl).
// x and partials may be the same tensor (the later levels read one range and write another).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint PER = 64; // elements each invocation sums
layout(constant_id = 4) const uint SQUARE = 1;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float partials[]; };

layout(push_constant) uniform Push {
	uint n;      // elements to sum, >= 1
	uint inOff;  // first element of x
	uint outOff; // first partial written
} p;

void main() {
	const uint wg = gl_WorkGroupSize.x;
	const uint g = linearGroupID();
	if (g > (p.n - 1u) / (wg * PER)) {
		return; // padding group of a 2-D grid
	}
	const uint first = g * wg * PER + gl_LocalInvocationID.x;
	float s = 0.0;
	for (uint k = 0; k < PER; k++) {
		const uint i = first + k * wg;
		const float v = x[p.inOff + min(i, p.n - 1u)]; // clamped: no branch around the load
		const float term = SQUARE != 0u ? v * v : v;
		s += i < p.n ? term : 0.0;
	}
	partials[p.outOff + g * wg + gl_LocalInvocationID.x] = s;
}
