package vk_test

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/vktest"
)

func TestDevicesListed(t *testing.T) {
	in, err := vk.NewInstance(vk.ValidateFromEnv(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	devs := in.Devices()
	if len(devs) == 0 {
		t.Fatal("no devices")
	}
	seen := map[string]bool{}
	for _, d := range devs {
		if seen[d.UUID] {
			t.Errorf("device %s listed twice", d.UUID)
		}
		seen[d.UUID] = true
		if d.Name == "" || d.SubgroupSize == 0 || d.MaxInvocations == 0 || d.MaxStorageBuffer == 0 ||
			d.MaxAllocation == 0 || len(d.Heaps) == 0 || d.Driver == "" {
			t.Errorf("incomplete device info: %+v", d)
		}
	}
	i, err := vk.SelectDevice(devs, "llvmpipe", 0)
	if err != nil {
		t.Skipf("lavapipe not installed: %v", err)
	}
	lp := devs[i]
	if lp.Type != vk.CPU || lp.Driver != "llvmpipe" || lp.VendorID != 0x10005 {
		t.Errorf("lavapipe: %+v", lp)
	}
	if lp.SubgroupSize != 4 && lp.SubgroupSize != 8 && lp.SubgroupSize != 16 {
		t.Errorf("lavapipe subgroup size %d", lp.SubgroupSize)
	}
}

func TestSelectDevice(t *testing.T) {
	devs := []vk.DeviceInfo{
		{Index: 0, Name: "llvmpipe (LLVM 15)", Type: vk.CPU},
		{Index: 1, Name: "Intel(R) Iris Xe", Type: vk.Integrated},
		{Index: 2, Name: "NVIDIA H100", Type: vk.Discrete},
	}
	t.Setenv("VKTRAIN_DEVICE", "")
	for _, tc := range []struct {
		sel  string
		want int
	}{{"", 2}, {"0", 0}, {"iris", 1}, {"LLVMPIPE", 0}, {"nvidia", 2}} {
		got, err := vk.SelectDevice(devs, tc.sel, 0)
		if err != nil || got != tc.want {
			t.Errorf("SelectDevice(%q) = %d, %v; want %d", tc.sel, got, err, tc.want)
		}
	}
	two := append(devs, vk.DeviceInfo{Index: 3, Name: "NVIDIA H100", Type: vk.Discrete})
	for rank, want := range []int{2, 3, 2} {
		if got, err := vk.SelectDevice(two, "", rank); err != nil || got != want {
			t.Errorf("local rank %d of 2 H100s: device %d, %v; want %d", rank, got, err, want)
		}
	}
	if got, err := vk.SelectDevice(two, "0", 1); err != nil || got != 0 {
		t.Errorf("a selector must beat the local rank: %d, %v", got, err)
	}
	t.Setenv("VKTRAIN_DEVICE", "1")
	if got, err := vk.SelectDevice(devs, "", 0); err != nil || got != 1 {
		t.Errorf("VKTRAIN_DEVICE=1 selected %d, %v", got, err)
	}
	if got, err := vk.SelectDevice(devs, "llvm", 0); err != nil || got != 0 {
		t.Errorf("an explicit selector must beat VKTRAIN_DEVICE: %d, %v", got, err)
	}
	for _, sel := range []string{"radeon", "7"} {
		_, err := vk.SelectDevice(devs, sel, 0)
		if err == nil || !strings.Contains(err.Error(), "NVIDIA H100") || !strings.Contains(err.Error(), "llvmpipe") {
			t.Errorf("unknown selector %q: the error must list the devices, got %v", sel, err)
		}
	}
}

// axpyKernel is one of the smallest shaders: with Sequence.Fill, enough to exercise sequences.
func axpyKernel(t *testing.T, ctx *vk.Context) *vk.Kernel {
	t.Helper()
	axpy, err := ctx.Kernel("axpy", shaders.Workgroup{X: 64, Y: 1, Z: 1})
	if err != nil {
		t.Fatal(err)
	}
	return axpy
}

func newTensor(t *testing.T, ctx *vk.Context, name string, n int) *vk.Tensor {
	t.Helper()
	x, err := ctx.NewTensor(name, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Free)
	return x
}

func TestSequenceBarriers(t *testing.T) {
	ctx := vktest.Open(t)
	axpy := axpyKernel(t, ctx)
	const n = 1000
	g := [3]uint32{vk.Groups(n, 64), 1, 1}
	x, y, z := newTensor(t, ctx, "x", n), newTensor(t, ctx, "y", n), newTensor(t, ctx, "z", n)
	fill := func(v float32) uint32 { return math.Float32bits(v) }

	t.Run("independent commands record no barrier", func(t *testing.T) {
		s, err := ctx.NewSequence()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		for i, d := range []*vk.Tensor{x, y} {
			if err := s.Fill(d, n, fill(float32(i+1))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Dispatch(axpy, g, shaders.AxpyPush{N: n, Alpha: 3, Beta: 0}, vk.In(z), vk.InOut(z)); err != nil {
			t.Fatal(err)
		}
		if s.Barriers() != 0 {
			t.Fatalf("%d barriers between independent commands", s.Barriers())
		}
		if err := z.WriteFloat32(0, slices.Repeat([]float32{2}, n)); err != nil {
			t.Fatal(err)
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		for i, d := range []*vk.Tensor{x, y, z} {
			got, _ := d.ReadFloat32()
			if want := float32([]int{1, 2, 6}[i]); got[0] != want || got[n-1] != want {
				t.Fatalf("%s = %v..%v, want %v", d.Name, got[0], got[n-1], want)
			}
		}
	})

	t.Run("a dependent chain gets one barrier per link and the right answer", func(t *testing.T) {
		s, err := ctx.NewSequence()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		steps := []func() error{
			func() error { return s.Fill(x, n, fill(3)) }, // x = 3
			func() error { return s.Fill(y, n, fill(1)) }, // y = 1 (independent)
			func() error { // y = 2x + y = 7 (barrier after the fills)
				return s.Dispatch(axpy, g, shaders.AxpyPush{N: n, Alpha: 2, Beta: 1}, vk.In(x), vk.InOut(y))
			},
			func() error { // z = y = 7 (barrier)
				return s.Dispatch(axpy, g, shaders.AxpyPush{N: n, Alpha: 1, Beta: 0}, vk.In(y), vk.InOut(z))
			},
			func() error { return s.Fill(y, n/2, fill(5)) }, // y = 5 in its first half, after z read it (barrier)
			func() error { // z = 10y + z = 57 in the first half, 77 in the second (barrier)
				return s.Dispatch(axpy, g, shaders.AxpyPush{N: n, Alpha: 10, Beta: 1}, vk.In(y), vk.InOut(z))
			},
			func() error { return s.Fill(x, n, fill(0)) }, // x = 0 (independent: no barrier)
		}
		for _, step := range steps {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if s.Barriers() != 4 {
			t.Fatalf("recorded %d barriers, want 4", s.Barriers())
		}
		for run := 0; run < 2; run++ { // a recorded sequence replays
			if err := s.Run(); err != nil {
				t.Fatal(err)
			}
			got, _ := z.ReadFloat32()
			for i, v := range got {
				if want := float32(57 + 20*(i/(n/2))); v != want {
					t.Fatalf("run %d: z[%d] = %v, want %v", run, i, v, want)
				}
			}
			if got, _ := x.ReadFloat32(); got[0] != 0 || got[n-1] != 0 {
				t.Fatalf("run %d: x = %v..%v, want 0", run, got[0], got[n-1])
			}
		}
	})
}

func TestFillErrors(t *testing.T) {
	ctx := vktest.Open(t)
	x := newTensor(t, ctx, "x", 16)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for _, n := range []int{0, -1, 17} {
		if err := s.Fill(x, n, 0); err == nil || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("fill of %d elements of 16: %v", n, err)
		}
	}
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	if err := s.Fill(x, 16, 0); err == nil || !strings.Contains(err.Error(), "Reset") {
		t.Errorf("fill after Run: %v", err)
	}
}

func TestTimedSequence(t *testing.T) {
	ctx := vktest.Open(t)
	if !ctx.TimestampsSupported() {
		t.Skip("no timestamps on this device")
	}
	axpy := axpyKernel(t, ctx)
	const n = 1 << 16
	x := newTensor(t, ctx, "x", n)
	s, err := ctx.NewTimedSequence(2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if err := s.Fill(x, n, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DispatchLabeled("scale", axpy, [3]uint32{vk.Groups(n, 64), 1, 1}, shaders.AxpyPush{N: n, Alpha: 2}, vk.In(x), vk.InOut(x)); err != nil {
		t.Fatal(err)
	}
	if err := s.Fill(x, n, 0); err == nil {
		t.Fatal("a timed sequence accepted more commands than it has queries for")
	}
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	times, err := s.Times()
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 || !strings.HasPrefix(times[0].Label, "fill") || times[1].Label != "scale" {
		t.Fatalf("times: %+v", times)
	}
	for _, tm := range times {
		if !(tm.Ms > 0) || tm.Ms > 10000 {
			t.Fatalf("implausible dispatch time %+v", tm)
		}
	}
}

func TestDispatchErrors(t *testing.T) {
	ctx := vktest.Open(t)
	axpy := axpyKernel(t, ctx)
	x := newTensor(t, ctx, "x", 16)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	huge := ctx.Info.MaxWorkgroupCount[0] + 1
	if err := s.Dispatch(axpy, [3]uint32{huge, 1, 1}, shaders.AxpyPush{N: 16}, vk.In(x), vk.InOut(x)); err == nil {
		t.Error("a grid over maxComputeWorkGroupCount was accepted")
	}
	push := shaders.AxpyPush{N: 16}
	for _, wrong := range []any{shaders.CountPush{N: 16}, &push, nil, []byte{16, 0, 0, 0, 0, 0, 0, 0}} {
		err := s.Dispatch(axpy, [3]uint32{1, 1, 1}, wrong, vk.In(x), vk.InOut(x))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%T", wrong)) || !strings.Contains(err.Error(), "shaders.AxpyPush") {
			t.Errorf("push constants of type %T for axpy: %v, want an error naming both types", wrong, err)
		}
	}
	late := make([]vk.Arg, vk.MaxTexelBindings+1)
	for i := range late {
		late[i] = vk.In(x)
	}
	late[vk.MaxTexelBindings] = vk.InTexels(x)
	if err := s.Dispatch(axpy, [3]uint32{1, 1, 1}, push, late...); err == nil || !strings.Contains(err.Error(), "texel") {
		t.Errorf("a texel view past the texel bindings: %v", err)
	}
	if err := s.Dispatch(axpy, [3]uint32{1, 1, 1}, push, vk.In(x), vk.Arg{T: x, Access: vk.Write, Texels: true}); err == nil || !strings.Contains(err.Error(), "write-only") {
		t.Errorf("a write-only texel view: %v", err)
	}
	if _, err := ctx.Kernel("axpy", shaders.Workgroup{X: ctx.Info.MaxInvocations + 1, Y: 1, Z: 1}); err == nil {
		t.Error("a workgroup over maxComputeWorkGroupInvocations was accepted")
	}
	if _, err := ctx.Kernel("no-such-shader", shaders.Workgroup{X: 1, Y: 1, Z: 1}); err == nil || !strings.Contains(err.Error(), "no-such-shader") {
		t.Errorf("unknown shader: %v", err)
	}
	for _, wrong := range []any{shaders.ReduceSpec{Workgroup: shaders.Workgroup{X: 64, Y: 1, Z: 1}}, &shaders.Workgroup{X: 64, Y: 1, Z: 1},
		[]uint32{64, 1, 1}, nil} {
		_, err := ctx.Kernel("axpy", wrong)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%T", wrong)) || !strings.Contains(err.Error(), "shaders.Workgroup") {
			t.Errorf("spec constants of type %T for axpy: %v, want an error naming both types", wrong, err)
		}
	}
	if _, err := ctx.Kernel("reduce", shaders.Workgroup{X: 64, Y: 1, Z: 1}); err == nil || !strings.Contains(err.Error(), "shaders.ReduceSpec") {
		t.Errorf("only the workgroup for reduce: %v", err)
	}
}
