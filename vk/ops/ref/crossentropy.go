package ref

import "math"

// CrossEntropy returns the loss of each of rows rows of logits (rows x vocab, row-major):
// logsumexp(row) - row[target], or 0 for a row whose target is ignore. A target outside the
// vocabulary (other than ignore) gives NaN.
func CrossEntropy(logits []float64, targets []uint32, rows, vocab int, ignore uint32) []float64 {
	losses := make([]float64, rows)
	for r := range losses {
		t := targets[r]
		switch {
		case t == ignore:
			losses[r] = 0
		case int(t) >= vocab:
			losses[r] = math.NaN()
		default:
			row := logits[r*vocab : (r+1)*vocab]
			losses[r] = logSumExp(row) - row[t]
		}
	}
	return losses
}

// CrossEntropyBackward returns the gradient of sum(losses) * scale with respect to the logits:
// (softmax(row) - onehot(target)) * scale for every row, zero for an ignored row. With scale =
// 1/count, count the number of non-ignored targets, it is the gradient of the mean loss.
func CrossEntropyBackward(logits []float64, targets []uint32, rows, vocab int, ignore uint32, scale float64) []float64 {
	dlogits := make([]float64, rows*vocab)
	for r := 0; r < rows; r++ {
		t := targets[r]
		if t == ignore {
			continue
		}
		row, d := logits[r*vocab:(r+1)*vocab], dlogits[r*vocab:(r+1)*vocab]
		if int(t) >= vocab {
			for j := range d {
				d[j] = math.NaN()
			}
			continue
		}
		lse := logSumExp(row)
		for j, x := range row {
			d[j] = math.Exp(x-lse) * scale
		}
		d[t] -= scale
	}
	return dlogits
}

// MeanLoss is the mean of the losses of the non-ignored targets, 0 when every target is ignored.
func MeanLoss(losses []float64, targets []uint32, ignore uint32) float64 {
	var sum float64
	count := 0
	for r, l := range losses {
		if targets[r] != ignore {
			sum += l
			count++
		}
	}
	if count == 0 {
		return 0
	}
	return sum / float64(count)
}

// logSumExp is log(sum(exp(x))), computed stably.
func logSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}
