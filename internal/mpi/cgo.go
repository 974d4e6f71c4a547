//go:build mpi

package mpi

/*
#include <stdlib.h>
#include <mpi.h>

// The handles are macros (Open MPI: addresses of globals), which cgo cannot take directly.
static MPI_Comm world(void) { return MPI_COMM_WORLD; }
static MPI_Datatype float32(void) { return MPI_FLOAT; }
static MPI_Datatype byte_(void) { return MPI_BYTE; }

static int init_serialized(int *provided) {
	int err = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
	if (err != MPI_SUCCESS) return err;
	// Errors come back to the caller, which reports them and aborts the job.
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

static int local_rank(int *rank) {
	MPI_Comm local;
	int err = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
	if (err != MPI_SUCCESS) return err;
	err = MPI_Comm_rank(local, rank);
	MPI_Comm_free(&local);
	return err;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// Enabled says whether this build can join a job of more than one rank.
const Enabled = true

// impl serialises the calls into MPI.
type impl struct{ mu *sync.Mutex }

// Init joins the job mpirun (or Slurm) started; a program started without it is a job of one
// rank. It must be called once, before any other call.
func Init() (*World, error) {
	var provided C.int
	if err := C.init_serialized(&provided); err != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Init_thread: %s", errString(err))
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		return nil, fmt.Errorf("MPI_Init_thread: this MPI gives thread level %d, vktrain needs MPI_THREAD_SERIALIZED (%d)", provided, C.MPI_THREAD_SERIALIZED)
	}
	var rank, size, local C.int
	if err := C.MPI_Comm_rank(C.world(), &rank); err != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_rank: %s", errString(err))
	}
	if err := C.MPI_Comm_size(C.world(), &size); err != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_size: %s", errString(err))
	}
	if err := C.local_rank(&local); err != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_split_type: %s", errString(err))
	}
	return &World{Rank: int(rank), Size: int(size), LocalRank: int(local), impl: impl{mu: new(sync.Mutex)}}, nil
}

func errString(code C.int) string {
	buf := make([]byte, C.MPI_MAX_ERROR_STRING)
	var n C.int
	if C.MPI_Error_string(code, (*C.char)(unsafe.Pointer(&buf[0])), &n) != C.MPI_SUCCESS {
		return fmt.Sprintf("MPI error %d", code)
	}
	return string(buf[:n])
}

func check(call string, code C.int) error {
	if code == C.MPI_SUCCESS {
		return nil
	}
	return fmt.Errorf("%s: %s", call, errString(code))
}

func (m impl) alltoall(send, recv []float32, block int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return check("MPI_Alltoall", C.MPI_Alltoall(unsafe.Pointer(&send[0]), C.int(block), C.float32(),
		unsafe.Pointer(&recv[0]), C.int(block), C.float32(), C.world()))
}

func (m impl) allgather(send, recv []float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return check("MPI_Allgather", C.MPI_Allgather(unsafe.Pointer(&send[0]), C.int(len(send)), C.float32(),
		unsafe.Pointer(&recv[0]), C.int(len(send)), C.float32(), C.world()))
}

func (m impl) allgatherBytes(send, recv []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return check("MPI_Allgather", C.MPI_Allgather(unsafe.Pointer(&send[0]), C.int(len(send)), C.byte_(),
		unsafe.Pointer(&recv[0]), C.int(len(send)), C.byte_(), C.world()))
}

// Abort ends every rank of the job with code (MPI_Abort).
func (m impl) Abort(code int) {
	C.MPI_Abort(C.world(), C.int(code))
}

// Finalize leaves the job; it must be the last call.
func (m impl) Finalize() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return check("MPI_Finalize", C.MPI_Finalize())
}
