package ops_test

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/profile"
	"github.com/vktrain/vktrain/vk/vktest"
)

// gemmCase is one product to run: its shape and layout (the tensors are made by runGemm), how to
// fill the inputs, and whether it has a bias.
type gemmCase struct {
	g     ops.Gemm
	bias  bool
	input func(n int) []float32
}

func (c gemmCase) String() string {
	g := c.g
	s := fmt.Sprintf("%dx%dx%d_ta%v_tb%v_beta%g_bias%v", g.M, g.N, g.K, g.TransA, g.TransB, g.Beta, c.bias)
	if g.Batch > 1 {
		s += fmt.Sprintf("_batch%d", g.Batch)
	}
	return s
}

// dense sets the default row strides, so that sizes can be computed before ops.Gemm does it.
func (c *gemmCase) dense() {
	g := &c.g
	aCols, bCols := g.K, g.N
	if g.TransA {
		aCols = g.M
	}
	if g.TransB {
		bCols = g.K
	}
	g.Lda = cmp.Or(g.Lda, aCols)
	g.Ldb = cmp.Or(g.Ldb, bCols)
	g.Ldc = cmp.Or(g.Ldc, g.N)
}

// sizes returns the elements A, B and C span.
func (c gemmCase) sizes() (na, nb, nc int) {
	g := c.g
	batch := max(g.Batch, 1)
	aRows, bRows := g.M, g.K
	if g.TransA {
		aRows = g.K
	}
	if g.TransB {
		bRows = g.N
	}
	size := func(off, stride, rows, ld int) int { return off + (batch-1)*stride + rows*ld }
	return size(g.OffA, g.StrideA, aRows, g.Lda), size(g.OffB, g.StrideB, bRows, g.Ldb), size(g.OffC, g.StrideC, g.M, g.Ldc)
}

// gemmResult is what runGemm read back, and the float64 reference of it.
type gemmResult struct {
	got  []float32 // all of C's tensor, sentinels included
	want []float64 // C's elements: the product where written, the initial values elsewhere
}

// runGemm makes the tensors of c (C starts as NaN when Beta = 0, to show it is not read), runs
// the product with o and returns the result with its reference.
func runGemm(t *testing.T, ctx *vk.Context, o *ops.Ops, c gemmCase) gemmResult {
	t.Helper()
	c.dense()
	na, nb, nc := c.sizes()
	as, bs, cs := c.input(na), c.input(nb), c.input(nc)
	if c.g.Beta == 0 {
		for i := range cs {
			cs[i] = float32(math.NaN())
		}
	}
	g := c.g
	g.A = vktest.NewPadded(t, ctx, "A", na, as)
	g.B = vktest.NewPadded(t, ctx, "B", nb, bs)
	g.C = vktest.NewPadded(t, ctx, "C", nc, cs)
	var biases []float32
	if c.bias {
		biases = c.input(g.OffBias + g.N)
		g.Bias = vktest.NewPadded(t, ctx, "bias", len(biases), biases)
	}
	run(t, ctx, func(s *vk.Sequence) error { return o.Gemm(s, g) })
	r := ref.Gemm{M: g.M, N: g.N, K: g.K, TransA: g.TransA, TransB: g.TransB, Lda: g.Lda, Ldb: g.Ldb, Ldc: g.Ldc,
		OffA: g.OffA, OffB: g.OffB, OffC: g.OffC, OffBias: g.OffBias, Batch: g.Batch,
		StrideA: g.StrideA, StrideB: g.StrideB, StrideC: g.StrideC, Alpha: float64(g.Alpha), Beta: float64(g.Beta)}
	var bias []float64
	if c.bias {
		bias = ref.F64(biases)
	}
	res := gemmResult{got: read(t, g.C), want: r.Apply(ref.F64(as), ref.F64(bs), bias, ref.F64(cs))}
	vktest.CheckSentinels(t, "C", res.got, nc)
	return res
}

