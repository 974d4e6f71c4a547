package vk

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// On a CPU device every arena's memory carries the huge-page advice (VmFlags "hg" in smaps).
func TestCPUArenasAdviseHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("this kernel has no transparent huge pages")
	}
	probe, err := syscall.Mmap(-1, 0, 2*hugePageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Skip(err)
	}
	err = syscall.Madvise(probe, syscall.MADV_HUGEPAGE)
	syscall.Munmap(probe)
	if err != nil {
		t.Skipf("madvise(MADV_HUGEPAGE) refused here: %v", err)
	}
	c := openInternal(t)
	if c.Info.Type != CPU {
		t.Skip("not a CPU device")
	}
	x, err := c.NewTensor("x", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	a := x.arena
	if a.mapped == nil || a.size < 2*hugePageSize {
		t.Fatalf("arena of %d bytes, mapped %v: too small or not mapped", a.size, a.mapped)
	}
	addr := (uint64(uintptr(a.mapped)) + hugePageSize - 1) &^ (hugePageSize - 1)
	if flags := vmFlags(t, addr); !slices.Contains(strings.Fields(flags), "hg") {
		t.Fatalf("arena at %#x: VmFlags %q lack hg (MADV_HUGEPAGE)", addr, flags)
	}
}

// vmFlags returns the VmFlags line of the mapping of this process that holds addr.
func vmFlags(t *testing.T, addr uint64) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	inside := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			if inside {
				return strings.TrimSpace(flags)
			}
			continue
		}
		// A mapping's header line starts with its range, "lo-hi" in hexadecimal.
		if lo, hi, ok := strings.Cut(strings.SplitN(line, " ", 2)[0], "-"); ok {
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				inside = l <= addr && addr < h
			}
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return ""
}
