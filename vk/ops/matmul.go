package ops

import (
	"fmt"

	"github.com/vktrain/vktrain/vk"
)

// Gemm describes C = Alpha·A·B + Beta·C for Batch row-major matrices: A is M x K, B is K x N,
// C is M x N. Zero leading dimensions default to the dense ones (K, N, N); offsets and batch
// strides are in elements.
type Gemm struct {
	A, B, C                   *vk.Tensor
	M, N, K                   int
	Lda, Ldb, Ldc             int
	OffA, OffB, OffC          int
	Batch                     int // 0 means 1
	StrideA, StrideB, StrideC int
	Alpha, Beta               float32
}

// Matmul records C = A·B for dense row-major A (m x k) and B (k x n).
func (o *Ops) Matmul(s *vk.Sequence, a, b, c *vk.Tensor, m, n, k int) error {
	return o.Gemm(s, Gemm{A: a, B: b, C: c, M: m, N: n, K: k, Alpha: 1})
}

// Gemm records one (batched) matrix product with the variant and tiles of the profile:
// "regblock" (registers only, no barriers: CPUs and lavapipe) or "tiled" (shared memory: GPUs).
func (o *Ops) Gemm(s *vk.Sequence, g Gemm) error {
	if err := g.normalize(); err != nil {
		return err
	}
	e, err := o.entry("matmul", "regblock", "tiled")
	if err != nil {
		return err
	}
	wgX, wgY, tm, tn := e.Get("wg_x"), e.Get("wg_y"), e.Get("tm"), e.Get("tn")
	shader, spec := "matmul", []uint32{uint32(wgX), uint32(wgY), 1, uint32(tm), uint32(tn)}
	if e.Variant == "tiled" {
		shader, spec = "matmul_tiled", append(spec, uint32(e.Get("bk")))
	}
	k, err := o.ctx.Kernel(shader, spec...)
	if err != nil {
		return err
	}
	groups := [3]uint32{vk.Groups(g.N, wgX*tn), vk.Groups(g.M, wgY*tm), uint32(g.Batch)}
	push := vk.Push(g.M, g.N, g.K, g.Lda, g.Ldb, g.Ldc, g.OffA, g.OffB, g.OffC,
		g.StrideA, g.StrideB, g.StrideC, g.Alpha, g.Beta)
	cAccess := vk.Out(g.C)
	if g.Beta != 0 {
		cAccess = vk.InOut(g.C)
	}
	return s.Dispatch(k, groups, push, vk.In(g.A), vk.In(g.B), cAccess)
}

// normalize fills defaults and checks that every matrix lies inside its tensor.
func (g *Gemm) normalize() error {
	if g.M < 1 || g.N < 1 || g.K < 1 {
		return fmt.Errorf("matmul: shape %dx%dx%d must be positive", g.M, g.N, g.K)
	}
	if g.Batch == 0 {
		g.Batch = 1
	}
	def := func(ld *int, v int) {
		if *ld == 0 {
			*ld = v
		}
	}
	def(&g.Lda, g.K)
	def(&g.Ldb, g.N)
	def(&g.Ldc, g.N)
	if g.Lda < g.K || g.Ldb < g.N || g.Ldc < g.N {
		return fmt.Errorf("matmul: leading dimensions %d, %d, %d are smaller than the rows %d, %d, %d", g.Lda, g.Ldb, g.Ldc, g.K, g.N, g.N)
	}
	check := func(name string, t *vk.Tensor, off, rows, cols, ld, stride int) error {
		if t == nil {
			return fmt.Errorf("matmul: no tensor for %s", name)
		}
		last := off + (g.Batch-1)*stride + (rows-1)*ld + cols
		if off < 0 || stride < 0 || last > t.Len() {
			return fmt.Errorf("matmul: %s (%dx%d, ld %d, batch %d, stride %d, offset %d) needs %d elements, tensor %q has %d",
				name, rows, cols, ld, g.Batch, stride, off, last, t.Name, t.Len())
		}
		return nil
	}
	if err := check("A", g.A, g.OffA, g.M, g.K, g.Lda, g.StrideA); err != nil {
		return err
	}
	if err := check("B", g.B, g.OffB, g.K, g.N, g.Ldb, g.StrideB); err != nil {
		return err
	}
	return check("C", g.C, g.OffC, g.M, g.N, g.Ldc, g.StrideC)
}

// MatmulFLOPs is the floating-point operation count of an m x n x k product.
func MatmulFLOPs(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }
