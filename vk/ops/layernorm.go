package ops

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// LayerNormForward records y = (x - mean) * rstd * gamma + beta for each row of the row-major
// rows x cols matrix x, with the biased variance and rstd = 1 / sqrt(var + eps) as in PyTorch,
// and saves each row's mean and rstd for the backward pass. One row per invocation.
func (o *Ops) LayerNormForward(s *vk.Sequence, x, gamma, beta, y, mean, rstd *vk.Tensor, rows, cols int, eps float32) error {
	if err := checkShapes("layernorm", shaped{"x", x, []int{rows, cols}}, shaped{"gamma", gamma, []int{cols}},
		shaped{"beta", beta, []int{cols}}, shaped{"y", y, []int{rows, cols}}, shaped{"mean", mean, []int{rows}},
		shaped{"rstd", rstd, []int{rows}}); err != nil {
		return err
	}
	if !(eps >= 0) || math.IsInf(float64(eps), 1) {
		return fmt.Errorf("layernorm: eps %v must be finite and not negative", eps)
	}
	return counted(s, layerNormFLOPs*float64(rows*cols), o.elementwise(s, "layernorm", "layernorm", rows, shaders.LayerNormPush{Rows: uint32(rows), Cols: uint32(cols), Eps: eps},
		vk.In(x), vk.In(gamma), vk.In(beta), vk.Out(y), vk.Out(mean), vk.Out(rstd)))
}

// LayerNormBackward records the gradients of LayerNormForward given its input x, gamma, the
// saved mean and rstd and the output gradient dy: dx is overwritten (added to when accumulate
// is set; dx may be dy when it is not), dgamma and dbeta are always added to. dx takes one row
// per invocation; dgamma and dbeta one column per invocation, summing the rows in order.
func (o *Ops) LayerNormBackward(s *vk.Sequence, x, gamma, mean, rstd, dy, dx, dgamma, dbeta *vk.Tensor, rows, cols int, accumulate bool) error {
	if err := checkShapes("layernorm backward", shaped{"x", x, []int{rows, cols}}, shaped{"gamma", gamma, []int{cols}},
		shaped{"mean", mean, []int{rows}}, shaped{"rstd", rstd, []int{rows}}, shaped{"dy", dy, []int{rows, cols}},
		shaped{"dx", dx, []int{rows, cols}}, shaped{"dgamma", dgamma, []int{cols}}, shaped{"dbeta", dbeta, []int{cols}}); err != nil {
		return err
	}
	// The parameter gradients go first: they read dy, which dx may overwrite.
	if err := o.elementwise(s, "layernorm", "layernorm_params_grad", vec4s(cols), shaders.RowsColsPush{Rows: uint32(rows), Cols: uint32(cols)},
		vk.In(x), vk.In(mean), vk.In(rstd), vk.In(dy), vk.InOut(dgamma), vk.InOut(dbeta)); err != nil {
		return err
	}
	out, acc := outArg(dx, accumulate)
	return counted(s, layerNormBackwardFLOPs*float64(rows*cols), o.elementwise(s, "layernorm", "layernorm_backward", rows, shaders.LayerNormBackwardPush{Rows: uint32(rows), Cols: uint32(cols), Accumulate: acc},
		vk.In(x), vk.In(gamma), vk.In(mean), vk.In(rstd), vk.In(dy), out))
}
