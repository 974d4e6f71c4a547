#version 450
// axpy: y[i] = alpha * x[i] + beta * y[i] for i < n. One element per invocation; 1-D grid
// (see common.glsl).
//
// As in BLAS, a zero coefficient drops its term without reading the operand, so NaN or Inf in
// the dropped operand does not leak into y:
//   beta == 0:  y = alpha * x  (y is not read: a copy/scale into uninitialised memory is fine)
//   alpha == 0: y = beta * y   (x is not read)
// scale(y, a), y = a * y, is axpy with y bound as x too (bindings 0 and 1 on the same tensor)
// and either alpha = 0, beta = a or alpha = a, beta = 0.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// x and y may be the same tensor: neither is restrict.
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };

layout(push_constant) uniform Push {
	uint n; // elements to update
	float alpha;
	float beta;
} p;

void main() {
	const uint i = elementIndex(p.n, 1u);
	if (i >= p.n) {
		return;
	}
	float r = 0.0;
	if (p.alpha != 0.0) {
		r = p.alpha * x[i];
	}
	if (p.beta != 0.0) {
		r += p.beta * y[i];
	}
	y[i] = r;
}
