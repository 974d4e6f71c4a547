package data

import (
	"fmt"
	"math/bits"
)

// Batch is B rows of T tokens for next-token prediction: Target[i] is the
// token that follows Input[i] in the stream. Row r is Input[r*T : (r+1)*T].
// An image batch (ViT) holds B images and their labels instead, and T is 0.
type Batch struct {
	B, T   int
	Input  []uint32
	Target []uint32

	Images []float32 // B normalised images, row-major, one after another
	Labels []uint32  // B class labels; IgnoreIndex is not counted
}

// TooSmallError reports a token stream too short for one B x T batch.
type TooSmallError struct {
	Tokens int // tokens in the stream
	B, T   int
}

// Error says how many tokens there are and how many one batch needs.
func (e *TooSmallError) Error() string {
	return fmt.Sprintf("corpus too small for one batch: %d tokens, need at least B*T+1 = %d (B=%d, T=%d)",
		e.Tokens, e.B*e.T+1, e.B, e.T)
}

// checkShape validates B and T and that n tokens hold one batch.
func checkShape(n, b, t int) error {
	if b < 1 || t < 1 {
		return fmt.Errorf("batch shape B=%d, T=%d: both must be at least 1", b, t)
	}
	if n < b*t+1 {
		return &TooSmallError{Tokens: n, B: b, T: t}
	}
	return nil
}

// BatcherState is where a Batcher is in its sequence of batches. Saved with a
// checkpoint and handed to Restore, it makes a resumed run read exactly the
// batches the uninterrupted run would have read.
type BatcherState struct {
	Seed   int64 `json:"seed" toml:"seed"`
	Epoch  int64 `json:"epoch" toml:"epoch"`   // passes over the stream completed
	Step   int64 `json:"step" toml:"step"`     // batches served in this epoch
	B      int   `json:"b" toml:"b"`           // rows per batch
	T      int   `json:"t" toml:"t"`           // tokens per row
	Tokens int   `json:"tokens" toml:"tokens"` // length of the stream
}

// Batcher serves training batches from a token stream, deterministically
// from a seed. Each epoch cuts the stream into non-overlapping windows of
// T+1 tokens (T inputs, the last shared with the next window), starting at
// an offset in [0, T) drawn for that epoch, shuffles the windows, and serves
// them B at a time; windows left over at the end of an epoch are skipped.
type Batcher struct {
	tokens []uint32
	st     BatcherState

	// Cached layout of epoch st.Epoch (valid while permEpoch == st.Epoch).
	permEpoch int64
	offset    int
	perm      []int32
}

// NewBatcher returns a Batcher over tokens serving b x t batches, at the
// start of epoch 0.
func NewBatcher(tokens []uint32, b, t int, seed int64) (*Batcher, error) {
	if err := checkShape(len(tokens), b, t); err != nil {
		return nil, err
	}
	if len(tokens)/t > 1<<31-1 {
		return nil, fmt.Errorf("batcher: %d windows of %d tokens is too many", len(tokens)/t, t)
	}
	return &Batcher{
		tokens:    tokens,
		st:        BatcherState{Seed: seed, B: b, T: t, Tokens: len(tokens)},
		permEpoch: -1,
	}, nil
}

// State returns the position of the next batch.
func (bt *Batcher) State() BatcherState { return bt.st }

// Restore moves the Batcher to s, which must come from a Batcher with the
// same batch shape over a stream of the same length.
func (bt *Batcher) Restore(s BatcherState) error {
	if s.B != bt.st.B || s.T != bt.st.T || s.Tokens != bt.st.Tokens {
		return fmt.Errorf("batcher state is for B=%d, T=%d over %d tokens; this batcher has B=%d, T=%d over %d tokens",
			s.B, s.T, s.Tokens, bt.st.B, bt.st.T, bt.st.Tokens)
	}
	if s.Epoch < 0 || s.Step < 0 {
		return fmt.Errorf("batcher state has negative position: epoch %d, step %d", s.Epoch, s.Step)
	}
	prev := bt.st
	bt.st = s
	bt.permEpoch = -1
	bt.layout()
	if steps := bt.epochSteps(); s.Step > int64(steps) {
		bt.st = prev
		bt.permEpoch = -1
		return fmt.Errorf("batcher state step %d is past the %d batches of epoch %d", s.Step, steps, s.Epoch)
	}
	return nil
}

