#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// matmul: C = alpha * op(A) * op(B) + beta * C + bias, row-major, any M, N, K; batched over
// gl_WorkGroupID.z. op(X) is X or X^T (TRANS_A, TRANS_B); lda, ldb, ldc are the stored row
// strides. bias (N floats, binding 3) is added to every row when p.hasBias != 0.
//
// Register-blocked for CPUs (lavapipe), no shared memory and no barriers. llvmpipe runs the lanes
// of a subgroup as one SIMD vector and turns each buffer load into a loop over the lanes (about 55
// cycles for a vec4, 50 FMAs' worth, measured), so what counts is the number of load instructions.
// A group of SG lanes therefore shares one TM-row block of C and each lane owns TN of its columns.
// Per step of 4 k, a lane loads TM/SG vec4s of op(A) (rows lane, lane+SG, ...; with A transposed,
// the TM vec4s of 4 rows at the 4 k, shared out over the lanes the same way) and TN vec4s of
// op(B), subgroup shuffles hand every lane all TM rows of A, and each accumulator takes 4 FMAs at
// once. Each transpose loads along its contiguous dimension, so all four forms cost the same.
// With TEXELS = 1 and beta != 0, C is read through the texel view at binding 10 too: each vec4
// once, by the invocation that then writes it (the weight gradients accumulate with beta = 1).
//
// VEC = 1 (host-checked: K, N, the row strides, offsets and batch strides multiples of 4, and M
// too with TRANS_A) loads and stores vec4s; VEC = 0 steps one k at a time with scalar loads.
// TEXELS = 1 (with VEC = 1) reads A and B as texels of the vec4 views at bindings 8 and 9, which
// lavapipe fetches with one vector load per lane instead of a per-lane loop over 4 scalar loads
// with bounds checks: 1.3x faster at 1024^3 there (BENCHMARKS.md).
//
// lavapipe runs workgroups in grid order, x fastest. With x over the column blocks, consecutive
// groups share a panel of A and sweep B; the host sets rowsFast to sweep A instead when that
// streams fewer bytes from memory (a wide B, such as the token table in the logits product).
// Edge tiles clamp their loads to the last row/column and drop those results at the store. The
// lanes of a group never exit early: their shuffles need every lane.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

layout(constant_id = 3) const uint TM = 32;     // rows of C per group of SG lanes, a multiple of 4
layout(constant_id = 4) const uint TN = 8;      // columns of C per invocation, a multiple of 4
layout(constant_id = 5) const uint TRANS_A = 0; // 1: op(A) = A^T, A stored K x M
layout(constant_id = 6) const uint TRANS_B = 0; // 1: op(B) = B^T, B stored N x K
layout(constant_id = 7) const uint SG = 8;      // lanes sharing rows: a power of two dividing wg_x and the subgroup size
layout(constant_id = 8) const uint VEC = 1;     // 1: vec4 memory access (see above)
layout(constant_id = 9) const uint TEXELS = 0;  // 1: A and B through texel views (see above)

const uint TN4 = TN / 4;
const uint RA = (TM + SG - 1) / SG; // vec4s of A per lane and step of 4 k

