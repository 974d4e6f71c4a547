package ref

import "math"

// GradNorm is the L2 norm of all the gradients together, as if they were one vector.
func GradNorm(grads ...[]float64) float64 {
	var s float64
	for _, g := range grads {
		for _, v := range g {
			s += v * v
		}
	}
	return math.Sqrt(s)
}

// ClipScale is the factor gradient clipping multiplies every gradient by, as
// torch.nn.utils.clip_grad_norm_ computes it: min(1, maxNorm/(norm+1e-6)); 1 when maxNorm <= 0
// (clipping off).
func ClipScale(norm, maxNorm float64) float64 {
	if maxNorm <= 0 {
		return 1
	}
	return math.Min(1, maxNorm/(norm+1e-6))
}
