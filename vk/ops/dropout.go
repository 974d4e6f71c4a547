package ops

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// DropoutForward records y = x * keep / (1 - p) over the first n elements; y may be x. The mask
// comes from Philox4x32-10 (shaders/philox.glsl) with key {seed, 0}: element i is kept when
// word 0 of the block at the 64-bit counter offset + i, read as a fraction of 2^32, is at least
// p. seed and offset are the two uint32 words of rng, which the host writes before each step
// (so a recorded step replays with a fresh mask). p = 0 copies x exactly.
func (o *Ops) DropoutForward(s *vk.Sequence, x, y, rng *vk.Tensor, n int, p float32) error {
	return o.dropout(s, "dropout", x, "x", y, "y", rng, n, p, false)
}

// DropoutBackward records dx = dy * keep / (1 - p) with the mask of the DropoutForward that
// used the same rng contents, or dx += ... when accumulate is set. dx may be dy.
func (o *Ops) DropoutBackward(s *vk.Sequence, dy, dx, rng *vk.Tensor, n int, p float32, accumulate bool) error {
	return o.dropout(s, "dropout backward", dy, "dy", dx, "dx", rng, n, p, accumulate)
}

// dropout records the map shared by both passes: out (+)= in * keep / (1 - p).
func (o *Ops) dropout(s *vk.Sequence, op string, in *vk.Tensor, inName string, out *vk.Tensor, outName string,
	rng *vk.Tensor, n int, p float32, accumulate bool) error {
	if err := checkShapes(op, shaped{inName, in, []int{n}}, shaped{outName, out, []int{n}}, shaped{"rng", rng, []int{2}}); err != nil {
		return err
	}
	if !(p >= 0 && p < 1) {
		return fmt.Errorf("%s: probability %v is not in [0, 1)", op, p)
	}
	// Exact: p < 1 has at most 24 significant bits, so p * 2^32 < 2^32 and its ceiling fits.
	threshold := uint32(math.Ceil(float64(p) * (1 << 32)))
	scale := float32(1 / (1 - float64(p)))
	dst, acc := outArg(out, accumulate)
	return counted(s, 2*float64(n), o.elementwise(s, "dropout", "dropout", vec4s(n), shaders.DropoutPush{N: uint32(n), Threshold: threshold, Scale: scale, Accumulate: acc}, vk.In(in), dst, vk.In(rng)))
}