layout(std430, binding = 0) readonly buffer A1 { float a[]; };
layout(std430, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, binding = 1) readonly buffer B1 { float b[]; };
layout(std430, binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(std430, binding = 2) buffer C1 { float c[]; };
layout(std430, binding = 2) buffer C4 { vec4 c4[]; };
layout(binding = 8) uniform samplerBuffer A4t;
layout(binding = 9) uniform samplerBuffer B4t;
layout(binding = 10) uniform samplerBuffer C4t; // with TEXELS = 1 and beta != 0
layout(std430, binding = 3) readonly buffer Bias1 { float bias[]; };
layout(std430, binding = 3) readonly buffer Bias4 { vec4 bias4[]; };

layout(push_constant) uniform Push {
	uint M, N, K;
	uint lda, ldb, ldc;             // stored row strides, elements
	uint offA, offB, offC, offBias; // element offsets of matrix 0 and of the bias
	uint strideA, strideB, strideC; // elements between batch entries
	float alpha, beta;
	uint hasBias;
	uint rowsFast; // 1: gl_WorkGroupID.x walks the row blocks and .y the column blocks
} p;

// loadA4 and loadB4 read vec4 number i of A or B, from the storage buffer or the texel view.
vec4 loadA4(uint i) {
	if (TEXELS == 1) {
		return texelFetch(A4t, int(i));
	}
	return a4[i];
}

vec4 loadB4(uint i) {
	if (TEXELS == 1) {
		return texelFetch(B4t, int(i));
	}
	return b4[i];
}

void main() {
	const uint lane = gl_SubgroupInvocationID % SG;
	const uint first = gl_SubgroupInvocationID - lane; // the group's first lane in the subgroup
	const uint groupsX = gl_WorkGroupSize.x / SG;
	const uint rowBlock = p.rowsFast != 0 ? gl_WorkGroupID.x : gl_WorkGroupID.y;
	const uint colBlock = p.rowsFast != 0 ? gl_WorkGroupID.y : gl_WorkGroupID.x;
	const uint row0 = (rowBlock * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * TM;
	const uint col0 = (colBlock * groupsX + gl_LocalInvocationID.x / SG) * SG * TN;
	const uint batch = gl_WorkGroupID.z;
	const uint aBase = p.offA + batch * p.strideA;
	const uint bBase = p.offB + batch * p.strideB;
	const uint cBase = p.offC + batch * p.strideC;

	// This lane's columns: chunk j holds col0 + 4 * (lane + SG * j) + 0..3.
	uint col[TN4];
	[[unroll]] for (uint j = 0; j < TN4; j++) {
		col[j] = col0 + 4 * (lane + SG * j);
	}

	vec4 acc[TM][TN4];
	[[unroll]] for (uint i = 0; i < TM; i++) {
		[[unroll]] for (uint j = 0; j < TN4; j++) {
			acc[i][j] = vec4(0.0);
		}
	}

	if (VEC == 1) {
		// Loop-invariant vec4 indices (llvmpipe hoists nothing out of loops).
		// A: row row0 + lane + SG * r. A^T: piece q = lane + SG * r of the TM vec4s a step needs,
		// stored row k + q / (TM / 4), columns row0 + 4 * (q % (TM / 4)) + 0..3.
		uint aAt[RA];
		[[unroll]] for (uint r = 0; r < RA; r++) {
			const uint q = (lane + SG * r) % TM; // lanes past the TM pieces repeat some
			const uint m = TRANS_A == 0 ? row0 + lane + SG * r : row0 + 4 * (q % (TM / 4));
			aAt[r] = (aBase + (TRANS_A == 0 ? min(m, p.M - 1) * p.lda : (q / (TM / 4)) * p.lda + min(m, p.M - 4))) / 4;
		}
		uint bAt[TN]; // B: column chunk col[j / 4]; B^T: row col[j / 4] + j % 4
		[[unroll]] for (uint j = 0; j < TN; j++) {
			const uint n = col[j / 4] + (TRANS_B == 0 ? 0 : j % 4);
			bAt[j] = (bBase + (TRANS_B == 0 ? min(n, p.N - 4) : min(n, p.N - 1) * p.ldb)) / 4;
		}
		const uint lda4 = p.lda / 4, ldb4 = p.ldb / 4;
		for (uint k = 0; k < p.K; k += 4) {
			// av[i] = op(A)[row0 + i][k .. k+3]: this lane's share, then shuffled to every lane.
			vec4 av[TM];
			vec4 mine[RA];
			[[unroll]] for (uint r = 0; r < RA; r++) {
				mine[r] = loadA4(aAt[r] + (TRANS_A == 0 ? k / 4 : k * lda4));
			}
			if (TRANS_A == 0) {
				[[unroll]] for (uint i = 0; i < TM; i++) {
					av[i] = subgroupShuffle(mine[i / SG], first + i % SG);
				}
			} else {
				[[unroll]] for (uint q = 0; q < TM / 4; q++) {
					vec4 t[4]; // t[kk]: stored row k + kk, columns row0 + 4 * q + 0..3
					[[unroll]] for (uint kk = 0; kk < 4; kk++) {
						const uint piece = kk * (TM / 4) + q;
						t[kk] = subgroupShuffle(mine[piece / SG], first + piece % SG);
					}
					[[unroll]] for (uint e = 0; e < 4; e++) {
						av[4 * q + e] = vec4(t[0][e], t[1][e], t[2][e], t[3][e]);
					}
				}
			}
			[[unroll]] for (uint j = 0; j < TN4; j++) {
				vec4 bv[4]; // bv[kk] = op(B)[k + kk][col[j] .. col[j]+3]
				if (TRANS_B == 0) {
					[[unroll]] for (uint kk = 0; kk < 4; kk++) {
						bv[kk] = loadB4(bAt[4 * j] + (k + kk) * ldb4);
					}
				} else {
					vec4 w[4]; // w[e] = stored B[col[j] + e][k .. k+3]
					[[unroll]] for (uint e = 0; e < 4; e++) {
						w[e] = loadB4(bAt[4 * j + e] + k / 4);
					}
					[[unroll]] for (uint kk = 0; kk < 4; kk++) {
						bv[kk] = vec4(w[0][kk], w[1][kk], w[2][kk], w[3][kk]);
					}
				}
				[[unroll]] for (uint i = 0; i < TM; i++) {
					vec4 t = acc[i][j];
					t = fma(vec4(av[i].x), bv[0], t);
					t = fma(vec4(av[i].y), bv[1], t);
					t = fma(vec4(av[i].z), bv[2], t);
					t = fma(vec4(av[i].w), bv[3], t);
					acc[i][j] = t;
				}
			}
		}
	} else {
		// One k per step, scalar loads: element (m, k) of op(A) is a[aAt[r] + k * aStep].
		const uint aStep = TRANS_A == 0 ? 1 : p.lda;
		const uint bStep = TRANS_B == 0 ? p.ldb : 1;
		uint aAt[RA]; // row row0 + lane + SG * r, clamped
		[[unroll]] for (uint r = 0; r < RA; r++) {
			const uint m = min(row0 + lane + SG * r, p.M - 1);
			aAt[r] = aBase + (TRANS_A == 0 ? m * p.lda : m);
		}
		uint bAt[TN]; // column col[j / 4] + j % 4, clamped
		[[unroll]] for (uint j = 0; j < TN; j++) {
			const uint n = min(col[j / 4] + j % 4, p.N - 1);
			bAt[j] = bBase + (TRANS_B == 0 ? n : n * p.ldb);
		}
		for (uint k = 0; k < p.K; k++) {
			float mine[RA];
			[[unroll]] for (uint r = 0; r < RA; r++) {
				mine[r] = a[aAt[r] + k * aStep];
			}
			float av[TM];
			[[unroll]] for (uint i = 0; i < TM; i++) {
				av[i] = subgroupShuffle(mine[i / SG], first + i % SG);
			}
			[[unroll]] for (uint j = 0; j < TN4; j++) {
				vec4 bv;
				[[unroll]] for (uint e = 0; e < 4; e++) {
					bv[e] = b[bAt[4 * j + e] + k * bStep];
				}
				[[unroll]] for (uint i = 0; i < TM; i++) {
					acc[i][j] = fma(vec4(av[i]), bv, acc[i][j]);
				}
			}
		}
	}

	vec4 add[TN4]; // bias of this lane's columns
	[[unroll]] for (uint j = 0; j < TN4; j++) {
		add[j] = vec4(0.0);
		if (p.hasBias != 0 && col[j] < p.N) {
			if (VEC == 1) {
				add[j] = bias4[(p.offBias + col[j]) / 4];
			} else {
				[[unroll]] for (uint e = 0; e < 4; e++) {
					add[j][e] = bias[p.offBias + min(col[j] + e, p.N - 1)];
				}
			}
		}
	}
	[[unroll]] for (uint i = 0; i < TM; i++) {
		const uint row = row0 + i;
		[[unroll]] for (uint j = 0; j < TN4; j++) {
			if (row < p.M && col[j] < p.N) {
				const uint at = cBase + row * p.ldc + col[j];
				vec4 v = p.alpha * acc[i][j];
				if (VEC == 1) {
					if (p.beta != 0.0) {
						v += p.beta * (TEXELS == 1 ? texelFetch(C4t, int(at / 4)) : c4[at / 4]);
					}
					c4[at / 4] = v + add[j];
				} else {
					[[unroll]] for (uint e = 0; e < 4; e++) {
						if (col[j] + e < p.N) {
							float x = v[e];
							if (p.beta != 0.0) {
								x += p.beta * c[at + e];
							}
							c[at + e] = x + add[j][e];
						}
					}
				}
			}
		}
	}
}
