package ref

import (
	"math"
	"testing"
)

func TestNumericGrad(t *testing.T) {
	f := func(x []float64) float64 { return x[0]*x[0]*x[1] + math.Sin(x[1]) }
	x := []float64{1.5, -0.7}
	g := NumericGrad(f, x, 1e-5)
	want := []float64{2 * 1.5 * -0.7, 1.5*1.5 + math.Cos(-0.7)}
	for i := range g {
		if math.Abs(g[i]-want[i]) > 1e-8 {
			t.Fatalf("grad[%d] = %v, want %v", i, g[i], want[i])
		}
	}
	if x[0] != 1.5 || x[1] != -0.7 {
		t.Fatalf("x not restored: %v", x)
	}
}
