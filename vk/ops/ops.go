// Package ops runs vktrain's compute kernels: each op takes its variant and parameters from the
// device's tuning profile and records its dispatches into a vk.Sequence.
package ops

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/internal/cachedir"
	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/profile"
)

// Ops binds a context to the tuning-profile entries in force on its device.
type Ops struct {
	ctx  *vk.Context
	prof *profile.Set
}

// New resolves the tuning profile for ctx's device (SourcesOf: overridePath, if not empty, wins,
// then the device's tuned profile, then the shipped ones) and checks every entry in force
// against the device's limits. Profile().Notes() says which profiles it ignored and why.
func New(ctx *vk.Context, overridePath string) (*Ops, error) {
	return NewFrom(ctx, SourcesOf(ctx.Info, overridePath))
}

// NewFrom is New with the profile files given.
func NewFrom(ctx *vk.Context, src profile.Sources) (*Ops, error) {
	set, err := profile.Load(DeviceOf(ctx.Info), LimitsOf(ctx.Info), src)
	if err != nil {
		return nil, err
	}
	return &Ops{ctx: ctx, prof: set}, nil
}

// SourcesOf are the profile files for a device: overridePath ("" for none), the device's tuned
// profile in the user cache folder, and the kernel set they must have been measured with.
func SourcesOf(d vk.DeviceInfo, overridePath string) profile.Sources {
	return profile.Sources{Override: overridePath, Tuned: profile.TunedPath(cachedir.Dir(), DeviceOf(d)),
		Kernels: shaders.KernelSetHash()}
}

// With returns ops that run e instead of the profile's entry for e.Op, after checking e against
// the device's limits.
func (o *Ops) With(e profile.Entry) (*Ops, error) {
	if err := profile.Validate(e, LimitsOf(o.ctx.Info)); err != nil {
		return nil, fmt.Errorf("ops.%s %s %v: %w", e.Op, e.Variant, e.Params, err)
	}
	return &Ops{ctx: o.ctx, prof: o.prof.With(e)}, nil
}

// DeviceOf is the profile-matching identity of a device.
func DeviceOf(d vk.DeviceInfo) profile.Device {
	return profile.Device{VendorID: d.VendorID, DeviceID: d.DeviceID, Driver: d.Driver, DriverVersion: d.DriverVersion,
		SubgroupSize: d.SubgroupSize, Name: d.Name}
}

// LimitsOf is what profile entries are checked against.
func LimitsOf(d vk.DeviceInfo) profile.Limits {
	return profile.Limits{SharedMemory: d.SharedMemory, MaxInvocations: d.MaxInvocations,
		MaxWorkgroupSize: d.MaxWorkgroupSize, SubgroupSize: d.SubgroupSize}
}

// Context is the context the ops run on.
func (o *Ops) Context() *vk.Context { return o.ctx }

// Profile is the resolved tuning profile.
func (o *Ops) Profile() *profile.Set { return o.prof }

// entry returns op's profile entry, checking that its variant is one this package implements.
func (o *Ops) entry(op string, variants ...string) (profile.Entry, error) {
	e, err := o.prof.Entry(op)
	if err != nil {
		return e, err
	}
	for _, v := range variants {
		if e.Variant == v {
			return e, nil
		}
	}
	return e, fmt.Errorf("op %s: variant %q (from %s) has no kernel; known: %v", op, e.Variant, e.Source, variants)
}

// elementwise records a 1-D kernel over n elements with the op's workgroup size.
func (o *Ops) elementwise(s *vk.Sequence, op, shader string, n int, push any, args ...vk.Arg) error {
	k, wg, err := o.defaultKernel(op, shader)
	if err != nil {
		return err
	}
	return s.Dispatch(k, grid1D(o.ctx, vk.Groups(n, wg)), push, args...)
}

// grid1D spreads groups over x and y when x alone would exceed the device's limit; shaders
// linearise the group index (see shaders/common.glsl).
func grid1D(ctx *vk.Context, groups uint32) [3]uint32 {
	maxX := ctx.Info.MaxWorkgroupCount[0]
	if groups <= maxX {
		return [3]uint32{groups, 1, 1}
	}
	y := (groups + maxX - 1) / maxX
	return [3]uint32{(groups + y - 1) / y, y, 1}
}

// Fill sets the first n elements of y to value (chunk by chunk when y is row-chunked).
func (o *Ops) Fill(s *vk.Sequence, y *vk.Tensor, n int, value float32) error {
	if err := fits("fill", y, n); err != nil {
		return err
	}
	if y.Chunked() {
		for _, c := range y.Chunks() {
			if k := min(n-c.Off, c.T.Len()); k > 0 {
				if err := o.Fill(s, c.T, k, value); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return s.Fill(y, n, math.Float32bits(value))
}

// Axpy computes y = alpha*x + beta*y over the first n elements.
func (o *Ops) Axpy(s *vk.Sequence, x, y *vk.Tensor, n int, alpha, beta float32) error {
	if err := fits("axpy", x, n); err != nil {
		return err
	}
	if err := fits("axpy", y, n); err != nil {
		return err
	}
	return counted(s, 3*float64(n), o.elementwise(s, "axpy", "axpy", n, shaders.AxpyPush{N: uint32(n), Alpha: alpha, Beta: beta}, vk.In(x), vk.InOut(y)))
}

// Scale computes y = a*y over the first n elements.
func (o *Ops) Scale(s *vk.Sequence, y *vk.Tensor, n int, a float32) error {
	return o.Axpy(s, y, y, n, 0, a)
}

// FLOPs per element the ops count (Sequence.CountFLOPs): additions, multiplications, divisions,
// comparisons and transcendental functions each count one, as their kernels do them.
const (
	geluFLOPs              = 8  // x³, 3 multiply-adds, tanh, 1 + t, two products
	geluBackwardFLOPs      = 14 // the forward's terms again plus the derivative's
	layerNormFLOPs         = 8  // mean, variance, normalise, scale and shift
	layerNormBackwardFLOPs = 14 // dx: 10; dgamma, dbeta: 4
	adamwFLOPs             = 14 // moments, bias-corrected step, decay, clip scale
)

// counted adds flops to the sequence's count when the op recorded without error.
func counted(s *vk.Sequence, flops float64, err error) error {
	if err == nil {
		s.CountFLOPs(flops)
	}
	return err
}

func fits(op string, t *vk.Tensor, n int) error {
	if n < 1 || n > t.Len() {
		return fmt.Errorf("%s: %d elements requested of tensor %q with %d", op, n, t.Name, t.Len())
	}
	return nil
}

// boolU32 is a boolean specialization constant.
func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
