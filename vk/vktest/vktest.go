// Package vktest opens a Vulkan context for tests: the device and validation come from the
// environment (VKTRAIN_DEVICE, VKTRAIN_VALIDATE), the pipeline cache lives in a temporary
// folder, and any validation error at shutdown fails the test.
package vktest

import (
	"math"
	"os"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops/ref"
)

// Open returns a context that closes when the test ends.
func Open(t testing.TB) *vk.Context {
	t.Helper()
	return OpenChunked(t, 0)
}

// OpenChunked is Open with row-chunked tensors held in chunks of at most chunkBytes (0: the
// environment's VKTRAIN_CHUNK_BYTES, else the device's limits).
func OpenChunked(t testing.TB, chunkBytes uint64) *vk.Context {
	t.Helper()
	cfg, err := vk.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if chunkBytes > 0 {
		cfg.ChunkBytes = chunkBytes
	}
	cfg.CacheDir, cfg.Log = t.TempDir(), os.Stderr
	ctx, err := vk.Open(cfg)
	if err != nil {
		t.Fatalf("opening Vulkan: %v", err)
	}
	t.Cleanup(func() {
		if err := ctx.Close(); err != nil {
			t.Errorf("closing the context: %v", err)
		}
	})
	return ctx
}

// Sentinel is the value written after every output in tests, to catch out-of-bounds writes.
const Sentinel = float32(-1234.5)

// Pad is how many sentinel elements follow each output.
const Pad = 37

// NSE is ref.NSE: the normalised squared error sum((got-want)^2) / sum(want^2) (or the plain
// sum when want is 0).
func NSE(got []float32, want []float64) float64 { return ref.NSE(got, want) }

// CheckSentinels fails the test if any element after n is not the sentinel.
func CheckSentinels(t testing.TB, name string, data []float32, n int) {
	t.Helper()
	for i := n; i < len(data); i++ {
		if data[i] != Sentinel && !(math.IsNaN(float64(data[i])) && math.IsNaN(float64(Sentinel))) {
			t.Fatalf("%s: element %d past the end (%d) was overwritten: %v", name, i, n, data[i])
		}
	}
}

// NewPadded allocates a tensor of n elements plus Pad sentinels, writes data (may be nil) and
// the sentinels.
func NewPadded(t testing.TB, ctx *vk.Context, name string, n int, data []float32) *vk.Tensor {
	t.Helper()
	x, err := ctx.NewTensor(name, n+Pad)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, n+Pad)
	copy(buf, data)
	for i := n; i < len(buf); i++ {
		buf[i] = Sentinel
	}
	if err := x.WriteFloat32(0, buf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Free)
	return x
}

// Run records into a fresh sequence with record and runs it once, failing the test on error.
func Run(t testing.TB, ctx *vk.Context, record func(*vk.Sequence) error) {
	t.Helper()
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := record(s); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
}