// Next returns the next batch and advances.
func (bt *Batcher) Next() Batch {
	bt.layout()
	if bt.st.Step >= int64(bt.epochSteps()) {
		bt.st.Epoch++
		bt.st.Step = 0
		bt.layout()
	}
	b, t := bt.st.B, bt.st.T
	out := Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
	base := int(bt.st.Step) * b
	for r := range b {
		start := bt.offset + int(bt.perm[base+r])*t
		copy(out.Input[r*t:(r+1)*t], bt.tokens[start:start+t])
		copy(out.Target[r*t:(r+1)*t], bt.tokens[start+1:start+t+1])
	}
	bt.st.Step++
	return out
}

// StepsPerEpoch returns the number of batches in the current epoch (it can
// differ by one between epochs, as the window offset changes).
func (bt *Batcher) StepsPerEpoch() int {
	bt.layout()
	return bt.epochSteps()
}

func (bt *Batcher) epochSteps() int { return len(bt.perm) / bt.st.B }

// layout computes the offset and window order of the current epoch.
func (bt *Batcher) layout() {
	if bt.permEpoch == bt.st.Epoch {
		return
	}
	n, b, t := len(bt.tokens), bt.st.B, bt.st.T
	rng := newSplitMix(uint64(bt.st.Seed), uint64(bt.st.Epoch))
	// Any offset up to n-1-b*t leaves at least b windows.
	bt.offset = rng.intn(min(t-1, n-1-b*t) + 1)
	windows := (n - 1 - bt.offset) / t
	if cap(bt.perm) >= windows {
		bt.perm = bt.perm[:windows]
	} else {
		bt.perm = make([]int32, windows)
	}
	for i := range bt.perm {
		bt.perm[i] = int32(i)
	}
	for i := windows - 1; i > 0; i-- { // Fisher-Yates
		j := rng.intn(i + 1)
		bt.perm[i], bt.perm[j] = bt.perm[j], bt.perm[i]
	}
	bt.permEpoch = bt.st.Epoch
}

// splitMix is SplitMix64, written out here so that batch order never changes
// with the Go release (resumed runs depend on it).
type splitMix struct{ s uint64 }

func newSplitMix(seed, stream uint64) *splitMix {
	r := &splitMix{s: seed}
	r.s = r.next() ^ stream*0xd1b54a32d192ed03
	return r
}

func (r *splitMix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a value in [0, n) (multiply-shift; the bias is below 2^-32
// for the sizes used here).
func (r *splitMix) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// EvalBatches returns fixed validation batches from tokens: non-overlapping
// windows of T+1 tokens from the start of the stream, grouped B at a time.
// With maxBatches > 0 and more windows than that needs, the windows used are
// spread evenly over the stream. The result depends only on the arguments,
// so every evaluation reads the same tokens.
func EvalBatches(tokens []uint32, b, t, maxBatches int) ([]Batch, error) {
	if err := checkShape(len(tokens), b, t); err != nil {
		return nil, err
	}
	windows := (len(tokens) - 1) / t
	nb := windows / b
	if maxBatches > 0 && nb > maxBatches {
		nb = maxBatches
	}
	count := nb * b
	out := make([]Batch, nb)
	for i := range out {
		out[i] = Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
		for r := range b {
			k := i*b + r
			start := int(int64(k)*int64(windows)/int64(count)) * t
			copy(out[i].Input[r*t:(r+1)*t], tokens[start:start+t])
			copy(out[i].Target[r*t:(r+1)*t], tokens[start+1:start+t+1])
		}
	}
	return out, nil
}
