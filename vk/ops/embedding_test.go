package ops_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops/ref"
	"github.com/vktrain/vktrain/vk/vktest"
)

// TestEmbedding checks the gather (overwriting and accumulating) and the scatter-add (from zero
// and onto existing gradients) against the float64 reference, the scatter-add against finite
// differences, with repeated ids and ids past the table that must be skipped.
func TestEmbedding(t *testing.T) {
	ctx, o := newOps(t)
	rng := rand.New(rand.NewPCG(40, 1))
	for _, c := range []struct{ tokens, dim, vocab int }{
		{1, 1, 1}, {5, 7, 3}, {13, 67, 11}, {64, 33, 50}, {3, 130, 2}, {40, 5, 4}, {9, 64, 20}, {6, 8, 3}, {1, 4, 1},
	} {
		t.Run(fmt.Sprintf("t%d_d%d_v%d", c.tokens, c.dim, c.vocab), func(t *testing.T) {
			tokens, dim, vocab := c.tokens, c.dim, c.vocab
			// dtable carries Pad sentinels, which the kernel counts as table rows when they
			// make a whole row: ids past those rows are out of range for both tables.
			past := uint32((vocab*dim + vktest.Pad) / dim)
			ids := make([]uint32, tokens)
			for i := range ids {
				ids[i] = uint32(rng.IntN(vocab))
			}
			if tokens > 4 {
				ids[1], ids[3], ids[4] = past, 0xffffffff, ids[0] // out of range, and a repeat
			}
			ts, outs, dos := randoms(rng, vocab*dim), randoms(rng, tokens*dim), randoms(rng, tokens*dim)
			d0 := randoms(rng, vocab*dim)
			idT := newUint32s(t, ctx, "ids", ids)
			table, err := ctx.NewTensor("table", vocab*dim) // exactly vocab rows
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(table.Free)
			if err := table.WriteFloat32(0, ts); err != nil {
				t.Fatal(err)
			}
			out := vktest.NewPadded(t, ctx, "out", tokens*dim, outs) // overwritten
			outAcc := vktest.NewPadded(t, ctx, "outAcc", tokens*dim, outs)
			dout := vktest.NewPadded(t, ctx, "dout", tokens*dim, dos)
			dtable := vktest.NewPadded(t, ctx, "dtable", vocab*dim, nil)
			dtableAcc := vktest.NewPadded(t, ctx, "dtableAcc", vocab*dim, d0)
			got := replayTwice(t, ctx, func(s *vk.Sequence) error {
				if err := o.EmbeddingForward(s, idT, table, out, tokens, dim, false); err != nil {
					return err
				}
				if err := o.EmbeddingForward(s, idT, table, outAcc, tokens, dim, true); err != nil {
					return err
				}
				if err := o.EmbeddingBackward(s, idT, dout, dtable, tokens, dim); err != nil {
					return err
				}
				return o.EmbeddingBackward(s, idT, dout, dtableAcc, tokens, dim)
			}, out, outAcc, dtable, dtableAcc)
			t64, do64 := ref.F64(ts), ref.F64(dos)
			want := ref.EmbeddingForward(ids, t64, dim)
			checkNSE(t, "out", got[0], want, 1e-7)
			checkNSE(t, "out accumulated", got[1], plus(outs, want), 1e-7)
			wantD := ref.EmbeddingBackward(ids, do64, vocab, dim)
			checkNSE(t, "dtable", got[2], wantD, 1e-6)
			checkNSE(t, "dtable accumulated", got[3], plus(d0, wantD), 1e-6)
			checkFD(t, "dtable", got[2][:vocab*dim], func(table []float64) float64 {
				return ref.Dot(ref.EmbeddingForward(ids, table, dim), do64)
			}, t64)
		})
	}
}
