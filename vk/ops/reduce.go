package ops

import (
	"fmt"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/profile"
)

// reducePer is how many elements each invocation of the reduce shader sums (16 to 256 measured
// alike on lavapipe); a multiple of 4 for the texel variant's vec4 blocks.
const reducePer = 64

// GradNorm records the global L2 norm of all the grads tensors together (every element of each)
// and the gradient-clipping scale min(1, maxNorm/(norm+1e-6)), 1 when maxNorm <= 0, writing
// them to stepParams[StepGradNorm] and stepParams[StepClipScale], where AdamW reads the scale
// and the host can read the norm after the run. The sum is deterministic: per-invocation
// partial sums of squares go to partials (SumSquaresPartialsLen elements at least), and are
// summed again in a fixed order; no atomics. A non-finite gradient gives a non-finite norm.
// A row-chunked gradient is summed chunk by chunk.
func (o *Ops) GradNorm(s *vk.Sequence, grads []*vk.Tensor, partials, stepParams *vk.Tensor, maxNorm float32) error {
	grads = pieces(grads)
	e, err := o.reduceEntry()
	if err != nil {
		return err
	}
	wg := e.Get("wg_x")
	first, later, err := reducePlan(grads, wg)
	if err != nil {
		return err
	}
	need := partialsTotal(first) + partialsTotal(later)
	if err := checkShapes("grad norm", shaped{"partials", partials, []int{need}}, stepShape(stepParams)); err != nil {
		return err
	}
	wg1 := shaders.Workgroup{X: uint32(wg), Y: 1, Z: 1}
	squares, err := o.ctx.Kernel("reduce", shaders.ReduceSpec{Workgroup: wg1, Per: reducePer, Square: 1})
	if err != nil {
		return err
	}
	var squaresTexels *vk.Kernel // the texel variant's first pass, for tensors that fit a view
	if e.Variant == "texel" {
		if squaresTexels, err = o.ctx.Kernel("reduce", shaders.ReduceSpec{Workgroup: wg1, Per: reducePer, Square: 1, Texels: 1}); err != nil {
			return err
		}
	}
	sums, err := o.ctx.Kernel("reduce", shaders.ReduceSpec{Workgroup: wg1, Per: reducePer, Square: 0})
	if err != nil {
		return err
	}
	clip, err := o.ctx.Kernel("reduce_clip", shaders.ReduceClipSpec{Workgroup: shaders.Workgroup{X: 1, Y: 1, Z: 1},
		SlotClipScale: StepClipScale, SlotGradNorm: StepGradNorm})
	if err != nil {
		return err
	}
	off := 0
	for i, g := range grads {
		k, in := squares, vk.In(g)
		if squaresTexels != nil && o.ctx.FitsTexels(g) {
			k, in = squaresTexels, vk.InTexels(g)
		}
		groups := vk.Groups(g.Len(), wg*reducePer)
		if err := s.Dispatch(k, grid1D(o.ctx, groups), shaders.ReducePush{N: uint32(g.Len()), InOff: 0, OutOff: uint32(off)},
			in, vk.Out(partials)); err != nil {
			return err
		}
		off += first[i]
	}
	in, n := 0, off
	for _, next := range later {
		if err := s.Dispatch(sums, grid1D(o.ctx, vk.Groups(n, wg*reducePer)), shaders.ReducePush{N: uint32(n), InOff: uint32(in), OutOff: uint32(in + n)},
			vk.In(partials), vk.Out(partials)); err != nil {
			return err
		}
		in, n = in+n, next
	}
	total := 0
	for _, g := range grads {
		total += g.Len()
	}
	return counted(s, 2*float64(total), s.Dispatch(clip, [3]uint32{1, 1, 1}, shaders.ReduceClipPush{N: uint32(n), Off: uint32(in), MaxNorm: maxNorm}, vk.In(partials), vk.Out(stepParams)))
}

// SumSquaresPartialsLen is how many elements the partials tensor of GradNorm over grads needs.
func (o *Ops) SumSquaresPartialsLen(grads []*vk.Tensor) (int, error) {
	e, err := o.reduceEntry()
	if err != nil {
		return 0, err
	}
	first, later, err := reducePlan(pieces(grads), e.Get("wg_x"))
	if err != nil {
		return 0, err
	}
	return partialsTotal(first) + partialsTotal(later), nil
}

// reduceEntry is the reduce shader's profile entry: its workgroup size, which sizes the
// partials, and whether the first pass reads through texel views.
func (o *Ops) reduceEntry() (profile.Entry, error) { return o.entry("reduce", "default", "texel") }

// reducePlan returns the number of partial sums the first pass writes for each tensor, and the
// counts of the later passes, each summing the previous pass's partials, until at most wg remain
// for reduce_clip. The passes lie one after another in the partials tensor.
func reducePlan(grads []*vk.Tensor, wg int) (first, later []int, err error) {
	if len(grads) == 0 {
		return nil, nil, fmt.Errorf("grad norm: no gradient tensors")
	}
	n := 0
	for i, g := range grads {
		if g == nil {
			return nil, nil, fmt.Errorf("grad norm: gradient tensor %d is nil", i)
		}
		first = append(first, int(vk.Groups(g.Len(), wg*reducePer))*wg)
		n += first[i]
	}
	for n > wg {
		n = int(vk.Groups(n, wg*reducePer)) * wg
		later = append(later, n)
	}
	return first, later, nil
}

// partialsTotal adds up partial-sum counts.
func partialsTotal(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// pieces lists the tensors kernels bind for ts: each tensor, or its chunks when row-chunked
// (a nil tensor stays, for the caller to report).
func pieces(ts []*vk.Tensor) []*vk.Tensor {
	var out []*vk.Tensor
	for _, t := range ts {
		if t == nil {
			out = append(out, t)
			continue
		}
		for _, c := range t.Chunks() {
			out = append(out, c.T)
		}
	}
	return out
}
