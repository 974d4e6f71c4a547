//go:build !mpi

package mpi

import "os"

// Init returns the world of a program built without MPI: one rank.
func Init() (*World, error) { return &World{Size: 1}, nil }

// Enabled says whether this build can join a job of more than one rank.
const Enabled = false

// impl is the single-rank job: every collective is a copy.
type impl struct{}

func (impl) alltoall(send, recv []float32, block int) error { copy(recv, send); return nil }
func (impl) allgather(send, recv []float32) error           { copy(recv, send); return nil }
func (impl) allgatherBytes(send, recv []byte) error         { copy(recv, send); return nil }

// Abort ends the process with code.
func (impl) Abort(code int) { os.Exit(code) }

// Finalize does nothing.
func (impl) Finalize() error { return nil }
