#version 450
// matmul_tiled: C = alpha * A * B + beta * C, row-major, any M, N, K; batched over gl_WorkGroupID.z.
// Same push constants and bindings as matmul.comp.
//
// Classic shared-memory tiling, what GPUs want: the workgroup stages a BM x BK block of A and a
// BK x BN block of B in shared memory (BM = wg_y*TM, BN = wg_x*TN), then each invocation
// accumulates a TM x TN set of C elements from there, strided by the workgroup size so that
// neighbouring invocations read neighbouring shared-memory words. Out-of-range elements are staged as zero.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint TM = 4;
layout(constant_id = 4) const uint TN = 4;
layout(constant_id = 5) const uint BK = 16;
const uint WX = gl_WorkGroupSize.x;
const uint WY = gl_WorkGroupSize.y;
const uint BM = WY * TM;
const uint BN = WX * TN;
const uint THREADS = WX * WY;

layout(std430, binding = 0) readonly buffer A1 { float a[]; };
layout(std430, binding = 1) readonly buffer B1 { float b[]; };
layout(std430, binding = 2) buffer C1 { float c[]; };

layout(push_constant) uniform Push {
	uint M, N, K;
	uint lda, ldb, ldc;
	uint offA, offB, offC;
	uint strideA, strideB, strideC;
	float alpha, beta;
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
		for (uint e = tid; e < BM * BK; e += THREADS) {
			const uint m = e / BK, k = e % BK;
			const uint row = blockRow + m, col = k0 + k;
			As[k * BM + m] = (row < p.M && col < p.K) ? a[aBase + row * p.lda + col] : 0.0;
		}
		for (uint e = tid; e < BK * BN; e += THREADS) {
			const uint k = e / BN, n = e % BN;
			const uint row = k0 + k, col = blockCol + n;
			Bs[k * BN + n] = (row < p.K && col < p.N) ? b[bBase + row * p.ldb + col] : 0.0;
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
					acc[i][j] += av[i] * bv;
				}
			}
		}
		barrier();
	}

	[[unroll]] for (uint i = 0; i < TM; i++) {
		const uint row = blockRow + i * WY + gl_LocalInvocationID.y;
		[[unroll]] for (uint j = 0; j < TN; j++) {
			const uint col = blockCol + j * WX + gl_LocalInvocationID.x;
			if (row < p.M && col < p.N) {
				const uint idx = cBase + row * p.ldc + col;
				float v = p.alpha * acc[i][j];
				if (p.beta != 0.0) {
					v += p.beta * c[idx];
				}
				c[idx] = v;
			}
		}
	}
}
