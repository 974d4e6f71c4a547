//go:build !linux

package vk

import "unsafe"

// adviseHugePages does nothing where there is no madvise(MADV_HUGEPAGE) (see hugepages_linux.go).
func adviseHugePages(p unsafe.Pointer, size uint64) {}
