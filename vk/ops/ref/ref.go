// Package ref holds float64 reference implementations of vktrain's kernels, forward and
// backward side by side, for the kernel tests and the CPU reference model. They favour
// clarity over speed.
package ref

// NumericGrad returns the gradient of the scalar function f at x by central differences with
// step h: (f(x + h e_i) - f(x - h e_i)) / 2h for every i. x is restored before it returns.
func NumericGrad(f func(x []float64) float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		orig := x[i]
		x[i] = orig + h
		up := f(x)
		x[i] = orig - h
		down := f(x)
		x[i] = orig
		g[i] = (up - down) / (2 * h)
	}
	return g
}

// F64 widens a float32 slice.
func F64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// Dot is the inner product of a and b (a weighted sum used to turn an output into a scalar loss
// for finite differences: L = Dot(y, dy) has dL/dy = dy).
func Dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
