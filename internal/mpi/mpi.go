// Package mpi is the part of the MPI standard that data-parallel training needs: the job's
// ranks, a few collectives on float32 and byte buffers, and abort. Built with -tags mpi it is a
// thin cgo binding of the C API (Open MPI by default, MPICH with -tags mpi,mpich), for programs
// started by mpirun or Slurm; without the tag it is a job of one rank that needs no MPI.
//
// Every call of a World may come from any goroutine, one at a time (the binding asks MPI for
// MPI_THREAD_SERIALIZED and serialises the calls itself).
package mpi

import "fmt"

// World is this process's place in the job.
type World struct {
	Rank      int // 0 .. Size-1
	Size      int // ranks in the job
	LocalRank int // rank among the job's processes on this host (picks the device)
	impl
}

// Sum adds buf across the ranks in place, in a fixed order, so that every rank ends with
// bitwise the same sums and a rerun gives the same bits (MPI_Allreduce's order is unspecified):
// rank j sums the j-th of Size blocks of every rank's buf in rank order (reduce-scatter through
// all-to-all), then every rank gathers the summed blocks (all-gather). scratch is reused between
// calls; Sum returns it, grown to what it needed.
func (w *World) Sum(buf, scratch []float32) ([]float32, error) {
	if w.Size == 1 || len(buf) == 0 {
		return scratch, nil
	}
	block := (len(buf) + w.Size - 1) / w.Size
	padded := block * w.Size
	need := 2*padded + block
	if cap(scratch) < need {
		scratch = make([]float32, need)
	}
	scratch = scratch[:need]
	send, recv, mine := scratch[:padded], scratch[padded:2*padded], scratch[2*padded:]
	copy(send, buf)
	clear(send[len(buf):])
	if err := w.alltoall(send, recv, block); err != nil {
		return scratch, fmt.Errorf("mpi: all-to-all of %d floats: %w", padded, err)
	}
	copy(mine, recv[:block])
	for r := 1; r < w.Size; r++ {
		for i, v := range recv[r*block : (r+1)*block] {
			mine[i] += v
		}
	}
	if err := w.allgather(mine, send); err != nil {
		return scratch, fmt.Errorf("mpi: all-gather of %d floats: %w", padded, err)
	}
	copy(buf, send[:len(buf)])
	return scratch, nil
}

// Gather returns every rank's b (all of the same length), in rank order.
func (w *World) Gather(b []byte) ([][]byte, error) {
	all := make([]byte, len(b)*w.Size)
	if err := w.allgatherBytes(b, all); err != nil {
		return nil, fmt.Errorf("mpi: all-gather of %d bytes: %w", len(b), err)
	}
	out := make([][]byte, w.Size)
	for r := range out {
		out[r] = all[r*len(b) : (r+1)*len(b)]
	}
	return out, nil
}
