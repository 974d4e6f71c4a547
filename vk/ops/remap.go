package ops

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// Role is how one axis of a parameter takes part in the V-cycle's width maps (docs/method.md
// §1 and §3).
type Role uint32

// Axis roles.
const (
	Unmapped Role = iota // the axis keeps its size (vocabulary rows, positions, a 1-row vector)
	RoleOut              // an output axis: coalescing averages the pair, de-coalescing copies into both
	RoleIn               // an input axis: coalescing sums the pair, de-coalescing copies half into both
)

// Axis is one axis of a parameter viewed as a matrix. A width axis of the small model has
// Groups blocks of Half channels; in the big model each block has 2*Half, and small channel j
// of a block pairs big channels j and j+Half of the same block. An unmapped axis has Groups
// entries (Half = 1).
type Axis struct {
	Role   Role
	Groups int
	Half   int
}

// Small is the axis's length in the small model, Big in the big one.
func (a Axis) Small() int { return a.Groups * a.Half }

// Big is the axis's length in the big model.
func (a Axis) Big() int {
	if a.Role == Unmapped {
		return a.Small()
	}
	return 2 * a.Small()
}

// Split is the antisymmetric split of de-coalescing: along an input axis a pair's halves W/2,
// W/2 become W/2 + D and W/2 - D with D ~ N(0, Sigma²) drawn by Philox from Seed and Stream
// (one stream per parameter) and the small element's index; Sigma 0 is no split.
type Split struct {
	Sigma        float32
	Seed, Stream uint32
}

// Coalesce records small = beta*small + scale*coalesce(big) for a parameter whose matrix view
// has axes rows x cols (sizes of the small model). Pairs of an output axis are averaged, pairs
// of an input axis summed.
func (o *Ops) Coalesce(s *vk.Sequence, big, small *vk.Tensor, rows, cols Axis, beta, scale float32) error {
	return o.remap(s, big, small, rows, cols, false, beta, scale, Split{})
}

// DeCoalesce records big = beta*big + scale*decoalesce(small): every big channel of a pair
// copies its small channel, halved (and split) along an input axis. With beta = 1-alpha and
// scale = alpha over the saved big parameters, it is the V-cycle's interpolation.
func (o *Ops) DeCoalesce(s *vk.Sequence, small, big *vk.Tensor, rows, cols Axis, beta, scale float32, split Split) error {
	return o.remap(s, small, big, rows, cols, true, beta, scale, split)
}

func (o *Ops) remap(s *vk.Sequence, src, dst *vk.Tensor, rows, cols Axis, decoalesce bool, beta, scale float32, split Split) error {
	for _, a := range []Axis{rows, cols} {
		if a.Groups < 1 || a.Half < 1 || a.Role > RoleIn || (a.Role == Unmapped && a.Half != 1) {
			return fmt.Errorf("remap: bad axis %+v", a)
		}
	}
	sr, sc, dr, dc := rows.Big(), cols.Big(), rows.Small(), cols.Small()
	op := "coalesce"
	if decoalesce {
		sr, sc, dr, dc = dr, dc, sr, sc
		op = "de-coalesce"
	}
	if err := checkShapes(op, shaped{"source", src, []int{sr, sc}}, shaped{"destination", dst, []int{dr, dc}}); err != nil {
		return err
	}
	// Per destination element: the sources it sums, a product of weights, scale and beta.
	sources := 1
	if !decoalesce {
		for _, a := range []Axis{rows, cols} {
			if a.Role != Unmapped {
				sources *= 2
			}
		}
	}
	flops := float64(dr*dc) * float64(sources+3)
	if split.Sigma != 0 {
		flops += float64(dr*dc) * splitFLOPs
	}
	push := shaders.RemapPush{Rows: uint32(dr), Cols: uint32(dc), SrcCols: uint32(sc),
		RowRole: uint32(rows.Role), RowHalf: uint32(rows.Half), ColRole: uint32(cols.Role), ColHalf: uint32(cols.Half),
		Decoalesce: boolU32(decoalesce), Beta: beta, Scale: scale, Split: split.Sigma, Seed: split.Seed, Stream: split.Stream}
	if !src.Chunked() && !dst.Chunked() {
		return counted(s, flops, o.remapBand(s, src, dst, push, beta))
	}
	if rows.Role != Unmapped {
		return fmt.Errorf("%s: a row-chunked parameter maps only along its columns", op)
	}
	// Bands of rows that lie in one chunk of the source and one of the destination.
	cuts := map[int]bool{dr: true}
	for _, c := range src.Chunks() {
		cuts[c.Off/sc] = true
	}
	for _, c := range dst.Chunks() {
		cuts[c.Off/dc] = true
	}
	bounds := slices.Sorted(maps.Keys(cuts))
	for i, r0 := range bounds[:len(bounds)-1] {
		sp, dp := chunkAt(src, r0*sc), chunkAt(dst, r0*dc)
		band := push
		band.Rows = uint32(bounds[i+1] - r0)
		band.SrcOff, band.DstOff, band.SrcFirst = uint32(r0*sc-sp.Off), uint32(r0*dc-dp.Off), uint32(r0*sc)
		if err := o.remapBand(s, sp.T, dp.T, band, beta); err != nil {
			return err
		}
	}
	return counted(s, flops, nil)
}

// remapBand dispatches the remap shader over push.Rows x push.Cols destination elements.
func (o *Ops) remapBand(s *vk.Sequence, src, dst *vk.Tensor, push shaders.RemapPush, beta float32) error {
	args := []vk.Arg{vk.In(src), vk.Out(dst)}
	if beta != 0 {
		args[1] = vk.InOut(dst)
	}
	// The maps are elementwise copies: they run with axpy's workgroup size.
	return o.elementwise(s, "axpy", "remap", int(push.Rows*push.Cols), push, args...)
}

// chunkAt is the chunk of t that holds element i.
func chunkAt(t *vk.Tensor, i int) vk.Chunk {
	cs := t.Chunks()
	k, _ := slices.BinarySearchFunc(cs, i, func(c vk.Chunk, i int) int { return cmp.Compare(c.Off+c.T.Len(), i+1) })
	return cs[k]
}

// splitFLOPs is the work of one split element: Philox's ten rounds (two multiplies and four
// xors each), Box-Muller (log, sqrt, cos and four multiplies) and the signed add.
const splitFLOPs = 10*6 + 8 + 2
