package ops

import (
	"fmt"
	"math"
	"strings"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// Add records y = a + b over the first n elements (the residual add); any of a, b and y may be
// the same tensor.
func (o *Ops) Add(s *vk.Sequence, a, b, y *vk.Tensor, n int) error {
	if err := checkShapes("add", shaped{"a", a, []int{n}}, shaped{"b", b, []int{n}}, shaped{"y", y, []int{n}}); err != nil {
		return err
	}
	return counted(s, float64(n), o.elementwise(s, "add", "add", vec4s(n), shaders.CountPush{N: uint32(n)}, vk.In(a), vk.In(b), vk.Out(y)))
}

// AddBias records y[r, c] += bias[c] for the row-major rows x cols matrix y.
func (o *Ops) AddBias(s *vk.Sequence, y, bias *vk.Tensor, rows, cols int) error {
	if err := checkShapes("add bias", shaped{"y", y, []int{rows, cols}}, shaped{"bias", bias, []int{cols}}); err != nil {
		return err
	}
	k, wg, err := o.defaultKernel("add", "add_bias")
	if err != nil {
		return err
	}
	return counted(s, float64(rows*cols), s.Dispatch(k, rowGrid(o.ctx, wg, cols, rows), shaders.RowsColsPush{Rows: uint32(rows), Cols: uint32(cols)}, vk.InOut(y), vk.In(bias)))
}

// BiasGrad records dbias[c] += sum over r of dy[r, c]: the gradient of AddBias, accumulated.
// Each column sums its rows in order (deterministic).
func (o *Ops) BiasGrad(s *vk.Sequence, dy, dbias *vk.Tensor, rows, cols int) error {
	if err := checkShapes("bias grad", shaped{"dy", dy, []int{rows, cols}}, shaped{"dbias", dbias, []int{cols}}); err != nil {
		return err
	}
	return counted(s, float64(rows*cols), o.elementwise(s, "add", "add_bias_grad", vec4s(cols), shaders.RowsColsPush{Rows: uint32(rows), Cols: uint32(cols)}, vk.In(dy), vk.InOut(dbias)))
}

// GeluForward records y = gelu(x) over the first n elements, in GPT-2's tanh form
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); y may be x.
func (o *Ops) GeluForward(s *vk.Sequence, x, y *vk.Tensor, n int) error {
	if err := checkShapes("gelu", shaped{"x", x, []int{n}}, shaped{"y", y, []int{n}}); err != nil {
		return err
	}
	return counted(s, geluFLOPs*float64(n), o.elementwise(s, "gelu", "gelu", vec4s(n), shaders.CountPush{N: uint32(n)}, vk.In(x), vk.Out(y)))
}

// GeluBackward records dx = dy * gelu'(x) over the first n elements, or dx += ... when
// accumulate is set; x is GeluForward's input. dx may be dy.
func (o *Ops) GeluBackward(s *vk.Sequence, x, dy, dx *vk.Tensor, n int, accumulate bool) error {
	if err := checkShapes("gelu backward", shaped{"x", x, []int{n}}, shaped{"dy", dy, []int{n}}, shaped{"dx", dx, []int{n}}); err != nil {
		return err
	}
	out, acc := outArg(dx, accumulate)
	return counted(s, geluBackwardFLOPs*float64(n), o.elementwise(s, "gelu", "gelu_backward", vec4s(n), shaders.GeluBackwardPush{N: uint32(n), Accumulate: acc}, vk.In(x), vk.In(dy), out))
}

// defaultKernel returns the kernel of shader, whose only specialization constants are the
// workgroup size, with the workgroup size of op's profile entry (variant "default"), and that size.
func (o *Ops) defaultKernel(op, shader string) (*vk.Kernel, int, error) {
	e, err := o.entry(op, "default")
	if err != nil {
		return nil, 0, err
	}
	wg := e.Get("wg_x")
	k, err := o.ctx.Kernel(shader, shaders.Workgroup{X: uint32(wg), Y: 1, Z: 1})
	return k, wg, err
}

// rowGrid is the grid of a kernel over a rows x cols matrix with four columns per invocation:
// x covers the columns in workgroups of wg, and the rows go along y, spread over y and z when
// y alone would exceed the device's limit (the shader's row is z * numGroups.y + y).
func rowGrid(ctx *vk.Context, wg, cols, rows int) [3]uint32 {
	maxY := ctx.Info.MaxWorkgroupCount[1]
	y, z := uint32(rows), uint32(1)
	if y > maxY {
		z = (y + maxY - 1) / maxY
		y = (uint32(rows) + z - 1) / z
	}
	return [3]uint32{vk.Groups(vec4s(cols), wg), y, z}
}

// outArg binds an output tensor that the kernel overwrites, or reads and adds to when
// accumulate is set, and returns the kernel's accumulate flag.
func outArg(t *vk.Tensor, accumulate bool) (vk.Arg, uint32) {
	if accumulate {
		return vk.InOut(t), 1
	}
	return vk.Out(t), 0
}

// shaped is a tensor argument of an op with the shape it must hold (dense, row-major).
type shaped struct {
	name  string
	t     *vk.Tensor
	shape []int
}

// checkShapes checks that every dimension is positive, that every tensor holds its shape, and
// that the shaders' 32-bit element indices cannot overflow.
func checkShapes(op string, args ...shaped) error {
	for _, a := range args {
		dims := make([]string, len(a.shape))
		for i, d := range a.shape {
			dims[i] = fmt.Sprint(d)
		}
		shape := strings.Join(dims, "x")
		n := uint64(1)
		for _, d := range a.shape {
			if d < 1 {
				return fmt.Errorf("%s: %s shape %s must be positive", op, a.name, shape)
			}
			if uint64(d) > math.MaxUint32/n {
				return fmt.Errorf("%s: %s shape %s has more than 2^32-1 elements", op, a.name, shape)
			}
			n *= uint64(d)
		}
		if a.t == nil {
			return fmt.Errorf("%s: no tensor for %s (%s)", op, a.name, shape)
		}
		if n > uint64(a.t.Len()) {
			return fmt.Errorf("%s: %s (%s) needs %d elements, tensor %q has %d", op, a.name, shape, n, a.t.Name, a.t.Len())
		}
	}
	return nil
}

// vec4s is the number of invocations of a kernel that handles four elements (a vec4) each.
func vec4s(n int) int { return (n + 3) / 4 }