// check compares got with want: NaN (C never written) must stay NaN, the rest within NSE maxNSE.
func (r gemmResult) check(t *testing.T, maxNSE float64) {
	t.Helper()
	var got []float32
	var want []float64
	for i, w := range r.want {
		if math.IsNaN(w) != math.IsNaN(float64(r.got[i])) {
			t.Fatalf("C[%d] = %v, want %v", i, r.got[i], w)
		}
		if !math.IsNaN(w) {
			got, want = append(got, r.got[i]), append(want, w)
		}
	}
	if e := vktest.NSE(got, want); e > maxNSE {
		t.Fatalf("normalised squared error %g", e)
	}
}

// transposes lists the four forms NN, TN, NT, TT.
var transposes = [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}}

// TestMatmul runs every matmul test on one context, so that each pipeline is compiled once
// (llvmpipe takes a second or two per matmul pipeline).
func TestMatmul(t *testing.T) {
	ctx, o := newOps(t)
	// The device's profile, then each register-blocked variant with small tiles (more edge tiles).
	variants := map[string]*ops.Ops{"profile": o}
	for _, v := range []string{"regblock", "texel"} {
		e := profile.Entry{Op: "matmul", Variant: v, Params: map[string]int{
			"wg_x": max(int(ctx.Info.SubgroupSize), 1), "wg_y": 1, "tm": 16, "tn": 8}}
		vo, err := withEntry(t, ctx, e)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		variants[v] = vo
	}
	for _, name := range []string{"profile", "regblock", "texel"} {
		t.Run(name+"/AgainstReference", func(t *testing.T) { testGemmAgainstReference(t, ctx, variants[name]) })
		t.Run(name+"/StridesBatchOffsets", func(t *testing.T) { testGemmStridesBatchOffsets(t, ctx, variants[name]) })
		t.Run(name+"/WideB", func(t *testing.T) { testGemmWideB(t, ctx, variants[name]) })
		t.Run(name+"/LongK", func(t *testing.T) { testGemmLongK(t, ctx, variants[name]) })
	}
	for _, tt := range []struct {
		name string
		test func(*testing.T, *vk.Context, *ops.Ops)
	}{
		{"ExactEveryProfile", testGemmExactEveryProfile},
		{"Deterministic", testGemmDeterministic},
		{"LinearBackwardFiniteDifferences", testLinearBackwardFiniteDifferences},
		{"ShapeErrors", testGemmShapeErrors},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, ctx, o) })
	}
}

func testGemmAgainstReference(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(2, 2))
	uniform := func(n int) []float32 { return randoms(rng, n) }
	// Odd sizes take the scalar path, multiples of 4 the vec4 one; none is a multiple of a tile.
	shapes := [][3]int{{1, 1, 1}, {1, 64, 1}, {1, 97, 33}, {33, 1, 17}, {17, 33, 65}, {5, 4, 8},
		{129, 67, 31}, {8, 12, 4}, {36, 68, 20}, {100, 44, 52}}
	for i, sh := range shapes {
		for j, tr := range transposes {
			c := gemmCase{g: ops.Gemm{M: sh[0], N: sh[1], K: sh[2], TransA: tr[0], TransB: tr[1], Alpha: 1},
				bias: (i+j)%2 == 0, input: uniform}
			if (i+j/2)%2 == 1 {
				c.g.Alpha, c.g.Beta = -0.5, 1
			}
			t.Run(c.String(), func(t *testing.T) { runGemm(t, ctx, o, c).check(t, 1e-6) })
		}
	}
}

