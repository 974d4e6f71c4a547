package ops_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/vktest"
)

// chunkBytes is the chunk limit of these tests: a table of 50 rows of 12 floats (48 bytes a
// row) is held in chunks of 20, 20 and 10 rows.
const chunkBytes = 1024

// newChunked allocates a rows x cols row-chunked tensor holding data, and fails unless it is
// chunked.
func newChunked(t *testing.T, ctx *vk.Context, name string, rows, cols int, data []float32) *vk.Tensor {
	t.Helper()
	x, err := ctx.NewRowTensor(name, rows, cols, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Free)
	if !x.Chunked() || len(x.Chunks()) < 2 {
		t.Fatalf("%s: %d x %d floats at a %d-byte limit are not chunked", name, rows, cols, chunkBytes)
	}
	write(t, x, 0, data)
	return x
}

// smallInts are n random integers in [-3, 3], so that products are exact in float32.
func smallInts(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.IntN(7) - 3)
	}
	return x
}

// TestRowTensorHostAccess writes and reads a chunked tensor across its chunk boundaries.
func TestRowTensorHostAccess(t *testing.T) {
	ctx := vktest.OpenChunked(t, chunkBytes)
	rows, cols := 50, 12
	x := newChunked(t, ctx, "x", rows, cols, make([]float32, rows*cols))
	if got := len(x.Chunks()); got != 3 {
		t.Fatalf("%d chunks, want 3 (20, 20 and 10 rows)", got)
	}
	want := make([]float32, rows*cols)
	part := []float32{1, 2, 3, 4, 5, 6, 7}
	at := 20*cols - 3 // straddles the first boundary
	copy(want[at:], part)
	write(t, x, at, part)
	got := read(t, x)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := ctx.NewRowTensor("too wide", 8, 1000, 4); err == nil {
		t.Error("4 rows of 4000 bytes at a 1024-byte limit were accepted")
	}
}

