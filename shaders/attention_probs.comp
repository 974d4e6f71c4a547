#version 450
// attention_probs: the unfused attention forward's first step (layout and masks:
// attention.glsl). For each query row it writes the probabilities softmax(q K^T / sqrt(DH)) to
// probs, shape (B, H, T, T) (masked keys get 0, a row with no allowed key is all 0), and the row's
// log-sum-exp to lse. The host then multiplies probs by V with matmul. It writes the T x T
// probabilities, so it serves the tests as a second opinion on attention_fwd, not training.
//
// RQ query rows per invocation (as in attention_fwd), three passes over each row: scores and
// their maximum, exponentials and their sum, normalisation.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, binding = 1) buffer Probs { float probs[]; };
layout(std430, binding = 2) writeonly buffer LSE { float lse[]; };
#define KEY_VALID_BINDING 3
#include "attention.glsl"

void softmaxRow(uint b, uint h, uint i) {
	const uint row = ((b * p.H + h) * p.T + i) * p.T;
	const uint qo = qOffset(b, i, h);
	float m = LOWEST;
	for (uint j = 0; j < p.T; j++) {
		const uint ko = kOffset(b, j, h);
		float s = 0.0;
		for (uint c = 0; c < DH; c++) {
			s += qkv[qo + c] * qkv[ko + c];
		}
		s *= p.scale;
		probs[row + j] = s;
		if (keyAllowed(b, i, j)) {
			m = max(m, s);
		}
	}
	float sum = 0.0;
	for (uint j = 0; j < p.T; j++) {
		float e = 0.0;
		if (keyAllowed(b, i, j)) {
			e = exp(probs[row + j] - m);
		}
		probs[row + j] = e;
		sum += e;
	}
	const float inv = sum > 0.0 ? 1.0 / sum : 0.0;
	for (uint j = 0; j < p.T; j++) {
		probs[row + j] *= inv;
	}
	lse[lseIndex(b, i, h)] = sum > 0.0 ? m + log(sum) : 0.0;
}

void main() {
	for (uint r = 0; r < RQ; r++) {
		const uint i = ownRow(r);
		if (i < p.T) {
			softmaxRow(rowBatch(), rowHead(), i);
		}
	}
}
