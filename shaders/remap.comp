#version 450
// remap: the V-cycle's width maps (vcycle/ and method.md sections 1 and 3) over one parameter,
// viewed as a row-major rows x cols matrix whose two axes are each either unmapped or a width
// axis. A width axis of the small model has groups blocks of half channels; in the big model
// each block has 2*half channels, and small channel j of a block pairs big channels j and
// j + half of the same block (QKV is 3 blocks, heads move as whole blocks of channels).
// An axis's role says how the pair combines:
//   out: coalesce averages the pair, de-coalesce copies into both;
//   in:  coalesce sums the pair,     de-coalesce copies half into both.
//
//   coalesce   (dst small, src big): dst = beta*dst + scale * sum of the 1, 2 or 4 big sources
//   decoalesce (dst big, src small): dst = beta*dst + scale * weight * the one small source
// Depth averaging is two coalesce dispatches (scale 0.5, beta 0 then 1); interpolation is a
// de-coalesce with beta = 1 - alpha and scale = alpha into the saved big parameters.
//
// split > 0 breaks the symmetry of de-coalesced copies without changing the function: along an
// input axis the two halves W/2, W/2 of a pair become W/2 + D and W/2 - D, where D ~ N(0,
// split^2) is drawn per small element (Philox4x32 with counter {small index, stream, 0, 0}, key
// {seed, 0x5EED}, Box-Muller). The pair's inputs are equal copies, so the layer's output is
// unchanged, yet the copies now receive different gradients.
// A row-chunked parameter is mapped a band of whole rows at a time (its row axis is unmapped):
// srcOff and dstOff are the band's first elements in the bound source and destination, and
// srcFirst is the index in the whole source of the band's first element (the split's counter).
// One destination element per invocation; 1-D grid (see common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "philox.glsl"

layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) buffer Dst { float dst[]; };

const uint UNMAPPED = 0u;
const uint ROLE_OUT = 1u;
const uint ROLE_IN = 2u;

layout(push_constant) uniform Push {
	uint rows;      // destination rows
	uint cols;      // destination columns
	uint srcCols;   // source columns
	uint rowRole;   // UNMAPPED, ROLE_OUT or ROLE_IN
	uint rowHalf;   // the small block size of the row axis (unused when unmapped)
	uint colRole;
	uint colHalf;
	uint decoalesce; // 0: coalesce (dst small), 1: de-coalesce (dst big)
	float beta;
	float scale;
	float split;     // standard deviation of the antisymmetric split (de-coalesce only; 0: none)
	uint seed;
	uint stream;     // distinguishes the parameters of one switch
	uint srcOff;     // the band's first element in the bound source
	uint dstOff;     // ... and destination
	uint srcFirst;   // the index of the band's first source element in the whole source
} p;

// splitNoise is D for small element i: a standard normal from Philox and Box-Muller.
float splitNoise(uint i) {
	const uvec4 r = philox4x32(uvec4(i, p.stream, 0u, 0u), uvec2(p.seed, 0x5EEDu));
	const float u1 = float((r.x >> 8) + 1u) * (1.0 / 16777216.0); // (0, 1]
	const float u2 = float(r.y >> 8) * (1.0 / 16777216.0);        // [0, 1)
	return sqrt(-2.0 * log(u1)) * cos(6.28318530717958647692 * u2);
}

// coalesceAxis gives the two big indices of small index i and the pair's weight.
void coalesceAxis(uint i, uint role, uint half_, out uint a, out uint b, out float w) {
	if (role == UNMAPPED) {
		a = i;
		b = i;
		w = 1.0;
		return;
	}
	a = (i / half_) * 2u * half_ + i % half_;
	b = a + half_;
	w = role == ROLE_OUT ? 0.5 : 1.0;
}

// decoalesceAxis gives the small index that big index i copies, and its weight.
void decoalesceAxis(uint i, uint role, uint half_, out uint s, out float w) {
	if (role == UNMAPPED) {
		s = i;
		w = 1.0;
		return;
	}
	s = (i / (2u * half_)) * half_ + i % half_;
	w = role == ROLE_OUT ? 1.0 : 0.5;
}

void main() {
	const uint n = p.rows * p.cols;
	const uint i = elementIndex(n, 1u);
	if (i >= n) {
		return;
	}
	const uint r = i / p.cols;
	const uint c = i % p.cols;
	float v;
	if (p.decoalesce != 0u) {
		uint sr, sc;
		float wr, wc;
		decoalesceAxis(r, p.rowRole, p.rowHalf, sr, wr);
		decoalesceAxis(c, p.colRole, p.colHalf, sc, wc);
		const uint si = sr * p.srcCols + sc;
		v = wr * wc * src[p.srcOff + si];
		if (p.split != 0.0) {
			// The input axis (a matrix has at most one) says which half of the pair c or r is.
			if (p.colRole == ROLE_IN) {
				v += (c % (2u * p.colHalf) < p.colHalf ? p.split : -p.split) * splitNoise(p.srcFirst + si);
			} else if (p.rowRole == ROLE_IN) {
				v += (r % (2u * p.rowHalf) < p.rowHalf ? p.split : -p.split) * splitNoise(p.srcFirst + si);
			}
		}
	} else {
		uint r0, r1, c0, c1;
		float wr, wc;
		coalesceAxis(r, p.rowRole, p.rowHalf, r0, r1, wr);
		coalesceAxis(c, p.colRole, p.colHalf, c0, c1, wc);
		// Sum in a fixed order; an unmapped axis contributes its one index once.
		float rowSum0 = src[p.srcOff + r0 * p.srcCols + c0];
		if (p.colRole != UNMAPPED) {
			rowSum0 += src[p.srcOff + r0 * p.srcCols + c1];
		}
		float s = rowSum0;
		if (p.rowRole != UNMAPPED) {
			float rowSum1 = src[p.srcOff + r1 * p.srcCols + c0];
			if (p.colRole != UNMAPPED) {
				rowSum1 += src[p.srcOff + r1 * p.srcCols + c1];
			}
			s += rowSum1;
		}
		v = wr * wc * s;
	}
	float out_ = p.scale * v;
	if (p.beta != 0.0) {
		out_ += p.beta * dst[p.dstOff + i];
	}
	dst[p.dstOff + i] = out_;
}
