package train

import (
	"math"
	"testing"

	"github.com/vktrain/vktrain/config"
)

func TestLearningRate(t *testing.T) {
	c := config.Train{LR: 1, MinLR: 0.1, Warmup: 10, Steps: 110, Decay: "cosine"}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	for _, tc := range []struct {
		decay string
		step  int
		want  float64
	}{
		{"cosine", 0, 0.1}, {"cosine", 9, 1}, {"cosine", 10, 1}, {"cosine", 109, 0.1},
		{"linear", 10, 1}, {"linear", 109, 0.1}, {"constant", 50, 1}, {"constant", 3, 0.4},
	} {
		c.Decay = tc.decay
		if got := LearningRate(c, float64(tc.step)); !near(got, tc.want) {
			t.Errorf("%s step %d: %v, want %v", tc.decay, tc.step, got, tc.want)
		}
	}
	c.Decay = "cosine"
	mid := LearningRate(c, 10+99/2)
	if mid < 0.5 || mid > 0.6 {
		t.Errorf("cosine midpoint %v", mid)
	}
	for s := 11; s < 110; s++ {
		if LearningRate(c, float64(s)) > LearningRate(c, float64(s-1)) {
			t.Fatalf("cosine decay rises at step %d", s)
		}
	}
}
