package ops

import "testing"

// The workgroup order streams the large operand once: row blocks first when B is the large one
// (the logits' token table, the wide test product), column blocks first when B fits in cache.
func TestSweepA(t *testing.T) {
	for _, c := range []struct {
		name    string
		g       Gemm
		gm, gn  uint32
		rowsFst bool
	}{
		{"logits = h·wteᵀ", Gemm{M: 512, N: 50260, K: 256}, 8, 393, true},
		{"dwte = dlogitsᵀ·h", Gemm{M: 50260, N: 256, K: 512}, 786, 2, false},
		{"dh = dlogits·wte", Gemm{M: 512, N: 256, K: 50260}, 8, 2, true},
		{"a GPT layer, both cached", Gemm{M: 512, N: 1024, K: 256}, 8, 8, false},
		{"TestMatmul's wide B", Gemm{M: 130, N: 65540, K: 16}, 3, 513, true},
	} {
		if got := c.g.sweepA(c.gm, c.gn); got != c.rowsFst {
			t.Errorf("%s: row blocks first = %v, want %v", c.name, got, c.rowsFst)
		}
	}
}
