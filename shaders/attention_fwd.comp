#version 450
// attention_fwd: fused scaled-dot-product attention forward (layout and masks: attention.glsl).
// For each query row: o = softmax(q K^T / sqrt(DH)) V and lse = log(sum_j exp(score_j)), by
// online softmax over blocks of KB keys, without writing the T x T scores. No dropout.
//
// RQ query rows per invocation, their q and output accumulators in registers; a subgroup's rows
// share (b, h) and loop over the same keys in the same order, each k and v row read once per
// subgroup (loadRow, rowElement) and used for all RQ rows. No shared memory, no barriers. Rows
// past T are computed as row T-1 and not stored, so every lane runs every loop.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, binding = 1) writeonly buffer Out { float o[]; };
layout(std430, binding = 2) writeonly buffer LSE { float lse[]; };
#define KEY_VALID_BINDING 3
#include "attention.glsl"

const uint KB = 4; // keys per online-softmax step

void main() {
	const uint b = rowBatch(), h = rowHead();
	uint row[RQ];
	float q[RQ][DH], acc[RQ][DH];
	float m[RQ]; // running maximum of the allowed scores
	float l[RQ]; // running sum of exp(score - m)
	[[unroll]] for (uint r = 0; r < RQ; r++) {
		row[r] = min(ownRow(r), p.T - 1u);
		const uint qo = qOffset(b, row[r], h);
		[[unroll]] for (uint c = 0; c < DH; c++) {
			q[r][c] = qkv[qo + c] * p.scale;
			acc[r][c] = 0.0;
		}
		m[r] = LOWEST;
		l[r] = 0.0;
	}

	// Causal rows stop at their own index; the subgroup loops to its last row's.
	const uint end = CAUSAL ? subgroupMax(row[RQ - 1u]) + 1u : p.T;
	for (uint j0 = 0; j0 < end; j0 += KB) {
		float s[RQ][KB], mNew[RQ];
		bool ok[RQ][KB];
		[[unroll]] for (uint r = 0; r < RQ; r++) {
			mNew[r] = m[r];
		}
		[[unroll]] for (uint u = 0; u < KB; u++) {
			const uint j = min(j0 + u, end - 1u);
			const bool seen = keyReal(b, j) && j0 + u < end;
			float kc[NCH];
			loadRow(kc, qkv, kOffset(b, j, h));
			float dot[RQ];
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				dot[r] = 0.0;
			}
			[[unroll]] for (uint c = 0; c < DH; c++) {
				const float kv = rowElement(kc, c);
				[[unroll]] for (uint r = 0; r < RQ; r++) {
					dot[r] += q[r][c] * kv;
				}
			}
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				ok[r][u] = causalAllows(row[r], j) && seen;
				s[r][u] = dot[r];
				mNew[r] = max(mNew[r], ok[r][u] ? dot[r] : LOWEST);
			}
		}
		[[unroll]] for (uint r = 0; r < RQ; r++) {
			const float corr = exp(m[r] - mNew[r]);
			l[r] *= corr;
			[[unroll]] for (uint c = 0; c < DH; c++) {
				acc[r][c] *= corr;
			}
			m[r] = mNew[r];
		}
		[[unroll]] for (uint u = 0; u < KB; u++) {
			float vc[NCH];
			loadRow(vc, qkv, vOffset(b, min(j0 + u, end - 1u), h));
			float pr[RQ];
			[[unroll]] for (uint r = 0; r < RQ; r++) {
				const float e = exp(s[r][u] - m[r]);
				pr[r] = ok[r][u] ? e : 0.0;
				l[r] += pr[r];
			}
			[[unroll]] for (uint c = 0; c < DH; c++) {
				const float vv = rowElement(vc, c);
				[[unroll]] for (uint r = 0; r < RQ; r++) {
					acc[r][c] += pr[r] * vv;
				}
			}
		}
	}

	[[unroll]] for (uint r = 0; r < RQ; r++) {
		const uint i = ownRow(r);
		if (i < p.T) {
			const float inv = l[r] > 0.0 ? 1.0 / l[r] : 0.0;
			const uint oo = outOffset(b, i, h);
			[[unroll]] for (uint c = 0; c < DH; c++) {
				o[oo + c] = acc[r][c] * inv;
			}
			lse[lseIndex(b, i, h)] = l[r] > 0.0 ? m[r] + log(l[r]) : 0.0;
		}
	}
}
