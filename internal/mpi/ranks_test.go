//go:build mpi

package mpi

import (
	"math"
	"testing"
)

// TestRanks runs in every rank of a job (TestSumInRankOrder starts it under mpirun): the sums
// must be bitwise the rank-order sums on every rank, and Gather must return every rank's bytes.
func TestRanks(t *testing.T) {
	w, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Finalize()
	// Values whose float32 sum depends on the order, and a length that is no multiple of Size.
	value := func(r, i int) float32 { return float32(math.Pow(10, float64((r+i)%7-3))) * float32(1+i%3) / 3 }
	for _, n := range []int{1, 7, 1000} {
		buf := make([]float32, n)
		for i := range buf {
			buf[i] = value(w.Rank, i)
		}
		var scratch []float32
		if scratch, err = w.Sum(buf, scratch); err != nil {
			t.Fatal(err)
		}
		for i, got := range buf {
			want := value(0, i)
			for r := 1; r < w.Size; r++ {
				want += value(r, i)
			}
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("rank %d of %d, n %d: sum[%d] = %v, want %v (rank order)", w.Rank, w.Size, n, i, got, want)
			}
		}
	}
	all, err := w.Gather([]byte{byte(w.Rank), byte(w.Size)})
	if err != nil {
		t.Fatal(err)
	}
	for r, b := range all {
		if b[0] != byte(r) || b[1] != byte(w.Size) {
			t.Fatalf("rank %d: gathered %v from rank %d", w.Rank, b, r)
		}
	}
}
