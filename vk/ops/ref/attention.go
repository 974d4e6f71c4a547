package ref

import "math"

// Attention is the shape of a scaled-dot-product attention. q, k and v are packed in one qkv of
// shape (B, T, 3, H, Dh): q of token t, head h at ((b*T+t)*3+0)*d + h*Dh, k at +d, v at +2d, with
// d = H*Dh. The output is (B, T, H, Dh). Scores are q.k / sqrt(Dh); query i does not see key j
// when Causal and j > i, nor when KeyValid (B*T entries, nil = none) marks key j as padding (0).
// There is no dropout on the probabilities.
type Attention struct {
	B, T, H, Dh int
	Causal      bool
	KeyValid    []uint32
}

func (a Attention) d() int { return a.H * a.Dh }

// at returns the index in qkv of element c of part (0 = q, 1 = k, 2 = v) of token t, head h.
func (a Attention) at(part, b, t, h, c int) int {
	return ((b*a.T+t)*3+part)*a.d() + h*a.Dh + c
}

// outAt returns the index in the output of element c of token t, head h.
func (a Attention) outAt(b, t, h, c int) int { return (b*a.T+t)*a.d() + h*a.Dh + c }

// allowed reports whether query i of batch entry b attends to key j.
func (a Attention) allowed(b, i, j int) bool {
	if a.Causal && j > i {
		return false
	}
	return a.KeyValid == nil || a.KeyValid[b*a.T+j] != 0
}

// AttentionProbs returns the attention probabilities, shape (B, H, T, T): row (b, h, i) is the
// softmax of the allowed scores of query i, 0 for masked keys (all 0 when no key is allowed),
// and each row's log-sum-exp of the allowed scores, shape (B, H, T) (0 when none is allowed).
func AttentionProbs(a Attention, qkv []float64) (probs, lse []float64) {
	T := a.T
	probs, lse = make([]float64, a.B*a.H*T*T), make([]float64, a.B*a.H*T)
	scale := 1 / math.Sqrt(float64(a.Dh))
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.H; h++ {
			for i := 0; i < T; i++ {
				row := probs[((b*a.H+h)*T+i)*T:][:T]
				m := math.Inf(-1)
				for j := 0; j < T; j++ {
					if !a.allowed(b, i, j) {
						continue
					}
					var s float64
					for c := 0; c < a.Dh; c++ {
						s += qkv[a.at(0, b, i, h, c)] * qkv[a.at(1, b, j, h, c)]
					}
					row[j] = s * scale
					m = math.Max(m, row[j])
				}
				var sum float64
				for j := 0; j < T; j++ {
					if a.allowed(b, i, j) {
						row[j] = math.Exp(row[j] - m)
						sum += row[j]
					}
				}
				if sum == 0 {
					continue
				}
				for j := range row {
					row[j] /= sum
				}
				lse[(b*a.H+h)*T+i] = m + math.Log(sum)
			}
		}
	}
	return probs, lse
}

// AttentionForward returns the attention output o = P V, shape (B, T, H, Dh), with P from
// AttentionProbs, and the per-row log-sum-exp.
func AttentionForward(a Attention, qkv []float64) (out, lse []float64) {
	probs, lse := AttentionProbs(a, qkv)
	T := a.T
	out = make([]float64, a.B*T*a.d())
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.H; h++ {
			for i := 0; i < T; i++ {
				row := probs[((b*a.H+h)*T+i)*T:][:T]
				for j, p := range row {
					for c := 0; c < a.Dh; c++ {
						out[a.outAt(b, i, h, c)] += p * qkv[a.at(2, b, j, h, c)]
					}
				}
			}
		}
	}
	return out, lse
}

// AttentionBackward returns the gradient of AttentionForward's output with respect to qkv (same
// packed layout), given the output gradient dOut. With P recomputed, dP = dO V^T and
// dS = P * (dP - rowsum(P * dP)): dQ = dS K / sqrt(Dh), dK = dS^T Q / sqrt(Dh), dV = P^T dO.
func AttentionBackward(a Attention, qkv, dOut []float64) []float64 {
	probs, _ := AttentionProbs(a, qkv)
	T := a.T
	scale := 1 / math.Sqrt(float64(a.Dh))
	dqkv := make([]float64, len(qkv))
	dp := make([]float64, T)
	for b := 0; b < a.B; b++ {
		for h := 0; h < a.H; h++ {
			for i := 0; i < T; i++ {
				row := probs[((b*a.H+h)*T+i)*T:][:T]
				var rowDot float64 // rowsum(P * dP)
				for j := 0; j < T; j++ {
					dp[j] = 0
					for c := 0; c < a.Dh; c++ {
						dp[j] += dOut[a.outAt(b, i, h, c)] * qkv[a.at(2, b, j, h, c)]
					}
					rowDot += row[j] * dp[j]
				}
				for j := 0; j < T; j++ {
					ds := row[j] * (dp[j] - rowDot) * scale
					for c := 0; c < a.Dh; c++ {
						dqkv[a.at(0, b, i, h, c)] += ds * qkv[a.at(1, b, j, h, c)]
						dqkv[a.at(1, b, j, h, c)] += ds * qkv[a.at(0, b, i, h, c)]
						dqkv[a.at(2, b, j, h, c)] += row[j] * dOut[a.outAt(b, i, h, c)]
					}
				}
			}
		}
	}
	return dqkv
}
