package ops

import (
	"fmt"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// Gemm describes C = Alpha·op(A)·op(B) + Beta·C + Bias for Batch row-major matrices, where op(X)
// is X, or Xᵀ when TransX is set: op(A) is M x K (A stored M x K, or K x M with TransA), op(B) is
// K x N (B stored K x N, or N x K with TransB), C is M x N. Lda, Ldb and Ldc are the stored row
// strides; zero means dense (the stored row length). Offsets and batch strides are in elements.
// Bias, when not nil, holds N floats from OffBias, added to every row of every C. Beta = 0 never
// reads C; Beta = 1 accumulates (dW += xᵀ·dy). C must not overlap A, B or Bias.
type Gemm struct {
	A, B, C                   *vk.Tensor
	Bias                      *vk.Tensor // nil: no bias
	M, N, K                   int
	TransA, TransB            bool
	Lda, Ldb, Ldc             int
	OffA, OffB, OffC, OffBias int
	Batch                     int // 0 means 1
	StrideA, StrideB, StrideC int
	Alpha, Beta               float32
}

// Gemm records one (batched) matrix product with the variant and tiles of the profile:
// "regblock" (registers and subgroup shuffles, no shared memory or barriers: CPUs and lavapipe),
// "texel" (regblock reading A and B through texel views when the product is vec4-aligned) or
// "tiled" (shared memory: GPUs). All read every operand along its contiguous dimension, so the
// transposed forms that a linear layer's backward pass needs cost what the plain one does.
//
// A row-chunked operand (vk.Tensor.Chunked) is multiplied chunk by chunk (splitGemm).
func (o *Ops) Gemm(s *vk.Sequence, g Gemm) error {
	if err := g.normalize(); err != nil {
		return err
	}
	if g.A.Chunked() || g.B.Chunked() || g.C.Chunked() {
		return o.splitGemm(s, g)
	}
	e, err := o.entry("matmul", "regblock", "texel", "tiled")
	if err != nil {
		return err
	}
	wgX, wgY, tm, tn := e.Get("wg_x"), e.Get("wg_y"), e.Get("tm"), e.Get("tn")
	wg := shaders.Workgroup{X: uint32(wgX), Y: uint32(wgY), Z: 1}
	tiled, texels := e.Variant == "tiled", false
	if !tiled && g.Batch <= 1 && g.K > 2*kBlock {
		for k0 := 0; k0 < g.K; k0 += kBlock {
			if err := o.Gemm(s, g.kRange(k0, min(kBlock, g.K-k0))); err != nil {
				return err
			}
		}
		return nil
	}
	var k *vk.Kernel
	if tiled {
		k, err = o.ctx.Kernel("matmul_tiled", shaders.MatmulTiledSpec{Workgroup: wg, TM: uint32(tm), TN: uint32(tn),
			TransA: boolU32(g.TransA), TransB: boolU32(g.TransB), BK: uint32(e.Get("bk"))})
	} else {
		vec := g.aligned()
		texels = e.Variant == "texel" && vec && o.ctx.FitsTexels(g.A) && o.ctx.FitsTexels(g.B) &&
			(g.Beta == 0 || o.ctx.FitsTexels(g.C))
		k, err = o.ctx.Kernel("matmul", shaders.MatmulSpec{Workgroup: wg, TM: uint32(tm), TN: uint32(tn),
			TransA: boolU32(g.TransA), TransB: boolU32(g.TransB), SG: shareLanes(wgX, o.ctx.Info.SubgroupSize),
			Vec: boolU32(vec), Texels: boolU32(texels)})
	}
	if err != nil {
		return err
	}
	groups := [3]uint32{vk.Groups(g.N, wgX*tn), vk.Groups(g.M, wgY*tm), uint32(g.Batch)}
	rowsFast := !tiled && g.sweepA(groups[1], groups[0])
	if rowsFast {
		groups[0], groups[1] = groups[1], groups[0]
	}
	hasBias := uint32(0)
	args := []vk.Arg{vk.In(g.A), vk.In(g.B), vk.Out(g.C)}
	if texels {
		args[0], args[1] = vk.InTexels(g.A), vk.InTexels(g.B)
	}
	if g.Beta != 0 {
		args[2] = vk.InOut(g.C)
		if texels {
			args[2] = vk.InOutTexels(g.C) // each element is read once, by the invocation that writes it
		}
	}
	if g.Bias != nil {
		hasBias = 1
		args = append(args, vk.In(g.Bias))
	}
	push := shaders.MatmulPush{M: uint32(g.M), N: uint32(g.N), K: uint32(g.K),
		Lda: uint32(g.Lda), Ldb: uint32(g.Ldb), Ldc: uint32(g.Ldc),
		OffA: uint32(g.OffA), OffB: uint32(g.OffB), OffC: uint32(g.OffC), OffBias: uint32(g.OffBias),
		StrideA: uint32(g.StrideA), StrideB: uint32(g.StrideB), StrideC: uint32(g.StrideC),
		Alpha: g.Alpha, Beta: g.Beta, HasBias: hasBias, RowsFast: boolU32(rowsFast)}
	if tiled {
		// matmul_tiled's block is matmul's without RowsFast (always 0 here).
		t := shaders.MatmulTiledPush{M: push.M, N: push.N, K: push.K, Lda: push.Lda, Ldb: push.Ldb, Ldc: push.Ldc,
			OffA: push.OffA, OffB: push.OffB, OffC: push.OffC, OffBias: push.OffBias,
			StrideA: push.StrideA, StrideB: push.StrideB, StrideC: push.StrideC,
			Alpha: push.Alpha, Beta: push.Beta, HasBias: push.HasBias}
		return counted(s, g.flops(), s.Dispatch(k, groups, t, args...))
	}
	return counted(s, g.flops(), s.Dispatch(k, groups, push, args...))
}

// splitGemm records a product with a row-chunked operand as one product per chunk: a chunk of C,
// or of A stored M x K, gives its rows of C; a chunk of B stored N x K its columns of C (and of
// the bias); a chunk of the rows along K (A stored K x M, B stored K x N) adds its share to C,
// the first with Beta and the bias, the others with Beta = 1. The chunked operand must be dense
// (no offset, rows of its stored length), and the product unbatched.
func (o *Ops) splitGemm(s *vk.Sequence, g Gemm) error {
	if g.Batch > 1 {
		return fmt.Errorf("matmul: a batched product cannot take a row-chunked operand")
	}
	t, off, ld, which := g.C, g.OffC, g.Ldc, "C"
	switch {
	case g.A.Chunked():
		t, off, ld, which = g.A, g.OffA, g.Lda, "A"
	case g.B.Chunked():
		t, off, ld, which = g.B, g.OffB, g.Ldb, "B"
	}
	if off != 0 || t.Len()%ld != 0 {
		return fmt.Errorf("matmul: row-chunked %s %q must be dense from its start", which, t.Name)
	}
	for _, c := range t.Chunks() {
		r0, rows := c.Off/ld, c.T.Len()/ld
		sub := g
		switch which {
		case "C":
			sub.C, sub.OffC, sub.M = c.T, 0, rows
			sub.OffA += r0 * g.Lda
			if g.TransA {
				sub.OffA = g.OffA + r0
			}
		case "A":
			if g.TransA {
				sub = g.kRange(r0, rows)
			} else {
				sub.M, sub.OffC = rows, g.OffC+r0*g.Ldc
			}
			sub.A, sub.OffA = c.T, 0
		case "B":
			if g.TransB {
				sub.N, sub.OffC, sub.OffBias = rows, g.OffC+r0, g.OffBias+r0
			} else {
				sub = g.kRange(r0, rows)
			}
			sub.B, sub.OffB = c.T, 0
		}
		if err := o.Gemm(s, sub); err != nil {
			return err
		}
	}
	return nil
}

// kRange is the product over K rows k0 .. k0+k-1 only: added to C (Beta 1, no bias) unless k0 = 0.
func (g Gemm) kRange(k0, k int) Gemm {
	sub := g
	sub.K = k
	if g.TransA {
		sub.OffA += k0 * g.Lda
	} else {
		sub.OffA += k0
	}
	if g.TransB {
		sub.OffB += k0
	} else {
		sub.OffB += k0 * g.Ldb
	}
	if k0 > 0 {
		sub.Beta, sub.Bias = 1, nil
	}
	return sub
}

// kBlock is the K of each part of a long product on the CPU kernels (regblock, texel), which are
// recorded as products over blocks of K added up in C: a workgroup's panels of A and B then stay
// in a core's cache (64 x 2048 and 2048 x 128 floats with the llvmpipe tiles). Without it, the
// logits' backward product dh = dlogits·wte (K = 43688 rows of GPT-2's token table) ran at 0.6x
// the speed of the same product in blocks of 2048 (BENCHMARKS.md).
const kBlock = 2048

// cachedBytes is the operand size below which re-reading it is taken to come from cache: a CPU
// core's share of L2 and L3.
const cachedBytes = 4 << 20

// sweepA reports whether the regblock kernel should order its gm x gn workgroups with the row
// blocks fastest, so that consecutive groups share a panel of B and sweep A, because that
// streams fewer bytes from memory than the other order: each order reads the operand whose
// panel it shares once, and the one it sweeps once per block of the other, or once in all if it
// fits in cache.
func (g *Gemm) sweepA(gm, gn uint32) bool {
	a := 4 * float64(g.M) * float64(g.K)
	b := 4 * float64(g.K) * float64(g.N)
	swept := func(bytes float64, times uint32) float64 {
		if bytes <= cachedBytes {
			return bytes
		}
		return bytes * float64(times)
	}
	return swept(a, gn)+b < a+swept(b, gm)
}

// shareLanes is how many consecutive invocations of the regblock kernel share rows through
// subgroup shuffles: the largest power of two dividing both wg_x and the subgroup size (1 when
// the subgroup size is unknown).
func shareLanes(wgX int, subgroup uint32) uint32 {
	sg := uint32(1)
	for subgroup%(2*sg) == 0 && wgX%int(2*sg) == 0 {
		sg *= 2
	}
	return sg
}

// aligned reports whether the regblock kernel may use vec4 loads and stores: every row stride,
// offset and batch stride, K, N, and M when A is transposed, are multiples of 4.
func (g *Gemm) aligned() bool {
	v := []int{g.K, g.N, g.Lda, g.Ldb, g.Ldc, g.OffA, g.OffB, g.OffC}
	if g.TransA {
		v = append(v, g.M)
	}
	if g.Bias != nil {
		v = append(v, g.OffBias)
	}
	if g.Batch > 1 {
		v = append(v, g.StrideA, g.StrideB, g.StrideC)
	}
	for _, x := range v {
		if x%4 != 0 {
			return false
		}
	}
	return true
}

// normalize fills defaults and checks that every matrix lies inside its tensor.
func (g *Gemm) normalize() error {
	if g.M < 1 || g.N < 1 || g.K < 1 {
		return fmt.Errorf("matmul: shape %dx%dx%d must be positive", g.M, g.N, g.K)
	}
	if g.Batch == 0 {
		g.Batch = 1
	}
	if g.Batch < 0 {
		return fmt.Errorf("matmul: batch %d is negative", g.Batch)
	}
	// Stored shapes (rows x cols) of A and B.
	aRows, aCols := g.M, g.K
	if g.TransA {
		aRows, aCols = g.K, g.M
	}
	bRows, bCols := g.K, g.N
	if g.TransB {
		bRows, bCols = g.N, g.K
	}
	check := func(name string, t *vk.Tensor, off, rows, cols int, ld *int, stride int) error {
		if t == nil {
			return fmt.Errorf("matmul: no tensor for %s", name)
		}
		if *ld == 0 {
			*ld = cols
		}
		if *ld < cols {
			return fmt.Errorf("matmul: %s has rows of %d elements, its row stride %d is smaller", name, cols, *ld)
		}
		last := off + (g.Batch-1)*stride + (rows-1)**ld + cols
		if off < 0 || stride < 0 || last > t.Len() {
			return fmt.Errorf("matmul: %s (%dx%d, row stride %d, batch %d, stride %d, offset %d) needs %d elements, tensor %q has %d",
				name, rows, cols, *ld, g.Batch, stride, off, last, t.Name, t.Len())
		}
		return nil
	}
	if err := check("A", g.A, g.OffA, aRows, aCols, &g.Lda, g.StrideA); err != nil {
		return err
	}
	if err := check("B", g.B, g.OffB, bRows, bCols, &g.Ldb, g.StrideB); err != nil {
		return err
	}
	if err := check("C", g.C, g.OffC, g.M, g.N, &g.Ldc, g.StrideC); err != nil {
		return err
	}
	if g.Bias == nil {
		return nil
	}
	ld := g.N
	return check("Bias", g.Bias, g.OffBias, 1, g.N, &ld, 0)
}

// flops is the work of the product as dispatched: 2·M·N·K per batch entry, plus one per
// output element for the bias and two for beta·C.
func (g Gemm) flops() float64 {
	mn := float64(g.M) * float64(g.N)
	f := MatmulFLOPs(g.M, g.N, g.K)
	if g.Bias != nil {
		f += mn
	}
	if g.Beta != 0 {
		f += 2 * mn
	}
	return f * float64(g.Batch)
}

// MatmulFLOPs is the floating-point operation count of an m x n x k product.
func MatmulFLOPs(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }
