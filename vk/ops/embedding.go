package ops

import (
	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// EmbeddingForward records out[t, :] = table[ids[t], :] for the first tokens uint32 ids, or
// out[t, :] += ... when accumulate is set (e.g. position embeddings onto token embeddings).
// table is row-major with dim columns and table.Len()/dim rows (row-chunked or not); a row of
// out whose id is not below that is zeroed, or left as it is when accumulating.
func (o *Ops) EmbeddingForward(s *vk.Sequence, ids, table, out *vk.Tensor, tokens, dim int, accumulate bool) error {
	if err := checkShapes("embedding", shaped{"ids", ids, []int{tokens}}, shaped{"table", table, []int{1, dim}},
		shaped{"out", out, []int{tokens, dim}}); err != nil {
		return err
	}
	k, wg, err := o.defaultKernel("embedding", "embedding")
	if err != nil {
		return err
	}
	flops := 0.0
	if accumulate {
		flops = float64(tokens * dim)
	}
	// A row-chunked table: the first chunk writes (or adds) and zeroes the rows whose ids lie
	// elsewhere, every later chunk adds its own rows to those zeros.
	for i, c := range table.Chunks() {
		dst, acc := outArg(out, accumulate || i > 0)
		push := shaders.EmbeddingPush{Tokens: uint32(tokens), Dim: uint32(dim), Vocab: uint32(c.T.Len() / dim), Accumulate: acc, First: uint32(c.Off / dim)}
		if err := s.Dispatch(k, rowGrid(o.ctx, wg, dim, tokens), push, vk.In(ids), vk.In(c.T), dst); err != nil {
			return err
		}
	}
	return counted(s, flops, nil)
}

// EmbeddingBackward records dtable[ids[t], :] += dout[t, :] for the first tokens ids, skipping
// ids not below dtable.Len()/dim. One column per invocation walks the tokens in order, so the
// sums are deterministic.
func (o *Ops) EmbeddingBackward(s *vk.Sequence, ids, dout, dtable *vk.Tensor, tokens, dim int) error {
	if err := checkShapes("embedding backward", shaped{"ids", ids, []int{tokens}}, shaped{"dout", dout, []int{tokens, dim}},
		shaped{"dtable", dtable, []int{1, dim}}); err != nil {
		return err
	}
	for _, c := range dtable.Chunks() { // a row-chunked table chunk by chunk
		push := shaders.EmbeddingBackwardPush{Tokens: uint32(tokens), Dim: uint32(dim), Vocab: uint32(c.T.Len() / dim), First: uint32(c.Off / dim)}
		if err := o.elementwise(s, "embedding", "embedding_backward", vec4s(dim), push, vk.In(ids), vk.In(dout), vk.InOut(c.T)); err != nil {
			return err
		}
	}
	return counted(s, float64(tokens*dim), nil)
}
