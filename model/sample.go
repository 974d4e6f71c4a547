package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/vktrain/vktrain/data"
)

// Sampling chooses the next token from a row of logits.
type Sampling struct {
	Temperature float64 // 0 picks the most likely token
	TopK        int     // sample among the k most likely tokens; 0 means all
	Seed        uint64
}

// Generate continues prompt by count tokens; a NaN or infinite logit is an error. Each new token is drawn from the logits at the last
// position of the window of the latest T tokens (positions after it are padding, which a causal
// model cannot see).
func (n *Net) Generate(prompt []uint32, count int, s Sampling) ([]uint32, error) {
	if n.Cfg.Arch != "gpt" {
		return nil, fmt.Errorf("sampling needs a GPT model, this is %s", n.Cfg.Arch)
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("sampling needs a prompt of at least one token")
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x5a3b1e))
	tokens := append([]uint32(nil), prompt...)
	window := make([]uint32, n.B*n.T)
	for i := 0; i < count; i++ {
		start := max(0, len(tokens)-n.T)
		clear(window)
		last := copy(window, tokens[start:]) - 1
		logits, err := n.Logits(window)
		if err != nil {
			return nil, err
		}
		row := logits[last*n.Vocab : (last+1)*n.Vocab]
		for j, x := range row {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("the logit of token %d is %v after %d generated tokens: the model is broken", j, x, i)
			}
		}
		tokens = append(tokens, pick(row, s, rng))
	}
	return tokens[len(prompt):], nil
}

// Logits runs the forward pass on B x T input tokens and returns the B*T x vocab logits (the
// pad columns of the GPU's rows left out).
func (n *Net) Logits(input []uint32) ([]float32, error) {
	if err := n.load(data.Batch{B: n.B, T: n.T, Input: input, Target: make([]uint32, len(input))}); err != nil {
		return nil, err
	}
	if err := n.eval.Run(); err != nil {
		return nil, err
	}
	all, err := n.act.logits.ReadFloat32()
	if err != nil {
		return nil, err
	}
	out, stride := make([]float32, 0, n.rows()*n.Vocab), n.vocabStride()
	for r := range n.rows() {
		out = append(out, all[r*stride:][:n.Vocab]...)
	}
	return out, nil
}

// pick draws a token from logits with temperature and top-k.
func pick(logits []float32, s Sampling, rng *rand.Rand) uint32 {
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if s.Temperature <= 0 {
		return uint32(idx[0])
	}
	if s.TopK > 0 && s.TopK < len(idx) {
		idx = idx[:s.TopK]
	}
	top := float64(logits[idx[0]])
	weights := make([]float64, len(idx))
	var sum float64
	for i, j := range idx {
		weights[i] = math.Exp((float64(logits[j]) - top) / s.Temperature)
		sum += weights[i]
	}
	r := rng.Float64() * sum
	for i, w := range weights {
		if r -= w; r < 0 {
			return uint32(idx[i])
		}
	}
	return uint32(idx[len(idx)-1])
}

// MeanLoss is the mean loss over the counted targets of batches (a forward pass each).
func (n *Net) MeanLoss(batches []data.Batch) (float64, error) {
	var sum float64
	var count int
	for _, b := range batches {
		s, c, err := n.Evaluate(b)
		if err != nil {
			return 0, err
		}
		sum, count = sum+s, count+c
	}
	if count == 0 {
		return 0, fmt.Errorf("no tokens to evaluate")
	}
	return sum / float64(count), nil
}
