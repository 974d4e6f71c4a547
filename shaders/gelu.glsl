// gelu.glsl: GPT-2's GELU and its derivative, shared by gelu.comp and gelu_backward.comp
// (include it after common.glsl).
//
// gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). Since 0.5 (1 + tanh(u)) =
// s = 1 / (1 + exp(-2u)), gelu(x) = x s: no tanh (whose lowering can overflow to NaN for large
// |u|), and exp's overflow to +inf gives the right limit, s = 0. The derivative is
// gelu'(x) = s + 2 x s (1 - s) du/dx with du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2). For
// |x| >= 20, s (1 - s) is exactly 0 in fp32, so the second term uses x clamped to [-20, 20]:
// the same value, without 0 * inf = NaN when x^2 overflows.

#ifndef VKTRAIN_GELU_GLSL
#define VKTRAIN_GELU_GLSL

const float GELU_K = 0.7978845608028654; // sqrt(2/pi)
const float GELU_C = 0.044715;

vec4 geluGate(vec4 x) {
	return 1.0 / (1.0 + exp(-2.0 * GELU_K * x * (1.0 + GELU_C * x * x)));
}

vec4 gelu(vec4 x) {
	return x * geluGate(x);
}

vec4 geluGrad(vec4 x) {
	const vec4 s = geluGate(x);
	const vec4 xc = clamp(x, -20.0, 20.0);
	return s + 2.0 * xc * s * (1.0 - s) * GELU_K * (1.0 + 3.0 * GELU_C * xc * xc);
}

#endif
