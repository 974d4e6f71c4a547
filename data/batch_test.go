package data

import (
	"errors"
	"reflect"
	"testing"
)

// seq returns the stream 0, 1, ..., n-1, so a token is its own position.
func seq(n int) []uint32 {
	s := make([]uint32, n)
	for i := range s {
		s[i] = uint32(i)
	}
	return s
}

func TestBatcherWindows(t *testing.T) {
	const b, tt = 3, 8
	tokens := seq(200)
	bt, err := NewBatcher(tokens, b, tt, 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	steps := bt.StepsPerEpoch()
	for range steps {
		batch := bt.Next()
		if batch.B != b || batch.T != tt || len(batch.Input) != b*tt || len(batch.Target) != b*tt {
			t.Fatalf("batch shape %dx%d, %d/%d tokens", batch.B, batch.T, len(batch.Input), len(batch.Target))
		}
		for r := range b {
			row := batch.Input[r*tt : (r+1)*tt]
			if seen[row[0]] {
				t.Errorf("window at %d served twice in one epoch", row[0])
			}
			seen[row[0]] = true
			for j := range tt {
				if row[j] != row[0]+uint32(j) || batch.Target[r*tt+j] != row[j]+1 {
					t.Fatalf("row %d is not a contiguous window with shifted targets: %v", r, row)
				}
			}
		}
	}
	if s := bt.State(); s.Epoch != 0 || s.Step != int64(steps) {
		t.Errorf("state after one epoch %+v", s)
	}
	bt.Next()
	if s := bt.State(); s.Epoch != 1 || s.Step != 1 {
		t.Errorf("state after rolling over %+v", s)
	}
}

func TestBatcherDeterminism(t *testing.T) {
	tokens := seq(1000)
	run := func(seed int64, n int) []Batch {
		bt, err := NewBatcher(tokens, 4, 16, seed)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]Batch, n)
		for i := range out {
			out[i] = bt.Next()
		}
		return out
	}
	a, b := run(1, 40), run(1, 40)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed, different batches")
	}
	if reflect.DeepEqual(a, run(2, 40)) {
		t.Error("different seeds, same batches")
	}
	// Epochs differ from each other (offset and order are drawn per epoch).
	bt, _ := NewBatcher(tokens, 4, 16, 1)
	steps := bt.StepsPerEpoch()
	if reflect.DeepEqual(a[:5], a[steps:steps+5]) {
		t.Error("epoch 1 repeats epoch 0")
	}
}

func TestBatcherResume(t *testing.T) {
	tokens := seq(777)
	orig, err := NewBatcher(tokens, 2, 10, 42)
	if err != nil {
		t.Fatal(err)
	}
	steps := orig.StepsPerEpoch()
	// Save at several points, including mid-epoch and at an epoch's end.
	for _, at := range []int{0, 5, steps, steps + 3, 3*steps - 1} {
		a, _ := NewBatcher(tokens, 2, 10, 42)
		for range at {
			a.Next()
		}
		saved := a.State()
		b, _ := NewBatcher(tokens, 2, 10, 0) // seed comes from the state
		if err := b.Restore(saved); err != nil {
			t.Fatalf("restore at %d: %v", at, err)
		}
		for i := range 2*steps + 1 {
			if x, y := a.Next(), b.Next(); !reflect.DeepEqual(x, y) {
				t.Fatalf("saved at %d: batch %d after resume differs", at, i)
			}
		}
	}

	b, _ := NewBatcher(tokens, 2, 10, 42)
	bad := b.State()
	bad.T = 11
	if err := b.Restore(bad); err == nil {
		t.Error("restored a state for another shape")
	}
	bad = b.State()
	bad.Step = 1 << 40
	if err := b.Restore(bad); err == nil || b.State().Step != 0 {
		t.Errorf("restored a step past the epoch: %v, state %+v", err, b.State())
	}
}

func TestBatcherTooSmall(t *testing.T) {
	if _, err := NewBatcher(seq(33), 4, 8, 0); err != nil {
		t.Fatalf("B*T+1 tokens refused: %v", err)
	}
	_, err := NewBatcher(seq(32), 4, 8, 0)
	var ts *TooSmallError
	if !errors.As(err, &ts) || ts.Tokens != 32 {
		t.Fatalf("error %v", err)
	}
	want := "corpus too small for one batch: 32 tokens, need at least B*T+1 = 33 (B=4, T=8)"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := EvalBatches(seq(32), 4, 8, 0); !errors.As(err, &ts) {
		t.Errorf("EvalBatches: %v", err)
	}
	if _, err := NewBatcher(seq(100), 0, 8, 0); err == nil {
		t.Error("B=0 accepted")
	}
	// Exactly B*T+1 tokens: every batch is the whole stream.
	bt, _ := NewBatcher(seq(33), 4, 8, 0)
	for range 3 {
		batch := bt.Next()
		if batch.Target[len(batch.Target)-1] > 32 {
			t.Fatal("read past the stream")
		}
	}
}

func TestEvalBatches(t *testing.T) {
	tokens := seq(1001)
	all, err := EvalBatches(tokens, 2, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 50 || all[0].Input[0] != 0 || all[0].Input[10] != 10 || all[49].Target[19] != 1000 {
		t.Fatalf("%d batches, first rows at %d, %d", len(all), all[0].Input[0], all[0].Input[10])
	}
	few, err := EvalBatches(tokens, 2, 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EvalBatches(tokens, 2, 10, 5)
	if len(few) != 5 || !reflect.DeepEqual(few, again) {
		t.Fatalf("%d batches, repeatable %v", len(few), reflect.DeepEqual(few, again))
	}
	// Spread over the stream: the last window is in the last tenth.
	if last := few[4].Input[10]; last < 900 || last%10 != 0 {
		t.Errorf("last window starts at %d", last)
	}
	for _, b := range few {
		for i := range b.Input {
			if b.Target[i] != b.Input[i]+1 {
				t.Fatal("targets not shifted by one")
			}
		}
	}
}
