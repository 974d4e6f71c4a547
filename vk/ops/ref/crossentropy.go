package ref

import "math"

// CrossEntropy returns the loss of each of rows rows of logits (rows x vocab, row-major):
// logsumexp(row) - row[target], or 0 for a row whose target is ignore. A target outside the
// vocabulary (other than ignore) gives NaN. With label smoothing e > 0 the target distribution
// is e/vocab on every class plus 1-e on the target: logsumexp(row) - (1-e) row[target] - e mean(row).
func CrossEntropy(logits []float64, targets []uint32, rows, vocab int, ignore uint32, smoothing float64) []float64 {
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
			var mean float64
			for _, x := range row {
				mean += x / float64(vocab)
			}
			losses[r] = logSumExp(row) - (1-smoothing)*row[t] - smoothing*mean
		}
	}
	return losses
}

// CrossEntropyBackward returns the gradient of sum(losses) * scale with respect to the logits:
// (softmax(row) - q) * scale for every row, zero for an ignored row, where q is the target
// distribution (one-hot, or smoothed as in CrossEntropy). With scale = 1/count, count the number
// of non-ignored targets, it is the gradient of the mean loss.
func CrossEntropyBackward(logits []float64, targets []uint32, rows, vocab int, ignore uint32, smoothing, scale float64) []float64 {
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
			d[j] = (math.Exp(x-lse) - smoothing/float64(vocab)) * scale
		}
		d[t] -= (1 - smoothing) * scale
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
