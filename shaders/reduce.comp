#version 450
// reduce: partial sums, deterministic and barrier-free. Workgroup g covers the WG*PER elements
// from g*WG*PER of x[inOff .. inOff+n); its invocation l sums (SQUARE: the squares of) the
// elements g*WG*PER + k*WG + l for k = 0..PER-1 in that order, and writes the sum to
// partials[outOff + g*WG + l] (0 past the end). So ceil(n / (WG*PER)) * WG partials come out,
// always in the same order: summing them again (SQUARE = 0) down to a few, then reduce_clip,
// gives the same bits on every run. 1-D grid over the workgroups (see common.glsl).
// x and partials may be the same tensor (the later levels read one range and write another).
// TEXELS = 1 (inOff 0) reads x through the vec4 texel view at binding 8, which lavapipe fetches
// with one vector load per lane: invocation l sums the vec4 blocks g*WG*PER/4 + k*WG + l for
// k = 0..PER/4-1 component by component, then adds the four components. A group still covers
// WG*PER elements and writes WG partials; only the order of the additions differs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint PER = 64; // elements each invocation sums
layout(constant_id = 4) const uint SQUARE = 1;
layout(constant_id = 5) const uint TEXELS = 0; // 1: x through the texel view (see above)

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float partials[]; };
layout(binding = 8) uniform samplerBuffer X4;

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
	if (TEXELS == 1u) {
		const uint first = g * wg * (PER / 4u) + gl_LocalInvocationID.x, last = (p.n - 1u) / 4u;
		vec4 s4 = vec4(0.0);
		for (uint k = 0; k < PER / 4u; k++) {
			const uint b = first + k * wg;
			const vec4 v = texelFetch(X4, int(min(b, last))); // clamped: no branch around the load
			const vec4 term = SQUARE != 0u ? v * v : v;
			// Select, not multiply: elements past n may hold anything, infinities included.
			s4 += mix(vec4(0.0), term, lessThan(4u * uvec4(b) + uvec4(0u, 1u, 2u, 3u), uvec4(p.n)));
		}
		partials[p.outOff + g * wg + gl_LocalInvocationID.x] = (s4.x + s4.y) + (s4.z + s4.w);
		return;
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
