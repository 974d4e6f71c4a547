#version 450
// attention_bwd_q: attention backward, the pass over query rows (layout and masks:
// attention.glsl). For query i, with D_i = dO_i.o_i and looping over the keys j in order:
//   P_ij = exp(q_i.k_j / sqrt(DH) - lse_i),  dS_ij = P_ij (dO_i.v_j - D_i),
//   dQ_i = sum_j dS_ij k_j / sqrt(DH),
// written over q's slot of dqkv (after attention_bwd_kv, which read D_i from there).
//
// RQ query rows per invocation, their q, dO and dQ in registers; a subgroup's rows share (b, h)
// and loop over the same keys, each k and v row read once per subgroup (loadRow, rowElement) and
// used for all RQ rows. Rows past T are computed as row T-1 and not stored, so every lane runs
// every loop.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, binding = 1) readonly buffer Out { float o[]; };
layout(std430, binding = 2) readonly buffer LSE { float lse[]; };
layout(std430, binding = 3) readonly buffer DOut { float dOut[]; };
layout(std430, binding = 4) writeonly buffer DQKV { float dqkv[]; };
#define KEY_VALID_BINDING 5
#include "attention.glsl"

void main() {
	const uint b = rowBatch(), h = rowHead();
	uint row[RQ];
	float q[RQ][DH], g[RQ][DH], dq[RQ][DH];
	float d[RQ], rowLSE[RQ]; // D_i = dO_i.o_i and lse_i
	[[unroll]] for (uint r = 0; r < RQ; r++) {
		row[r] = min(ownRow(r), p.T - 1u);
		const uint qo = qOffset(b, row[r], h), oo = outOffset(b, row[r], h);
		d[r] = 0.0;
		[[unroll]] for (uint c = 0; c < DH; c++) {
			q[r][c] = qkv[qo + c] * p.scale;
			g[r][c] = dOut[oo + c];
			d[r] += g[r][c] * o[oo + c];
			dq[r][c] = 0.0;
		}
		rowLSE[r] = lse[lseIndex(b, row[r], h)];
	}

	// Causal rows stop at their own index; the subgroup loops to its last row's.
	const uint end = CAUSAL ? subgroupMax(row[RQ - 1u]) + 1u : p.T;
	for (uint j = 0; j < end; j++) {
		const bool real = keyReal(b, j);
		float kc[NCH], vc[NCH];
		loadRow(kc, qkv, kOffset(b, j, h));
		loadRow(vc, qkv, vOffset(b, j, h));
		float s[RQ], dp[RQ];
		[[unroll]] for (uint r = 0; r < RQ; r++) {
			s[r] = 0.0;
			dp[r] = 0.0;
		}
		[[unroll]] for (uint c = 0; c < DH; c++) {
			const float kv = rowElement(kc, c), vv = rowElement(vc, c);
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				s[r] += q[r][c] * kv;
				dp[r] += g[r][c] * vv;
			}
		}
		float ds[RQ];
		[[unroll]] for (uint r = 0; r < RQ; r++) {
			const float e = exp(s[r] - rowLSE[r]);
			const float pr = causalAllows(row[r], j) && real ? e : 0.0;
			ds[r] = pr * (dp[r] - d[r]);
		}
		[[unroll]] for (uint c = 0; c < DH; c++) {
			const float kv = rowElement(kc, c);
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				dq[r][c] += ds[r] * kv;
			}
		}
	}

	[[unroll]] for (uint r = 0; r < RQ; r++) {
		const uint i = ownRow(r);
		if (i < p.T) {
			const uint qo = qOffset(b, i, h);
			[[unroll]] for (uint c = 0; c < DH; c++) {
				dqkv[qo + c] = dq[r][c] * p.scale;
			}
		}
	}
}