// A B of more than 4 MiB (ops' cache bound) with a small A makes the regblock kernel run its
// workgroups row blocks first (TestSweepA), in several row blocks; N = 65540 takes the vec4 path,
// 65537 the scalar one.
func testGemmWideB(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(7, 7))
	uniform := func(n int) []float32 { return randoms(rng, n) }
	for _, n := range []int{65540, 65537} {
		for _, tb := range []bool{false, true} {
			c := gemmCase{g: ops.Gemm{M: 130, N: n, K: 16, TransB: tb, Alpha: 1}, bias: tb, input: uniform}
			t.Run(c.String(), func(t *testing.T) { runGemm(t, ctx, o, c).check(t, 1e-6) })
		}
	}
}

// A K over twice ops' K block makes the CPU kernels record the product as several over blocks of
// K, each added to C after the first (which alone takes beta and the bias); with row strides and
// offsets, in every form; K = 4108 takes the vec4 path, 4099 the scalar one.
func testGemmLongK(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(9, 9))
	uniform := func(n int) []float32 { return randoms(rng, n) }
	for i, k := range []int{4108, 4099} {
		for j, tr := range transposes {
			g := ops.Gemm{M: 12, N: 8, K: k, TransA: tr[0], TransB: tr[1], OffA: 4, OffB: 8, OffC: 4, OffBias: 4, Alpha: 0.5}
			g.Lda, g.Ldb, g.Ldc = k+4, 12, 12
			if tr[0] {
				g.Lda = 16
			}
			if tr[1] {
				g.Ldb = k + 8
			}
			if j%2 == 1 {
				g.Beta = 1
			}
			c := gemmCase{g: g, bias: (i+j)%2 == 0, input: uniform}
			t.Run(c.String(), func(t *testing.T) { runGemm(t, ctx, o, c).check(t, 1e-6) })
		}
	}
}

func testGemmStridesBatchOffsets(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(3, 3))
	uniform := func(n int) []float32 { return randoms(rng, n) }
	layouts := []ops.Gemm{
		{M: 7, N: 9, K: 5, Lda: 11, Ldb: 13, Ldc: 10, OffA: 3, OffB: 1, OffC: 2, OffBias: 3, Alpha: 0.5, Beta: 2},
		{M: 16, N: 16, K: 16, Batch: 3, StrideA: 256, StrideB: 300, StrideC: 260, Alpha: 1, Beta: 1},
		{M: 8, N: 12, K: 12, Lda: 16, Ldb: 20, Ldc: 16, OffA: 4, OffB: 8, OffC: 4, Batch: 2, StrideA: 200, StrideB: 256, StrideC: 132, Alpha: -1},
		// attention-like: the heads of one sequence, side by side in the rows of one tensor
		{M: 13, N: 8, K: 13, Lda: 13, Ldb: 72, Ldc: 24, OffB: 48, Batch: 3, StrideA: 169, StrideB: 8, StrideC: 8, Alpha: 1},
	}
	for i, g := range layouts {
		for j, tr := range transposes {
			c := gemmCase{g: g, bias: (i+j)%2 == 1, input: uniform}
			c.g.TransA, c.g.TransB = tr[0], tr[1]
			if tr[0] && g.Lda != 0 {
				c.g.Lda = max(g.Lda, g.M) // the stored A is K x M
			}
			if tr[1] && g.Ldb != 0 {
				c.g.Ldb = max(g.Ldb, g.K)
			}
			t.Run(fmt.Sprint(i, "_", c), func(t *testing.T) { runGemm(t, ctx, o, c).check(t, 1e-6) })
		}
	}
}

// withEntry returns ops whose matmul runs with entry e, through a profile override file; the
// error is the profile's when e does not fit the device.
func withEntry(t *testing.T, ctx *vk.Context, e profile.Entry) (*ops.Ops, error) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "name = \"test\"\n[ops.%s]\nvariant = %q\n", e.Op, e.Variant)
	for _, k := range slices.Sorted(maps.Keys(e.Params)) {
		fmt.Fprintf(&b, "%s = %d\n", k, e.Params[k])
	}
	path := filepath.Join(t.TempDir(), "entry.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return ops.New(ctx, path)
}

