#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// matmul_tiled: C = alpha * op(A) * op(B) + beta * C + bias, row-major, any M, N, K; batched over
// gl_WorkGroupID.z. Same push constants, bindings and transposes as matmul.comp.
//
// Classic shared-memory tiling, what GPUs want: the workgroup stages a BM x BK block of op(A) and
// a BK x BN block of op(B) in shared memory (BM = wg_y*TM, BN = wg_x*TN), reading global memory
// along its contiguous dimension whatever the transpose, then each invocation accumulates a TM x TN
// set of C elements from there, strided by the workgroup size so that neighbouring invocations
// read neighbouring shared-memory words. Out-of-range elements are staged as zero.
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;
layout(constant_id = 5) const uint TRANS_A = 0; // 1: op(A) = A^T, A stored K x M
layout(constant_id = 6) const uint TRANS_B = 0; // 1: op(B) = B^T, B stored N x K
layout(constant_id = 7) const uint BK = 16;
const uint WX = gl_WorkGroupSize.x;
const uint WY = gl_WorkGroupSize.y;
const uint BM = WY * TM;
const uint BN = WX * TN;
const uint THREADS = WX * WY;

layout(std430, binding = 0) readonly buffer A1 { float a[]; };
layout(std430, binding = 1) readonly buffer B1 { float b[]; };
layout(std430, binding = 2) buffer C1 { float c[]; };
layout(std430, binding = 3) readonly buffer Bias1 { float bias[]; };

layout(push_constant) uniform Push {
	uint M, N, K;
	uint lda, ldb, ldc;
	uint offA, offB, offC, offBias;
	uint strideA, strideB, strideC;
	float alpha, beta;
	uint hasBias;
} p;

shared float As[BK * BM]; // k-major: As[k * BM + m]
shared float Bs[BK * BN]; // k-major: Bs[k * BN + n]

void main() {
	const uint tid = gl_LocalInvocationID.y * WX + gl_LocalInvocationID.x;
	const uint blockRow = gl_WorkGroupID.y * BM;
	const uint blockCol = gl_WorkGroupID.x * BN;
	const uint batch = gl_WorkGroupID.z;
	const uint aBase = p.offA + batch * p.strideA;
	const uint bBase = p.offB + batch * p.strideB;
	const uint cBase = p.offC + batch * p.strideC;

	float acc[TM][TN];
	[[unroll]] for (uint i = 0; i < TM; i++) {
		[[unroll]] for (uint j = 0; j < TN; j++) {
			acc[i][j] = 0.0;
		}
	}

	for (uint k0 = 0; k0 < p.K; k0 += BK) {
		// Consecutive invocations take consecutive elements of the stored matrix.
		for (uint e = tid; e < BM * BK; e += THREADS) {
			const uint m = TRANS_A == 0 ? e / BK : e % BM;
			const uint k = TRANS_A == 0 ? e % BK : e / BM;
			const uint row = blockRow + m, kk = k0 + k;
			float v = 0.0;
			if (row < p.M && kk < p.K) {
				v = a[aBase + (TRANS_A == 0 ? row * p.lda + kk : kk * p.lda + row)];
			}
			As[k * BM + m] = v;
		}
		for (uint e = tid; e < BK * BN; e += THREADS) {
			const uint n = TRANS_B == 0 ? e % BN : e / BK;
			const uint k = TRANS_B == 0 ? e / BN : e % BK;
			const uint col = blockCol + n, kk = k0 + k;
			float v = 0.0;
			if (col < p.N && kk < p.K) {
				v = b[bBase + (TRANS_B == 0 ? kk * p.ldb + col : col * p.ldb + kk)];
			}
			Bs[k * BN + n] = v;
		}
		barrier();
		for (uint k = 0; k < BK; k++) {
			float av[TM];
			[[unroll]] for (uint i = 0; i < TM; i++) {
				av[i] = As[k * BM + i * WY + gl_LocalInvocationID.y];
			}
			[[unroll]] for (uint j = 0; j < TN; j++) {
				const float bv = Bs[k * BN + j * WX + gl_LocalInvocationID.x];
				[[unroll]] for (uint i = 0; i < TM; i++) {
					acc[i][j] = fma(av[i], bv, acc[i][j]);
				}
			}
		}
		barrier();
	}

	[[unroll]] for (uint j = 0; j < TN; j++) {
		const uint col = blockCol + j * WX + gl_LocalInvocationID.x;
		float add = 0.0;
		if (p.hasBias != 0 && col < p.N) {
			add = bias[p.offBias + col];
		}
		[[unroll]] for (uint i = 0; i < TM; i++) {
			const uint row = blockRow + i * WY + gl_LocalInvocationID.y;
			if (row < p.M && col < p.N) {
				const uint idx = cBase + row * p.ldc + col;
				float v = p.alpha * acc[i][j];
				if (p.beta != 0.0) {
					v += p.beta * c[idx];
				}
				c[idx] = v + add;
			}
		}
	}
}
