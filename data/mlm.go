package data

import (
	"fmt"
	"math"
)

// IgnoreIndex marks a target the loss does not count (model.IgnoreIndex).
const IgnoreIndex = 0xFFFFFFFF

// Specials are the ids of BERT's special tokens, which follow the tokenizer's vocabulary in
// this order.
type Specials struct {
	Pad, CLS, SEP, Mask uint32
}

// NumSpecials is how many special tokens BERT appends.
const NumSpecials = 4

// BERTSpecials returns the special-token ids after a tokenizer of tokVocab tokens.
func BERTSpecials(tokVocab int) Specials {
	v := uint32(tokVocab)
	return Specials{Pad: v, CLS: v + 1, SEP: v + 2, Mask: v + 3}
}

// MLMVocab is the token-table size BERT needs over a tokenizer of tokVocab tokens (260 for the
// byte tokenizer).
func MLMVocab(tokVocab int) int { return tokVocab + NumSpecials }

// Masking, as BERT's pretraining does it.
const (
	MaskRate   = 0.15 // of a window's positions, at least one, are predicted
	MaskAsMask = 0.8  // of those become [MASK]
	MaskRandom = 0.1  // become a random ordinary token; the rest stay as they are
)

// Masker turns windows of tokens into masked-LM batches. Its choices are counter-based: they
// depend only on its seed, the batch's key and the window's row, never on what was masked
// before, so a resumed run masks exactly as the uninterrupted one.
type Masker struct {
	seed     uint64
	tokVocab int
	sp       Specials
}

// NewMasker returns a Masker for a tokenizer of tokVocab tokens (random replacements are drawn
// from them, never a special token).
func NewMasker(tokVocab int, seed uint64) (*Masker, error) {
	if tokVocab < 1 {
		return nil, fmt.Errorf("masker: tokenizer vocabulary of %d tokens", tokVocab)
	}
	return &Masker{seed: seed ^ 0x6d61736b65645f6c, tokVocab: tokVocab, sp: BERTSpecials(tokVocab)}, nil
}

// Specials returns the special-token ids.
func (m *Masker) Specials() Specials { return m.sp }

// Mask returns the masked-LM batch of b's windows (b.Input; b.Target is not read). In each
// window, max(1, round(MaskRate · n)) of its n positions that are not [PAD] are chosen: their
// targets are the original tokens, and their inputs become [MASK] (MaskAsMask of them), a
// random token (MaskRandom) or stay. Every other target is IgnoreIndex. epoch and step key the
// batch: the same key masks the same way.
func (m *Masker) Mask(b Batch, epoch, step int64) Batch {
	out := Batch{B: b.B, T: b.T, Input: append([]uint32(nil), b.Input...), Target: make([]uint32, len(b.Input))}
	for i := range out.Target {
		out.Target[i] = IgnoreIndex
	}
	key := newSplitMix(newSplitMix(m.seed, uint64(epoch)).next(), uint64(step)).next()
	cand := make([]int, 0, b.T)
	for r := 0; r < b.B; r++ {
		rng := newSplitMix(key, uint64(r))
		cand = cand[:0]
		for i := r * b.T; i < (r+1)*b.T; i++ {
			if b.Input[i] != m.sp.Pad {
				cand = append(cand, i)
			}
		}
		if len(cand) == 0 {
			continue
		}
		k := max(1, int(math.Round(MaskRate*float64(len(cand)))))
		for j := 0; j < k; j++ { // a partial Fisher-Yates shuffle draws k positions
			c := j + rng.intn(len(cand)-j)
			cand[j], cand[c] = cand[c], cand[j]
			i := cand[j]
			out.Target[i] = b.Input[i]
			switch u := float64(rng.next()>>11) / (1 << 53); {
			case u < MaskAsMask:
				out.Input[i] = m.sp.Mask
			case u < MaskAsMask+MaskRandom:
				out.Input[i] = uint32(rng.intn(m.tokVocab))
			}
		}
	}
	return out
}

// Next draws the next batch from bt and masks it, keyed by bt's position after the draw (its
// epoch and step), so that a Batcher restored from a checkpoint's state yields the same
// masked batches.
func (m *Masker) Next(bt *Batcher) Batch {
	b := bt.Next()
	return m.Mask(b, bt.st.Epoch, bt.st.Step)
}

// MaskEval masks fixed validation batches, batch i keyed by epoch -1 and step i (keys the
// Batcher never yields), the same every time.
func (m *Masker) MaskEval(batches []Batch) []Batch {
	out := make([]Batch, len(batches))
	for i, b := range batches {
		out[i] = m.Mask(b, -1, int64(i))
	}
	return out
}
