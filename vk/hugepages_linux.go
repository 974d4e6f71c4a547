package vk

import (
	"syscall"
	"unsafe"
)

// hugePageSize is the size of a transparent huge page on x86-64 and arm64 (4 KiB base pages).
const hugePageSize = 2 << 20

// adviseHugePages asks the kernel to back the 2 MiB-aligned part of [p, p+size) with transparent
// huge pages (madvise MADV_HUGEPAGE). A CPU device's memory is host memory that lavapipe has not
// touched yet; its kernels read rows that lie pages apart (a matmul lane per row), and with 4 KiB
// pages nearly every such read also misses the TLB. Where the kernel has THP disabled ("never")
// or refuses, nothing changes: the advice is a hint and its error is ignored.
func adviseHugePages(p unsafe.Pointer, size uint64) {
	start := (uintptr(p) + hugePageSize - 1) &^ (hugePageSize - 1)
	end := (uintptr(p) + uintptr(size)) &^ (hugePageSize - 1)
	if end <= start {
		return
	}
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start), syscall.MADV_HUGEPAGE)
}
