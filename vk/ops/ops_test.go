package ops_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

func newOps(t *testing.T) (*vk.Context, *ops.Ops) {
	t.Helper()
	ctx := vktest.Open(t)
	o, err := ops.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, o
}

func randoms(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

// run records one op into a fresh sequence and runs it.
func run(t *testing.T, ctx *vk.Context, record func(*vk.Sequence) error) {
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

func read(t *testing.T, x *vk.Tensor) []float32 {
	t.Helper()
	v, err := x.ReadFloat32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFillAndAxpy(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 7, 64, 1000, 4097} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			xs, ys := randoms(rng, n), randoms(rng, n)
			x := vktest.NewPadded(t, ctx, "x", n, xs)
			y := vktest.NewPadded(t, ctx, "y", n, ys)
			f := vktest.NewPadded(t, ctx, "f", n, nil)
			run(t, ctx, func(s *vk.Sequence) error {
				if err := o.Fill(s, f, n, 2.5); err != nil {
					return err
				}
				return o.Axpy(s, x, y, n, 0.75, -1.5)
			})
			got, fill := read(t, y), read(t, f)
			want := make([]float64, n)
			for i := range want {
				want[i] = 0.75*float64(xs[i]) - 1.5*float64(ys[i])
				if fill[i] != 2.5 {
					t.Fatalf("fill[%d] = %v", i, fill[i])
				}
			}
			if e := vktest.NSE(got, want); e > 1e-7 {
				t.Fatalf("axpy: normalised squared error %g", e)
			}
			vktest.CheckSentinels(t, "axpy", got, n)
			vktest.CheckSentinels(t, "fill", fill, n)

			run(t, ctx, func(s *vk.Sequence) error { return o.Scale(s, x, n, -3) })
			got = read(t, x)
			for i := range want {
				want[i] = -3 * float64(xs[i])
			}
			if e := vktest.NSE(got, want); e > 1e-7 {
				t.Fatalf("scale: normalised squared error %g", e)
			}
			vktest.CheckSentinels(t, "scale", got, n)
		})
	}
}

// refGemm is the float64 reference of ops.Gemm.
func refGemm(g ops.Gemm, a, b, c []float32) []float64 {
	batch := max(g.Batch, 1)
	out := make([]float64, len(c))
	for i := range c {
		out[i] = float64(c[i])
	}
	for z := 0; z < batch; z++ {
		for i := 0; i < g.M; i++ {
			for j := 0; j < g.N; j++ {
				var sum float64
				for k := 0; k < g.K; k++ {
					sum += float64(a[g.OffA+z*g.StrideA+i*g.Lda+k]) * float64(b[g.OffB+z*g.StrideB+k*g.Ldb+j])
				}
				idx := g.OffC + z*g.StrideC + i*g.Ldc + j
				out[idx] = float64(g.Alpha)*sum + float64(g.Beta)*float64(c[idx])
			}
		}
	}
	return out
}

func TestMatmulAgainstReference(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(2, 2))
	shapes := [][3]int{{1, 1, 1}, {1, 64, 1}, {1, 97, 33}, {33, 1, 17}, {17, 33, 65}, {64, 64, 64}, {5, 4, 8},
		{129, 67, 31}, {8, 12, 4}, {100, 300, 40}}
	for _, sh := range shapes {
		m, n, k := sh[0], sh[1], sh[2]
		t.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(t *testing.T) {
			as, bs := randoms(rng, m*k), randoms(rng, k*n)
			a := vktest.NewPadded(t, ctx, "A", m*k, as)
			b := vktest.NewPadded(t, ctx, "B", k*n, bs)
			c := vktest.NewPadded(t, ctx, "C", m*n, nil)
			run(t, ctx, func(s *vk.Sequence) error { return o.Matmul(s, a, b, c, m, n, k) })
			got := read(t, c)
			want := refGemm(ops.Gemm{M: m, N: n, K: k, Lda: k, Ldb: n, Ldc: n, Alpha: 1}, as, bs, make([]float32, m*n))
			if e := vktest.NSE(got[:m*n], want); e > 1e-6 {
				t.Fatalf("normalised squared error %g", e)
			}
			vktest.CheckSentinels(t, "C", got, m*n)
		})
	}
}

func TestGemmStridesBatchAlphaBeta(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(3, 3))
	for _, g := range []ops.Gemm{
		{M: 7, N: 9, K: 5, Lda: 6, Ldb: 11, Ldc: 10, OffA: 3, OffB: 1, OffC: 2, Alpha: 0.5, Beta: 2},
		{M: 16, N: 16, K: 16, Batch: 3, StrideA: 256, StrideB: 300, StrideC: 260, Alpha: 1, Beta: 1},
		{M: 8, N: 8, K: 12, Lda: 16, Ldb: 8, Ldc: 8, OffA: 4, OffB: 8, Batch: 2, StrideA: 128, StrideB: 96, StrideC: 64, Alpha: -1},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d_b%d", g.M, g.N, g.K, g.Batch), func(t *testing.T) {
			if g.Lda == 0 {
				g.Lda, g.Ldb, g.Ldc = g.K, g.N, g.N
			}
			batch := max(g.Batch, 1)
			size := func(off, stride, rows, ld int) int { return off + (batch-1)*stride + rows*ld }
			as := randoms(rng, size(g.OffA, g.StrideA, g.M, g.Lda))
			bs := randoms(rng, size(g.OffB, g.StrideB, g.K, g.Ldb))
			cs := randoms(rng, size(g.OffC, g.StrideC, g.M, g.Ldc))
			g.A = vktest.NewPadded(t, ctx, "A", len(as), as)
			g.B = vktest.NewPadded(t, ctx, "B", len(bs), bs)
			g.C = vktest.NewPadded(t, ctx, "C", len(cs), cs)
			want := refGemm(g, as, bs, cs)
			run(t, ctx, func(s *vk.Sequence) error { return o.Gemm(s, g) })
			got := read(t, g.C)
			if e := vktest.NSE(got[:len(cs)], want); e > 1e-6 {
				t.Fatalf("normalised squared error %g", e)
			}
			vktest.CheckSentinels(t, "C", got, len(cs))
		})
	}
}

func TestGemmShapeErrors(t *testing.T) {
	ctx, o := newOps(t)
	a := vktest.NewPadded(t, ctx, "A", 16, nil)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for _, g := range []ops.Gemm{
		{A: a, B: a, C: a, M: 0, N: 4, K: 4, Alpha: 1},
		{A: a, B: a, C: a, M: 8, N: 8, K: 8, Alpha: 1}, // 64 elements do not fit in 16+pad
		{A: a, B: a, C: a, M: 4, N: 4, K: 4, Lda: 2, Alpha: 1},
	} {
		if err := o.Gemm(s, g); err == nil {
			t.Errorf("accepted %+v", g)
		}
	}
}
