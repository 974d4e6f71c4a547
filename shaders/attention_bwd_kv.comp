#version 450
// attention_bwd_kv: attention backward, the pass over key rows (layout and masks: attention.glsl).
// For key j, looping over the queries i in order:
//   P_ij = exp(q_i.k_j / sqrt(DH) - lse_i),  dS_ij = P_ij (dO_i.v_j - D_i),
//   dK_j = sum_i dS_ij q_i / sqrt(DH),       dV_j = sum_i P_ij dO_i,
// with D_i = dO_i.o_i, which attention_bwd_rowdot left in the first element of dQ_i's slot of
// dqkv (this pass reads only q slots there and writes only k and v slots). Deterministic: each
// invocation owns its key rows and sums in a fixed order, no atomics.
//
// RQ key rows per invocation, their k, v, dK and dV in registers; a subgroup's rows share (b, h)
// and loop over the same queries, each q and dO row read once per subgroup (loadRow, rowElement)
// and used for all RQ rows. Rows past T are computed as row T-1 and not stored, so every lane
// runs every loop.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, binding = 1) readonly buffer LSE { float lse[]; };
layout(std430, binding = 2) readonly buffer DOut { float dOut[]; };
layout(std430, binding = 3) buffer DQKV { float dqkv[]; };
#define KEY_VALID_BINDING 4
#include "attention.glsl"

void main() {
	const uint b = rowBatch(), h = rowHead();
	uint key[RQ];
	bool real[RQ];
	float k[RQ][DH], v[RQ][DH], dk[RQ][DH], dv[RQ][DH];
	[[unroll]] for (uint r = 0; r < RQ; r++) {
		key[r] = min(ownRow(r), p.T - 1u);
		real[r] = keyReal(b, key[r]);
		const uint ko = kOffset(b, key[r], h), vo = vOffset(b, key[r], h);
		[[unroll]] for (uint c = 0; c < DH; c++) {
			k[r][c] = qkv[ko + c];
			v[r][c] = qkv[vo + c];
			dk[r][c] = 0.0;
			dv[r][c] = 0.0;
		}
	}

	// Causal keys are seen by queries from their own index on; the subgroup starts at its first.
	for (uint i = CAUSAL ? subgroupMin(key[0]) : 0u; i < p.T; i++) {
		const uint qo = qOffset(b, i, h);
		float qc[NCH], gc[NCH];
		loadRow(qc, qkv, qo);
		loadRow(gc, dOut, outOffset(b, i, h));
		float s[RQ], dp[RQ];
		[[unroll]] for (uint r = 0; r < RQ; r++) {
			s[r] = 0.0;
			dp[r] = 0.0;
		}
		[[unroll]] for (uint c = 0; c < DH; c++) {
			const float qv = rowElement(qc, c), gv = rowElement(gc, c);
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				s[r] += qv * k[r][c];
				dp[r] += gv * v[r][c];
			}
		}
		const float rowLSE = lse[lseIndex(b, i, h)], d = dqkv[qo];
		float pr[RQ], ds[RQ];
		[[unroll]] for (uint r = 0; r < RQ; r++) {
			const float e = exp(s[r] * p.scale - rowLSE);
			pr[r] = causalAllows(i, key[r]) && real[r] ? e : 0.0;
			ds[r] = pr[r] * (dp[r] - d) * p.scale;
		}
		[[unroll]] for (uint c = 0; c < DH; c++) {
			const float qv = rowElement(qc, c), gv = rowElement(gc, c);
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				dk[r][c] += ds[r] * qv;
				dv[r][c] += pr[r] * gv;
			}
		}
	}

	[[unroll]] for (uint r = 0; r < RQ; r++) {
		const uint j = ownRow(r);
		if (j < p.T) {
			const uint ko = kOffset(b, j, h), vo = vOffset(b, j, h);
			[[unroll]] for (uint c = 0; c < DH; c++) {
				dqkv[ko + c] = dk[r][c];
				dqkv[vo + c] = dv[r][c];
			}
		}
	}
}
