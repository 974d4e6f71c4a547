package ref

import "math"

// LayerNormForward normalises each row of x (rows x cols) to zero mean and unit variance and
// applies gamma and beta: y = (x - mean) * rstd * gamma + beta, with the biased variance and
// rstd = 1 / sqrt(var + eps) as in PyTorch. It also returns each row's mean and rstd.
func LayerNormForward(x, gamma, beta []float64, rows, cols int, eps float64) (y, mean, rstd []float64) {
	y, mean, rstd = make([]float64, rows*cols), make([]float64, rows), make([]float64, rows)
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		var sum float64
		for _, v := range row {
			sum += v
		}
		m := sum / float64(cols)
		var sq float64
		for _, v := range row {
			sq += (v - m) * (v - m)
		}
		s := 1 / math.Sqrt(sq/float64(cols)+eps)
		for c, v := range row {
			y[r*cols+c] = (v-m)*s*gamma[c] + beta[c]
		}
		mean[r], rstd[r] = m, s
	}
	return y, mean, rstd
}

// LayerNormBackward returns the gradients of LayerNormForward with respect to x, gamma and
// beta, given the mean and rstd it saved and the output gradient dy. With xhat = (x - mean) *
// rstd and g = dy * gamma, per row: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
func LayerNormBackward(x, gamma, mean, rstd, dy []float64, rows, cols int) (dx, dgamma, dbeta []float64) {
	dx, dgamma, dbeta = make([]float64, rows*cols), make([]float64, cols), make([]float64, cols)
	n := float64(cols)
	for r := 0; r < rows; r++ {
		var sumG, sumGX float64
		for c := 0; c < cols; c++ {
			i := r*cols + c
			xhat := (x[i] - mean[r]) * rstd[r]
			g := dy[i] * gamma[c]
			sumG += g
			sumGX += g * xhat
			dgamma[c] += dy[i] * xhat
			dbeta[c] += dy[i]
		}
		for c := 0; c < cols; c++ {
			i := r*cols + c
			xhat := (x[i] - mean[r]) * rstd[r]
			dx[i] = rstd[r] * (dy[i]*gamma[c] - sumG/n - xhat*sumGX/n)
		}
	}
	return dx, dgamma, dbeta
}
