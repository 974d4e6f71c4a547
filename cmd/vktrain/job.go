package main

import (
	"fmt"
	"io"
	"os"

	"github.com/vktrain/vktrain/internal/mpi"
)

// joinJob makes the process a rank of the MPI job that started it (built with -tags mpi and
// run by mpirun or Slurm), else a job of one rank. It returns where the rank's messages go:
// stderr on rank 0, nowhere on the others (rank 0 speaks for the job; errors still show).
func joinJob() (*mpi.World, io.Writer, error) {
	w, err := mpi.Init()
	if err != nil {
		return nil, nil, err
	}
	if w.Rank > 0 {
		return w, io.Discard, nil
	}
	return w, os.Stderr, nil
}

// leaveJob ends the rank: a rank that failed (*errp) in a job of more than one prints why and
// aborts the whole job at once, so that no rank waits for it in a collective; otherwise it
// leaves the job normally.
func leaveJob(w *mpi.World, errp *error) {
	if *errp != nil && w.Size > 1 {
		fmt.Fprintf(os.Stderr, "vktrain: rank %d of %d: %v; aborting the job\n", w.Rank, w.Size, *errp)
		w.Abort(1)
	}
	if err := w.Finalize(); *errp == nil {
		*errp = err
	}
}
