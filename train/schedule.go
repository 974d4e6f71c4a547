package train

import (
	"math"

	"github.com/vktrain/vktrain/config"
)

// LearningRate is the schedule's rate at step (0-based) of steps: a linear warmup to lr over
// warmup steps, then a cosine or linear decay to minLR at the last step, or constant.
func LearningRate(t config.Train, step int) float64 {
	if step < t.Warmup {
		return t.LR * float64(step+1) / float64(t.Warmup)
	}
	span := t.Steps - t.Warmup - 1
	progress := 1.0
	if span > 0 {
		progress = math.Min(1, float64(step-t.Warmup)/float64(span))
	}
	switch t.Decay {
	case "cosine":
		return t.MinLR + 0.5*(1+math.Cos(math.Pi*progress))*(t.LR-t.MinLR)
	case "linear":
		return t.LR - (t.LR-t.MinLR)*progress
	}
	return t.LR
}
