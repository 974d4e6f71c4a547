package ops

import (
	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// EmbeddingForward records out[t, :] = table[ids[t], :] for the first tokens uint32 ids, or
// out[t, :] += ... when accumulate is set (e.g. position embeddings onto token embeddings).
// table is row-major with dim columns and table.Len()/dim rows; a row of out whose id is not
// below that is zeroed, or left as it is when accumulating.
func (o *Ops) EmbeddingForward(s *vk.Sequence, ids, table, out *vk.Tensor, tokens, dim int, accumulate bool) error {
	if err := checkShapes("embedding", shaped{"ids", ids, []int{tokens}}, shaped{"table", table, []int{1, dim}},
		shaped{"out", out, []int{tokens, dim}}); err != nil {
		return err
	}
	vocab := table.Len() / dim
	k, wg, err := o.defaultKernel("embedding", "embedding")
	if err != nil {
		return err
	}
	dst, acc := outArg(out, accumulate)
	flops := 0.0
	if accumulate {
		flops = float64(tokens * dim)
	}
	return counted(s, flops, s.Dispatch(k, rowGrid(o.ctx, wg, dim, tokens), shaders.EmbeddingPush{Tokens: uint32(tokens), Dim: uint32(dim), Vocab: uint32(vocab), Accumulate: acc}, vk.In(ids), vk.In(table), dst))
}

// EmbeddingBackward records dtable[ids[t], :] += dout[t, :] for the first tokens ids, skipping
// ids not below dtable.Len()/dim. One column per invocation walks the tokens in order, so the
// sums are deterministic.
func (o *Ops) EmbeddingBackward(s *vk.Sequence, ids, dout, dtable *vk.Tensor, tokens, dim int) error {
	if err := checkShapes("embedding backward", shaped{"ids", ids, []int{tokens}}, shaped{"dout", dout, []int{tokens, dim}},
		shaped{"dtable", dtable, []int{1, dim}}); err != nil {
		return err
	}
	vocab := dtable.Len() / dim
	return counted(s, float64(tokens*dim), o.elementwise(s, "embedding", "embedding_backward", vec4s(dim), shaders.EmbeddingBackwardPush{Tokens: uint32(tokens), Dim: uint32(dim), Vocab: uint32(vocab)},
		vk.In(ids), vk.In(dout), vk.InOut(dtable)))
}
