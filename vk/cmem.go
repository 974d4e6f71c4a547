package vk

// #include <stdlib.h>
// #include <string.h>
import "C"

import "unsafe"

// The binding copies structs into C memory but not the data their raw pointers point at, so
// anything behind such a pointer (cache data, specialization data) is allocated in C.

func cAlloc(n int) unsafe.Pointer { return C.calloc(C.size_t(n), 1) }

func cBytes(b []byte) unsafe.Pointer { return C.CBytes(b) }

func cFree(p unsafe.Pointer) { C.free(p) }

// cBytesPtr points at b's data for a call that copies it before returning (b holds no Go pointers).
func cBytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

func cBytesPtrU64(b []uint64) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
