#version 450
// attention_bwd_rowdot: the first pass of attention backward (attention.glsl has the layout).
// For every row r = (b*T + t)*H + h of o and dO it computes D = dO_r.o_r and leaves it in the
// first element of dQ's slot of token t, head h in dqkv, for attention_bwd_kv to read;
// attention_bwd_q then overwrites the slot with dQ. One row per invocation; 1-D grid over the
// B*T*H rows (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer Out { float o[]; };
layout(std430, binding = 1) readonly buffer DOut { float dOut[]; };
layout(std430, binding = 2) writeonly buffer DQKV { float dqkv[]; };
#include "attention.glsl"

void main() {
	const uint n = p.B * p.T * p.H;
	const uint r = elementIndex(n, 1u);
	if (r >= n) {
		return;
	}
	float d = 0.0;
	[[unroll]] for (uint c = 0; c < DH; c++) {
		d += dOut[r * DH + c] * o[r * DH + c];
	}
	const uint token = r / p.H;
	dqkv[qOffset(token / p.T, token % p.T, r % p.H)] = d;
}
