#version 450
// matmul: C = alpha * A * B + beta * C, row-major, any M, N, K; batched over gl_WorkGroupID.z.
//
// Register-blocked, no shared memory and no barriers: each invocation owns a TM x TN tile of C
// and keeps it in registers. On lavapipe every per-invocation value is one SIMD register across
// the workgroup's lanes, so big per-invocation tiles and vec4 loads are what pay there.
// When K, N, the leading dimensions and the offsets are multiples of 4, A is read as vec4 along k
// and B as vec4 along n; otherwise a scalar path runs. Edge tiles clamp their loads to the last
// row/column (valid memory) and drop the extra results at the store, so the inner loop has no
// bounds branches.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint TM = 4; // rows of C per invocation
layout(constant_id = 4) const uint TN = 4; // columns of C per invocation, a multiple of 4
const uint TN4 = TN / 4;

layout(std430, binding = 0) readonly buffer A1 { float a[]; };
layout(std430, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, binding = 1) readonly buffer B1 { float b[]; };
layout(std430, binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(std430, binding = 2) buffer C1 { float c[]; };

layout(push_constant) uniform Push {
	uint M, N, K;
	uint lda, ldb, ldc;             // row strides, elements
	uint offA, offB, offC;          // element offsets of matrix 0
	uint strideA, strideB, strideC; // elements between batch entries
	float alpha, beta;
} p;

void main() {
	const uint row0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
	const uint col0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * TN;
	if (row0 >= p.M || col0 >= p.N) {
		return;
	}
	const uint batch = gl_WorkGroupID.z;
	const uint aBase = p.offA + batch * p.strideA;
	const uint bBase = p.offB + batch * p.strideB;
	const uint cBase = p.offC + batch * p.strideC;

	vec4 acc[TM][TN4];
	[[unroll]] for (uint i = 0; i < TM; i++) {
		[[unroll]] for (uint j = 0; j < TN4; j++) {
			acc[i][j] = vec4(0.0);
		}
	}

	const bool vec4Path = (p.K % 4 == 0) && (p.N % 4 == 0) && (p.lda % 4 == 0) && (p.ldb % 4 == 0) &&
		(aBase % 4 == 0) && (bBase % 4 == 0);
	if (vec4Path) {
		uint aRow[TM];
		[[unroll]] for (uint i = 0; i < TM; i++) {
			aRow[i] = (aBase + min(row0 + i, p.M - 1) * p.lda) / 4;
		}
		uint bCol[TN4];
		[[unroll]] for (uint j = 0; j < TN4; j++) {
			bCol[j] = (bBase + min(col0 + 4 * j, p.N - 4)) / 4;
		}
		const uint ldb4 = p.ldb / 4;
		for (uint k4 = 0; k4 < p.K / 4; k4++) {
			vec4 av[TM];
			[[unroll]] for (uint i = 0; i < TM; i++) {
				av[i] = a4[aRow[i] + k4];
			}
			[[unroll]] for (uint kk = 0; kk < 4; kk++) {
				const uint bRow = (4 * k4 + kk) * ldb4;
				vec4 bv[TN4];
				[[unroll]] for (uint j = 0; j < TN4; j++) {
					bv[j] = b4[bRow + bCol[j]];
				}
				[[unroll]] for (uint i = 0; i < TM; i++) {
					[[unroll]] for (uint j = 0; j < TN4; j++) {
						acc[i][j] += av[i][kk] * bv[j];
					}
				}
			}
		}
	} else {
		for (uint k = 0; k < p.K; k++) {
			const uint bRow = bBase + k * p.ldb;
			vec4 bv[TN4];
			[[unroll]] for (uint j = 0; j < TN4; j++) {
				const uint col = col0 + 4 * j;
				bv[j] = vec4(b[bRow + min(col, p.N - 1)], b[bRow + min(col + 1, p.N - 1)],
					b[bRow + min(col + 2, p.N - 1)], b[bRow + min(col + 3, p.N - 1)]);
			}
			[[unroll]] for (uint i = 0; i < TM; i++) {
				const float av = a[aBase + min(row0 + i, p.M - 1) * p.lda + k];
				[[unroll]] for (uint j = 0; j < TN4; j++) {
					acc[i][j] += av * bv[j];
				}
			}
		}
	}

	[[unroll]] for (uint i = 0; i < TM; i++) {
		const uint row = row0 + i;
		if (row >= p.M) {
			break;
		}
		[[unroll]] for (uint j = 0; j < TN4; j++) {
			[[unroll]] for (uint e = 0; e < 4; e++) {
				const uint col = col0 + 4 * j + e;
				if (col < p.N) {
					const uint idx = cBase + row * p.ldc + col;
					float v = p.alpha * acc[i][j][e];
					if (p.beta != 0.0) {
						v += p.beta * c[idx];
					}
					c[idx] = v;
				}
			}
		}
	}
}
