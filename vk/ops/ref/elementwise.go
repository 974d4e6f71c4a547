package ref

import "math"

// Add returns a + b element by element.
func Add(a, b []float64) []float64 {
	y := make([]float64, len(a))
	for i := range y {
		y[i] = a[i] + b[i]
	}
	return y
}

// AddBias returns x (rows x cols, row-major) with bias[c] added to every element of column c.
func AddBias(x, bias []float64, rows, cols int) []float64 {
	y := make([]float64, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			y[r*cols+c] = x[r*cols+c] + bias[c]
		}
	}
	return y
}

// BiasGrad returns the column sums of dy (rows x cols): the gradient of a broadcast bias.
func BiasGrad(dy []float64, rows, cols int) []float64 {
	db := make([]float64, cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			db[c] += dy[r*cols+c]
		}
	}
	return db
}

// geluK is sqrt(2/pi), the scale inside GPT-2's tanh approximation of GELU.
var geluK = math.Sqrt(2 / math.Pi)

// GeluForward returns GPT-2's GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), of each element.
func GeluForward(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = 0.5 * v * (1 + math.Tanh(geluK*(v+0.044715*v*v*v)))
	}
	return y
}

// GeluBackward returns dx = dy * gelu'(x) for GeluForward.
func GeluBackward(x, dy []float64) []float64 {
	dx := make([]float64, len(x))
	for i, v := range x {
		t := math.Tanh(geluK * (v + 0.044715*v*v*v))
		du := geluK * (1 + 3*0.044715*v*v)
		dx[i] = dy[i] * (0.5*(1+t) + 0.5*v*(1-t*t)*du)
	}
	return dx
}
