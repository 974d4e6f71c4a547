package shaders

import (
	"encoding/binary"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestEveryShaderLoads(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no shaders embedded")
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names() not sorted: %v", names)
	}
	for _, want := range []string{"axpy", "gelu"} {
		if !slices.Contains(names, want) {
			t.Errorf("shader %s missing from %v", want, names)
		}
	}
	for _, name := range names {
		b, err := SPIRV(name)
		if err != nil {
			t.Fatalf("SPIRV(%q): %v", name, err)
		}
		if len(b) < 20 || len(b)%4 != 0 {
			t.Fatalf("%s: %d bytes is not a SPIR-V module", name, len(b))
		}
		if magic := binary.LittleEndian.Uint32(b); magic != 0x07230203 {
			t.Errorf("%s: first word %#08x, want the SPIR-V magic 0x07230203", name, magic)
		}
		b[0] ^= 0xff // the caller owns its copy
		if again, _ := SPIRV(name); again[0] == b[0] {
			t.Errorf("%s: SPIRV returned shared memory", name)
		}
	}
}

func TestUnknownShader(t *testing.T) {
	_, err := SPIRV("no_such_kernel")
	if err == nil {
		t.Fatal("no error for an unknown shader")
	}
	for _, want := range []string{"no_such_kernel", "axpy", "gelu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestKernelSetHash(t *testing.T) {
	h := KernelSetHash()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) {
		t.Fatalf("KernelSetHash() = %q, want 64 hex digits", h)
	}
	if h2 := KernelSetHash(); h2 != h {
		t.Errorf("KernelSetHash() changed between calls: %s then %s", h, h2)
	}
	if got := hashSet(index()); got != h {
		t.Errorf("hashSet(embedded) = %s, KernelSetHash() = %s", got, h)
	}
}

func TestHashSetChangesWithContent(t *testing.T) {
	base := map[string][]byte{"a": {1, 2, 3}, "b": {4}}
	h := hashSet(base)
	if h != hashSet(map[string][]byte{"b": {4}, "a": {1, 2, 3}}) {
		t.Error("hash depends on map order")
	}
	for what, set := range map[string]map[string][]byte{
		"bytes":    {"a": {1, 2, 4}, "b": {4}},
		"name":     {"a": {1, 2, 3}, "c": {4}},
		"boundary": {"a": {1, 2}, "b": {3, 4}},
		"split":    {"ab": {1, 2, 3, 4}},
		"dropped":  {"a": {1, 2, 3}},
		"added":    {"a": {1, 2, 3}, "b": {4}, "c": nil},
		"empty":    {},
	} {
		if hashSet(set) == h {
			t.Errorf("changing the %s leaves the hash unchanged", what)
		}
	}
}
