package vk

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	vkapi "github.com/vulkan-go/vulkan"

	"github.com/vktrain/vktrain/shaders"
)

func TestArenaTakeGiveMerges(t *testing.T) {
	a := &arena{size: 1024, free: []span{{0, 1024}}}
	var offs []uint64
	for i := 0; i < 4; i++ {
		off, ok := a.take(256)
		if !ok {
			t.Fatalf("take %d failed", i)
		}
		offs = append(offs, off)
	}
	if _, ok := a.take(1); ok {
		t.Fatal("a full arena gave memory")
	}
	a.give(offs[1], 256)
	a.give(offs[3], 256)
	if _, ok := a.take(512); ok {
		t.Fatal("two separate holes of 256 served 512 contiguous bytes")
	}
	a.give(offs[2], 256) // joins the two holes
	if len(a.free) != 1 || a.free[0] != (span{256, 768}) {
		t.Fatalf("free list after merging: %v", a.free)
	}
	off, ok := a.take(768)
	if !ok || off != 256 {
		t.Fatalf("take 768 = %d, %v", off, ok)
	}
	a.give(offs[0], 256)
	a.give(256, 768)
	if len(a.free) != 1 || a.free[0] != (span{0, 1024}) {
		t.Fatalf("free list after freeing everything: %v", a.free)
	}
}

func openInternal(t *testing.T) *Context {
	t.Helper()
	c, err := Open(Config{Validate: ValidateFromEnv(), CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestTensorLimitErrors(t *testing.T) {
	c := openInternal(t)
	limit := c.Info.MaxStorageBuffer
	_, err := c.NewTensor("too big", int(limit/4)+1)
	if err == nil || !strings.Contains(err.Error(), "maxStorageBufferRange") || !strings.Contains(err.Error(), "too big") {
		t.Fatalf("tensor over maxStorageBufferRange: %v", err)
	}
	// Pretend the heap is nearly full: the next arena must fail with an error naming size and heap.
	heap := c.mem.props.MemoryTypes[c.mem.deviceType].HeapIndex
	c.mem.heapUsed[heap] = c.mem.heapCapacity(int(heap)) - 1<<20
	for _, a := range c.mem.arenas { // and every arena full
		a.free = nil
	}
	_, err = c.NewTensor("weights", 1<<20)
	if err == nil || !strings.Contains(err.Error(), "out of device memory") || !strings.Contains(err.Error(), "heap") ||
		!strings.Contains(err.Error(), "4.0 MiB") {
		t.Fatalf("out-of-memory error: %v", err)
	}
	c.mem.heapUsed[heap] = 0
}

func TestStagingPathRoundTrips(t *testing.T) {
	c := openInternal(t)
	// Make the context behave like a discrete GPU: tensors in unmapped memory, copies via staging.
	c.mem.mappable = false
	c.mem.stagingType = c.mem.deviceType
	x, err := c.NewTensor("x", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if x.arena.mapped != nil {
		t.Fatal("tensor memory is mapped; the staging path is not exercised")
	}
	data := make([]float32, 1000)
	for i := range data {
		data[i] = float32(i) * 0.5
	}
	if err := x.WriteFloat32(0, data); err != nil {
		t.Fatal(err)
	}
	got, err := x.ReadFloat32()
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		if got[i] != data[i] {
			t.Fatalf("element %d: %v, want %v", i, got[i], data[i])
		}
	}
}

func TestValidationErrorsSurface(t *testing.T) {
	if !ValidateFromEnv() {
		t.Skip("VKTRAIN_VALIDATE is off")
	}
	c := openInternal(t)
	var buf vkapi.Buffer
	// Usage 0 is invalid (VUID-VkBufferCreateInfo-usage-requiredbitmask).
	vkapi.CreateBuffer(c.device, &vkapi.BufferCreateInfo{
		SType: vkapi.StructureTypeBufferCreateInfo, Size: 64, SharingMode: vkapi.SharingModeExclusive,
	}, nil, &buf)
	err := c.Check()
	if buf != nil {
		vkapi.DestroyBuffer(c.device, buf, nil)
	}
	if err == nil || !strings.Contains(err.Error(), "VUID-VkBufferCreateInfo-usage") {
		t.Fatalf("the layer's error did not surface: %v", err)
	}
	if err := c.Check(); err != nil {
		t.Fatalf("an error was reported twice: %v", err)
	}
}

func TestPipelineCachePersists(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		c, err := Open(Config{Validate: ValidateFromEnv(), CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Kernel("axpy", shaders.Workgroup{X: 64, Y: 1, Z: 1}); err != nil {
			t.Fatal(err)
		}
		path := c.cache.path
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil || st.Size() == 0 {
			t.Fatalf("round %d: no pipeline cache file at %s: %v", round, path, err)
		}
		if !strings.Contains(path, hex.EncodeToString(c.Info.pipelineCacheUUID[:])) {
			t.Fatalf("cache file %s is not keyed by the pipelineCacheUUID", path)
		}
	}
}

func TestWidenLavapipe(t *testing.T) {
	old, had := os.LookupEnv(lavapipeWidth)
	t.Cleanup(func() {
		if had {
			os.Setenv(lavapipeWidth, old)
		} else {
			os.Unsetenv(lavapipeWidth)
		}
	})
	os.Unsetenv(lavapipeWidth)
	widenLavapipe()
	want := ""
	if cpuHasAVX512() {
		want = "512"
	}
	if got := os.Getenv(lavapipeWidth); got != want {
		t.Errorf("unset: %s=%q after widenLavapipe, want %q", lavapipeWidth, got, want)
	}
	os.Setenv(lavapipeWidth, "128")
	widenLavapipe()
	if got := os.Getenv(lavapipeWidth); got != "128" {
		t.Errorf("a width the user set was changed to %q", got)
	}
}
