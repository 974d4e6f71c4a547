package data

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomBatch is b windows of t random tokens below vocab.
func randomBatch(rng *rand.Rand, b, t, vocab int) Batch {
	batch := Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
	for i := range batch.Input {
		batch.Input[i] = uint32(rng.IntN(vocab))
	}
	return batch
}

func newTestMasker(t *testing.T, seed uint64) *Masker {
	t.Helper()
	m, err := NewMasker(256, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSpecials(t *testing.T) {
	if got, want := BERTSpecials(256), (Specials{Pad: 256, CLS: 257, SEP: 258, Mask: 259}); got != want {
		t.Errorf("specials %+v, want %+v", got, want)
	}
	if MLMVocab(256) != 260 {
		t.Errorf("MLMVocab(256) = %d, want 260", MLMVocab(256))
	}
	if _, err := NewMasker(0, 1); err == nil {
		t.Error("a masker over no tokens was accepted")
	}
}

// 15% of the positions of every window are chosen; of them 80% become [MASK], 10% a random
// ordinary token and 10% stay; everything else is untouched and ignored.
func TestMaskRateAndSplit(t *testing.T) {
	const b, tt, batches = 8, 200, 100
	m := newTestMasker(t, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	var masked, random, kept int
	for s := range batches {
		in := randomBatch(rng, b, tt, 256)
		out := m.Mask(in, 0, int64(s))
		for r := range b {
			chosen := 0
			for i := r * tt; i < (r+1)*tt; i++ {
				if out.Target[i] == IgnoreIndex {
					if out.Input[i] != in.Input[i] {
						t.Fatalf("position %d is not predicted, yet its input changed", i)
					}
					continue
				}
				chosen++
				if out.Target[i] != in.Input[i] {
					t.Fatalf("target %d is %d, the original token is %d", i, out.Target[i], in.Input[i])
				}
				switch x := out.Input[i]; {
				case x == m.Specials().Mask:
					masked++
				case x == in.Input[i]:
					kept++
				case x < 256:
					random++
				default:
					t.Fatalf("input %d became %d, neither [MASK] nor an ordinary token", i, x)
				}
			}
			if chosen != 30 {
				t.Fatalf("window %d of batch %d: %d of %d positions chosen, want 30", r, s, chosen, tt)
			}
		}
	}
	n := float64(masked + random + kept)
	for _, c := range []struct {
		what      string
		got, want float64
		tolerance float64
		n         int
	}{{"[MASK]", float64(masked) / n, 0.8, 0.01, masked}, {"random", float64(random) / n, 0.1, 0.01, random},
		{"unchanged", float64(kept) / n, 0.1, 0.01, kept}} {
		if math.Abs(c.got-c.want) > c.tolerance {
			t.Errorf("%s: %.4f of the chosen positions (%d), want %.2f", c.what, c.got, c.n, c.want)
		}
	}
}

// Every window with a token that is not [PAD] predicts at least one, and [PAD] is never chosen.
func TestMaskNeverAllIgnored(t *testing.T) {
	m := newTestMasker(t, 5)
	pad := m.Specials().Pad
	rng := rand.New(rand.NewPCG(3, 4))
	for tt := 1; tt <= 12; tt++ {
		for s := range 50 {
			in := randomBatch(rng, 3, tt, 256)
			for i := range in.Input[:tt] { // the first window: all but its first token padding
				if i > 0 {
					in.Input[i] = pad
				}
			}
			for i := range in.Input[2*tt:] { // the last: all padding
				in.Input[2*tt+i] = pad
			}
			out := m.Mask(in, 1, int64(s))
			for r := range 2 {
				counted := 0
				for i := r * tt; i < (r+1)*tt; i++ {
					if out.Target[i] != IgnoreIndex {
						counted++
					}
				}
				want := max(1, int(math.Round(0.15*float64(tt))))
				if r == 0 {
					want = 1
				}
				if counted != want {
					t.Fatalf("T=%d, window %d: %d targets counted, want %d", tt, r, counted, want)
				}
			}
			for i := 2 * tt; i < 3*tt; i++ {
				if out.Target[i] != IgnoreIndex || out.Input[i] != pad {
					t.Fatalf("T=%d: an all-padding window was masked", tt)
				}
			}
		}
	}
}

// The masking depends only on the seed and the key (epoch, step), and leaves its input alone.
func TestMaskDeterministic(t *testing.T) {
	in := randomBatch(rand.New(rand.NewPCG(5, 6)), 4, 64, 256)
	orig := append([]uint32(nil), in.Input...)
	a := newTestMasker(t, 9).Mask(in, 2, 7)
	b := newTestMasker(t, 9).Mask(in, 2, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed and key masked differently")
	}
	if !reflect.DeepEqual(in.Input, orig) {
		t.Fatal("Mask changed its input batch")
	}
	for _, c := range []struct {
		what        string
		seed        uint64
		epoch, step int64
	}{{"seed", 10, 2, 7}, {"epoch", 9, 3, 7}, {"step", 9, 2, 8}} {
		if other := newTestMasker(t, c.seed).Mask(in, c.epoch, c.step); reflect.DeepEqual(a.Target, other.Target) {
			t.Errorf("another %s masked the same positions", c.what)
		}
	}
	// Windows of one batch are masked independently.
	for r := 1; r < 4; r++ {
		if reflect.DeepEqual(a.Target[:64], a.Target[r*64:(r+1)*64]) {
			t.Errorf("windows 0 and %d have the same targets", r)
		}
	}
}

// A Batcher restored from a saved state yields the same masked batches.
func TestMaskerNextResumes(t *testing.T) {
	tokens := seq(3000)
	newPair := func() (*Batcher, *Masker) {
		bt, err := NewBatcher(tokens, 4, 16, 11)
		if err != nil {
			t.Fatal(err)
		}
		return bt, newTestMasker(t, 11)
	}
	bt, m := newPair()
	for range 50 { // past the end of the first epoch
		m.Next(bt)
	}
	saved := bt.State()
	var want []Batch
	for range 5 {
		want = append(want, m.Next(bt))
	}
	bt2, m2 := newPair()
	if err := bt2.Restore(saved); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got := m2.Next(bt2); !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("batch %d after resuming differs", i)
		}
	}
	eval := []Batch{want[0], want[1]}
	if !reflect.DeepEqual(m.MaskEval(eval), m2.MaskEval(eval)) {
		t.Error("validation batches masked differently")
	}
}
