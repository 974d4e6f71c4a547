package ref

import "math"

// AdamW holds the hyperparameters of torch.optim.AdamW: decoupled weight decay and bias
// correction.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
}

// Update applies step t (from 1) to param with gradient grad, updating the moments m and v in
// place, exactly as torch.optim.AdamW does:
//
//	p -= lr*wd*p   (only if decay)
//	m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g*g
//	p -= lr * mhat / (sqrt(vhat) + eps),  mhat = m/(1-beta1^t), vhat = v/(1-beta2^t)
func (h AdamW) Update(param, grad, m, v []float64, t int, decay bool) {
	bc1 := 1 - math.Pow(h.Beta1, float64(t))
	bc2 := 1 - math.Pow(h.Beta2, float64(t))
	for i, g := range grad {
		if decay {
			param[i] -= h.LR * h.WeightDecay * param[i]
		}
		m[i] = h.Beta1*m[i] + (1-h.Beta1)*g
		v[i] = h.Beta2*v[i] + (1-h.Beta2)*g*g
		param[i] -= h.LR * (m[i] / bc1) / (math.Sqrt(v[i]/bc2) + h.Eps)
	}
}