// TestChunkedOps runs every op that takes a row-chunked tensor (the embedding gather and
// scatter-add, the products of a tied output layer and their backward, AdamW, the gradient norm,
// fill) on chunked operands, against the float64 reference, and where the split cannot change
// the arithmetic against the same op on one plain tensor, bitwise.
func TestChunkedOps(t *testing.T) {
	ctx := vktest.OpenChunked(t, chunkBytes)
	o, err := ops.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, 1))
	vocab, dim, tokens := 50, 12, 9
	tableVals := smallInts(rng, vocab*dim)
	table := newChunked(t, ctx, "table", vocab, dim, tableVals)
	plain := newPlain(t, ctx, "plain table", vocab*dim)
	write(t, plain, 0, tableVals)
	ids := []uint32{0, 19, 20, 39, 40, 49, 7, 20, 0xffffffff}
	idT := newUint32s(t, ctx, "ids", ids)
	t64 := ref.F64(tableVals)

	t.Run("embedding", func(t *testing.T) {
		outs, dos := randoms(rng, tokens*dim), randoms(rng, tokens*dim)
		out := vktest.NewPadded(t, ctx, "out", tokens*dim, outs)
		outAcc := vktest.NewPadded(t, ctx, "out acc", tokens*dim, outs)
		dout := vktest.NewPadded(t, ctx, "dout", tokens*dim, dos)
		dtable := newChunked(t, ctx, "dtable", vocab, dim, make([]float32, vocab*dim))
		got := replayTwice(t, ctx, func(s *vk.Sequence) error {
			if err := o.EmbeddingForward(s, idT, table, out, tokens, dim, false); err != nil {
				return err
			}
			if err := o.EmbeddingForward(s, idT, table, outAcc, tokens, dim, true); err != nil {
				return err
			}
			return o.EmbeddingBackward(s, idT, dout, dtable, tokens, dim)
		}, out, outAcc, dtable)
		want := ref.EmbeddingForward(ids, t64, dim)
		checkNSE(t, "out", got[0], want, 0)
		checkNSE(t, "out accumulated", got[1], plus(outs, want), 1e-14)
		checkNSE(t, "dtable", got[2], ref.EmbeddingBackward(ids, ref.F64(dos), vocab, dim), 1e-14)
	})

	t.Run("tied output layer", func(t *testing.T) {
		// logits = x·Wᵀ + bias (W chunked along N), dx = dl·W (along K), dW += dlᵀ·x (C chunked),
		// and A chunked both ways: W·xᵀ (along M) and Wᵀ·W (along K).
		rows := 6
		x, dl, bias, dw0 := smallInts(rng, rows*dim), smallInts(rng, rows*vocab), smallInts(rng, vocab+4), smallInts(rng, vocab*dim)
		xT, dlT, biasT := newPlain(t, ctx, "x", rows*dim), newPlain(t, ctx, "dl", rows*vocab), newPlain(t, ctx, "bias", vocab+4)
		write(t, xT, 0, x)
		write(t, dlT, 0, dl)
		write(t, biasT, 0, bias)
		dw := newChunked(t, ctx, "dW", vocab, dim, dw0)
		logits := vktest.NewPadded(t, ctx, "logits", rows*vocab, nil)
		dx := vktest.NewPadded(t, ctx, "dx", rows*dim, nil)
		wx := vktest.NewPadded(t, ctx, "W·xᵀ", vocab*rows, nil)
		wtw := vktest.NewPadded(t, ctx, "Wᵀ·W", dim*dim, nil)
		cases := []struct {
			g   ops.Gemm
			out *vk.Tensor
			c0  []float32
		}{
			{ops.Gemm{A: xT, B: table, C: logits, Bias: biasT, OffBias: 4, M: rows, N: vocab, K: dim, TransB: true, Alpha: 1}, logits, nil},
			{ops.Gemm{A: dlT, B: table, C: dx, M: rows, N: dim, K: vocab, Alpha: 1}, dx, nil},
			{ops.Gemm{A: dlT, B: xT, C: dw, M: vocab, N: dim, K: rows, TransA: true, Alpha: 1, Beta: 1}, dw, dw0},
			{ops.Gemm{A: table, B: xT, C: wx, M: vocab, N: rows, K: dim, TransB: true, Alpha: 1}, wx, nil},
			{ops.Gemm{A: table, B: plain, C: wtw, M: dim, N: dim, K: vocab, TransA: true, Alpha: 0.5}, wtw, nil},
		}
		for i, c := range cases {
			got := replayTwice(t, ctx, func(s *vk.Sequence) error { return o.Gemm(s, c.g) }, c.out)[0]
			g := c.g
			a, b := map[*vk.Tensor][]float32{xT: x, dlT: dl, table: tableVals}[g.A], map[*vk.Tensor][]float32{xT: x, table: tableVals, plain: tableVals}[g.B]
			lda, ldb := g.K, g.N
			if g.TransA {
				lda = g.M
			}
			if g.TransB {
				ldb = g.K
			}
			var b64 []float64
			if g.Bias != nil {
				b64 = ref.F64(bias)
			}
			c0 := make([]float64, g.M*g.N)
			if c.c0 != nil {
				c0 = ref.F64(c.c0)
			}
			want := ref.Gemm{M: g.M, N: g.N, K: g.K, TransA: g.TransA, TransB: g.TransB, Lda: lda, Ldb: ldb, Ldc: g.N,
				OffBias: g.OffBias, Alpha: float64(g.Alpha), Beta: float64(g.Beta)}.Apply(ref.F64(a), ref.F64(b), b64, c0)
			checkNSE(t, fmt.Sprintf("%s (case %d)", c.out.Name, i), got, want, 0)
		}
	})

	t.Run("adamw, grad norm and fill", func(t *testing.T) {
		p0, g0 := randoms(rng, vocab*dim), randoms(rng, vocab*dim)
		n := vocab*dim - 5 // the update stops short of the last chunk's end
		var chunked, flat [4]*vk.Tensor
		for i, name := range []string{"param", "grad", "m", "v"} {
			vals := [][]float32{p0, g0, make([]float32, vocab*dim), make([]float32, vocab*dim)}[i]
			chunked[i] = newChunked(t, ctx, name, vocab, dim, vals)
			flat[i] = newPlain(t, ctx, "plain "+name, vocab*dim)
			write(t, flat[i], 0, vals)
		}
		step := newStepParams(t, ctx, adamwStep(1))
		other := newPlain(t, ctx, "other grad", 3)
		write(t, other, 0, []float32{3, -4, 12})
		grads := []*vk.Tensor{other, chunked[1]}
		parts, _ := newPartials(t, ctx, o, grads)
		vktest.Run(t, ctx, func(s *vk.Sequence) error {
			if err := o.GradNorm(s, grads, parts, step, 1); err != nil {
				return err
			}
			if err := o.AdamW(s, chunked[0], chunked[1], chunked[2], chunked[3], step, n, true); err != nil {
				return err
			}
			if err := o.AdamW(s, flat[0], flat[1], flat[2], flat[3], step, n, true); err != nil {
				return err
			}
			return o.Fill(s, chunked[1], n, 0)
		})
		sq := 9.0 + 16 + 144
		for _, v := range g0 {
			sq += float64(v) * float64(v)
		}
		gotNorm := float64(read(t, step)[ops.StepGradNorm])
		if math.Abs(gotNorm-math.Sqrt(sq)) > 1e-6*math.Sqrt(sq) {
			t.Errorf("grad norm %v, want %v", gotNorm, math.Sqrt(sq))
		}
		for i := range 4 {
			if i == 1 {
				continue
			}
			got, want := read(t, chunked[i]), read(t, flat[i])
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("%s[%d]: %v chunked, %v plain", chunked[i].Name, j, got[j], want[j])
				}
			}
		}
		gotG := read(t, chunked[1])
		for j, v := range gotG {
			if (j < n && v != 0) || (j >= n && v != g0[j]) {
				t.Fatalf("fill: grad[%d] = %v", j, v)
			}
		}
	})

	t.Run("V-cycle maps", func(t *testing.T) {
		// A 50 x 24 table coalesced into 50 x 12 and de-coalesced back (with a split), both
		// chunked differently (20 and 40 rows a chunk), against the same maps on plain tensors.
		bigVals, smallVals := randoms(rng, vocab*2*dim), randoms(rng, vocab*dim)
		bigC, err := ctx.NewRowTensor("big", vocab, 2*dim, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bigC.Free)
		smallC := newChunked(t, ctx, "small", vocab, dim, smallVals)
		bigP, smallP := newPlain(t, ctx, "plain big", vocab*2*dim), newPlain(t, ctx, "plain small", vocab*dim)
		for _, x := range []*vk.Tensor{bigC, bigP} {
			write(t, x, 0, bigVals)
		}
		write(t, smallP, 0, smallVals)
		for _, role := range []ops.Role{ops.RoleOut, ops.RoleIn} {
			rows, cols := ops.Axis{Role: ops.Unmapped, Groups: vocab, Half: 1}, ops.Axis{Role: role, Groups: 3, Half: dim / 3}
			split := ops.Split{Sigma: 0.1, Seed: 7, Stream: 3}
			vktest.Run(t, ctx, func(s *vk.Sequence) error {
				for _, p := range [][2]*vk.Tensor{{bigC, smallC}, {bigP, smallP}} {
					if err := o.Coalesce(s, p[0], p[1], rows, cols, 0.25, 0.5); err != nil {
						return err
					}
					if err := o.DeCoalesce(s, p[1], p[0], rows, cols, 0.5, 0.5, split); err != nil {
						return err
					}
				}
				return nil
			})
			for _, p := range [][2]*vk.Tensor{{bigC, bigP}, {smallC, smallP}} {
				got, want := read(t, p[0]), read(t, p[1])
				for j := range want {
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("role %d: %s[%d] = %v chunked, %v plain", role, p[0].Name, j, got[j], want[j])
					}
				}
			}
		}
	})

	t.Run("a chunked tensor cannot be bound whole", func(t *testing.T) {
		s, err := ctx.NewSequence()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		if err := o.Axpy(s, table, plain, vocab*dim, 1, 1); err == nil {
			t.Error("axpy bound a chunked tensor whole")
		}
	})
}
