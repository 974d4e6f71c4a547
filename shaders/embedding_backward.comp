#version 450
// embedding_backward: dtable[ids[t] - first, :] += dout[t, :] for t < tokens, skipping ids
// outside rows first .. first + vocab - 1; dtable is vocab x dim, row-major (a chunk of a
// row-chunked table). Four columns per invocation (one vec4 when dim is a
// multiple of 4, else up to four scalars), walking the tokens in order, so every element of
// dtable receives its terms in the same order on every run (deterministic, no atomics); 1-D
// grid over the columns (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer Ids { uint ids[]; };
layout(std430, binding = 1) readonly buffer DOut { float dout[]; };
layout(std430, binding = 1) readonly buffer DOut4 { vec4 dout4[]; };
layout(std430, binding = 2) buffer DTable { float dtable[]; };
layout(std430, binding = 2) buffer DTable4 { vec4 dtable4[]; };

layout(push_constant) uniform Push {
	uint tokens, dim, vocab;
	uint first; // the table's first row
} p;

void main() {
	const uint c = elementIndex(p.dim, 4u);
	if (c >= p.dim) {
		return;
	}
	if (p.dim % 4u == 0u) {
		for (uint t = 0u; t < p.tokens; t++) {
			const uint id = ids[t] - p.first; // ids below first wrap past vocab
			if (id < p.vocab) {
				dtable4[(id * p.dim + c) / 4u] += dout4[(t * p.dim + c) / 4u];
			}
		}
		return;
	}
	for (uint t = 0u; t < p.tokens; t++) {
		const uint id = ids[t] - p.first; // ids below first wrap past vocab
		if (id < p.vocab) {
			for (uint k = c; k < c + min(4u, p.dim - c); k++) {
				dtable[id * p.dim + k] += dout[t * p.dim + k];
			}
		}
	}
}