// Small integers keep every sum exact in float32, so each tile configuration, whatever its
// order of accumulation, must give exactly the reference.
func testGemmExactEveryProfile(t *testing.T, ctx *vk.Context, _ *ops.Ops) {
	profiles, err := profile.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	small := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.IntN(5) - 2)
		}
		return x
	}
	for _, p := range profiles {
		e, ok := p.Entries["matmul"]
		if !ok {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			o, err := withEntry(t, ctx, e)
			if err != nil {
				t.Skipf("%s's matmul entry %s %v does not fit this device: %v", p.Source, e.Variant, e.Params, err)
			}
			for _, sh := range [][3]int{{70, 75, 37}, {68, 72, 40}} {
				for _, tr := range transposes {
					c := gemmCase{g: ops.Gemm{M: sh[0], N: sh[1], K: sh[2], TransA: tr[0], TransB: tr[1], Alpha: 1, Beta: 1},
						bias: true, input: small}
					t.Run(c.String(), func(t *testing.T) {
						r := runGemm(t, ctx, o, c)
						for i, w := range r.want {
							if float64(r.got[i]) != w {
								t.Fatalf("C[%d] = %v, want exactly %v", i, r.got[i], w)
							}
						}
					})
				}
			}
		})
	}
}

func testGemmDeterministic(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, tr := range transposes {
		g := ops.Gemm{M: 100, N: 92, K: 84, TransA: tr[0], TransB: tr[1], Alpha: 1}
		a := vktest.NewPadded(t, ctx, "A", g.M*g.K, randoms(rng, g.M*g.K))
		b := vktest.NewPadded(t, ctx, "B", g.K*g.N, randoms(rng, g.K*g.N))
		var runs [2][]float32
		for i := range runs {
			g.A, g.B, g.C = a, b, vktest.NewPadded(t, ctx, "C", g.M*g.N, nil)
			run(t, ctx, func(s *vk.Sequence) error { return o.Gemm(s, g) })
			runs[i] = read(t, g.C)
		}
		for i := range runs[0] {
			if math.Float32bits(runs[0][i]) != math.Float32bits(runs[1][i]) {
				t.Fatalf("ta %v tb %v: C[%d] differs between runs: %v, %v", tr[0], tr[1], i, runs[0][i], runs[1][i])
			}
		}
	}
}

// The backward pass of a linear layer y = x·W + b is two transposed products: dW += xᵀ·dy and
// dx = dy·Wᵀ. Both are checked against central finite differences of L = Σ y·dy.
func testLinearBackwardFiniteDifferences(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	rng := rand.New(rand.NewPCG(6, 6))
	const rows, in, out = 6, 7, 5
	xs, ws, bs, dys := randoms(rng, rows*in), randoms(rng, in*out), randoms(rng, out), randoms(rng, rows*out)
	dw0 := randoms(rng, in*out) // dW accumulates onto this
	x := vktest.NewPadded(t, ctx, "x", rows*in, xs)
	w := vktest.NewPadded(t, ctx, "W", in*out, ws)
	b := vktest.NewPadded(t, ctx, "b", out, bs)
	dy := vktest.NewPadded(t, ctx, "dy", rows*out, dys)
	y := vktest.NewPadded(t, ctx, "y", rows*out, nil)
	dw := vktest.NewPadded(t, ctx, "dW", in*out, dw0)
	dx := vktest.NewPadded(t, ctx, "dx", rows*in, nil)
	run(t, ctx, func(s *vk.Sequence) error {
		if err := o.Gemm(s, ops.Gemm{A: x, B: w, C: y, Bias: b, M: rows, N: out, K: in, Alpha: 1}); err != nil {
			return err
		}
		if err := o.Gemm(s, ops.Gemm{A: x, B: dy, C: dw, M: in, N: out, K: rows, TransA: true, Alpha: 1, Beta: 1}); err != nil {
			return err
		}
		return o.Gemm(s, ops.Gemm{A: dy, B: w, C: dx, M: rows, N: in, K: out, TransB: true, Alpha: 1})
	})

	forward := func(x, w []float64) []float64 {
		y := ref.Matmul(x, w, rows, out, in)
		for i := range y {
			y[i] += float64(bs[i%out])
		}
		return y
	}
	x64, w64, dy64 := ref.F64(xs), ref.F64(ws), ref.F64(dys)
	gotY := read(t, y)
	if e := vktest.NSE(gotY, forward(x64, w64)); e > 1e-6 {
		t.Errorf("y: normalised squared error %g", e)
	}
	wantDW := ref.NumericGrad(func(w []float64) float64 { return ref.Dot(forward(x64, w), dy64) }, w64, 1e-3)
	for i := range wantDW {
		wantDW[i] += float64(dw0[i])
	}
	wantDX := ref.NumericGrad(func(x []float64) float64 { return ref.Dot(forward(x, w64), dy64) }, x64, 1e-3)
	gotDW, gotDX := read(t, dw), read(t, dx)
	if e := vktest.NSE(gotDW, wantDW); e > 1e-6 {
		t.Errorf("dW: normalised squared error %g against finite differences", e)
	}
	if e := vktest.NSE(gotDX, wantDX); e > 1e-6 {
		t.Errorf("dx: normalised squared error %g against finite differences", e)
	}
	da, db := ref.MatmulBackward(x64, w64, dy64, rows, out, in)
	if e := vktest.NSE(gotDX, da); e > 1e-6 {
		t.Errorf("dx: normalised squared error %g against ref.MatmulBackward", e)
	}
	for i := range db {
		db[i] += float64(dw0[i])
	}
	if e := vktest.NSE(gotDW, db); e > 1e-6 {
		t.Errorf("dW: normalised squared error %g against ref.MatmulBackward", e)
	}
	for name, v := range map[string][]float32{"y": gotY, "dW": gotDW, "dx": gotDX} {
		vktest.CheckSentinels(t, name, v, len(v)-vktest.Pad)
	}
}

func testGemmShapeErrors(t *testing.T, ctx *vk.Context, o *ops.Ops) {
	a := vktest.NewPadded(t, ctx, "A", 16, nil)
	s, err := ctx.NewSequence()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	for _, tc := range []struct {
		g    ops.Gemm
		want string // "" when accepted
	}{
		{ops.Gemm{A: a, B: a, C: a, M: 0, N: 4, K: 4, Alpha: 1}, "must be positive"},
		{ops.Gemm{A: a, B: a, C: a, M: 8, N: 8, K: 8, Alpha: 1}, `needs 64 elements, tensor "A" has 53`},
		{ops.Gemm{A: a, B: a, C: a, M: 4, N: 4, K: 4, Lda: 2, Alpha: 1}, "A has rows of 4 elements, its row stride 2 is smaller"},
		{ops.Gemm{A: a, B: a, C: a, M: 2, N: 4, K: 4, Lda: 3, TransA: true, Alpha: 1}, ""}, // the stored A is 4 x 2
		{ops.Gemm{A: a, B: a, C: a, M: 4, N: 4, K: 4, OffB: 40, TransB: true, Alpha: 1}, "B (4x4, row stride 4"},
		{ops.Gemm{A: a, B: a, C: a, Bias: a, OffBias: 50, M: 4, N: 4, K: 4, Alpha: 1}, "Bias (1x4"},
		{ops.Gemm{A: a, B: a, C: a, M: 4, N: 4, K: 4, OffC: -1, Alpha: 1}, "C (4x4"},
		{ops.Gemm{A: a, C: a, M: 4, N: 4, K: 4, Alpha: 1}, "no tensor for B"},
	} {
		err := o.Gemm(s, tc.g)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.g, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.g, err, tc.want)
		}
	}
}
