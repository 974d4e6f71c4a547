package ops

import (
	"fmt"
	"math"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
)

// Slots of the step-parameters tensor: the scalars that change from one training step to the
// next. A training step is recorded once and replayed, so its kernels read these from device
// memory rather than from push constants. The host writes the tensor (StepParams.Write) before
// every replay; GradNorm overwrites StepClipScale and StepGradNorm on the device.
const (
	StepBeta1         = iota // AdamW beta1
	StepOneMinusBeta1        // 1 - beta1, rounded once from float64
	StepBeta2                // AdamW beta2
	StepOneMinusBeta2        // 1 - beta2, rounded once from float64
	StepEps                  // AdamW epsilon
	StepDecayFactor          // 1 - lr*weight_decay, what decayed parameters are multiplied by
	StepSize                 // lr / (1 - beta1^t)
	StepInvBias2Sqrt         // 1 / sqrt(1 - beta2^t)
	StepClipScale            // gradient clipping factor: 1 from the host, GradNorm's on the device
	StepGradNorm             // global gradient L2 norm, written by GradNorm (0 from the host)
	StepLossScale            // 1/count for the mean loss over count targets (0 when count is 0)
	StepParamsLen            // elements of a step-parameters tensor
)

// StepParams are the per-step scalars of a training step, turned into the StepParamsLen floats
// of a step-parameters tensor by Encode.
type StepParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	Step                               int // AdamW's step count t, from 1
	// Tokens is the number of targets the loss counts in the whole step (all micro-batches;
	// ignored targets excluded). CrossEntropyBackward scales by 1/Tokens; 0 gives zero gradients.
	Tokens int
}

// Encode returns the tensor contents: hyperparameters and bias corrections computed in float64
// and rounded once, clipping scale 1 and gradient norm 0.
func (p StepParams) Encode() ([]float32, error) {
	if p.Step < 1 || p.Tokens < 0 {
		return nil, fmt.Errorf("step parameters: step %d must be >= 1 and tokens %d >= 0", p.Step, p.Tokens)
	}
	if !(p.Beta1 >= 0 && p.Beta1 < 1 && p.Beta2 >= 0 && p.Beta2 < 1) {
		return nil, fmt.Errorf("step parameters: betas %g, %g must lie in [0, 1)", p.Beta1, p.Beta2)
	}
	t := float64(p.Step)
	lossScale := 0.0
	if p.Tokens > 0 {
		lossScale = 1 / float64(p.Tokens)
	}
	out := make([]float32, StepParamsLen)
	out[StepBeta1] = float32(p.Beta1)
	out[StepOneMinusBeta1] = float32(1 - p.Beta1)
	out[StepBeta2] = float32(p.Beta2)
	out[StepOneMinusBeta2] = float32(1 - p.Beta2)
	out[StepEps] = float32(p.Eps)
	out[StepDecayFactor] = float32(1 - p.LR*p.WeightDecay)
	out[StepSize] = float32(p.LR / (1 - math.Pow(p.Beta1, t)))
	out[StepInvBias2Sqrt] = float32(1 / math.Sqrt(1-math.Pow(p.Beta2, t)))
	out[StepClipScale] = 1
	out[StepGradNorm] = 0
	out[StepLossScale] = float32(lossScale)
	return out, nil
}

// Write encodes p into the step-parameters tensor t.
func (p StepParams) Write(t *vk.Tensor) error {
	if err := checkShapes("step parameters", stepShape(t)); err != nil {
		return err
	}
	v, err := p.Encode()
	if err != nil {
		return err
	}
	return t.WriteFloat32(0, v)
}

// stepShape is a step-parameters tensor argument, for checkShapes.
func stepShape(t *vk.Tensor) shaped { return shaped{"step parameters", t, []int{StepParamsLen}} }

// adamwPer is how many vec4 blocks of parameters each invocation of the adamw shader updates:
// on lavapipe, 64 take about half the time of 1, and 256 another 8% less than 64 (16M parameters
// at 512 bits on the AMD VM, 2026-12-04: 35.7-35.8 against 38.1-38.9 ms).
const adamwPer = 256

// AdamW records one AdamW step (torch.optim.AdamW semantics) on the first n elements of param,
// with gradient grad times the clipping scale and moments m and v, all read from stepParams
// (see StepParams). decay applies the decoupled weight decay; turn it off for tensors that are
// not decayed (biases, LayerNorm, some embeddings).
//
// Row-chunked tensors are updated chunk by chunk; param, grad, m and v must then share one
// chunking.
func (o *Ops) AdamW(s *vk.Sequence, param, grad, m, v, stepParams *vk.Tensor, n int, decay bool) error {
	if param.Chunked() || grad.Chunked() || m.Chunked() || v.Chunked() {
		ps, gs, ms, vs := param.Chunks(), grad.Chunks(), m.Chunks(), v.Chunks()
		for i, c := range ps {
			if len(gs) != len(ps) || len(ms) != len(ps) || len(vs) != len(ps) ||
				gs[i].T.Len() != c.T.Len() || ms[i].T.Len() != c.T.Len() || vs[i].T.Len() != c.T.Len() {
				return fmt.Errorf("adamw: %q, %q, %q and %q are not chunked alike", param.Name, grad.Name, m.Name, v.Name)
			}
			if k := min(n-c.Off, c.T.Len()); k > 0 {
				if err := o.AdamW(s, c.T, gs[i].T, ms[i].T, vs[i].T, stepParams, k, decay); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := checkShapes("adamw", shaped{"param", param, []int{n}}, shaped{"grad", grad, []int{n}},
		shaped{"m", m, []int{n}}, shaped{"v", v, []int{n}}, stepShape(stepParams)); err != nil {
		return err
	}
	e, err := o.entry("adamw", "default", "texel")
	if err != nil {
		return err
	}
	wg := e.Get("wg_x")
	// The four tensors have one length, so one fits a texel view when all do.
	texels := e.Variant == "texel" && o.ctx.FitsTexels(param)
	k, err := o.ctx.Kernel("adamw", shaders.AdamWSpec{Workgroup: shaders.Workgroup{X: uint32(wg), Y: 1, Z: 1},
		SlotBeta1: StepBeta1, SlotOneMinusBeta1: StepOneMinusBeta1, SlotBeta2: StepBeta2, SlotOneMinusBeta2: StepOneMinusBeta2,
		SlotEps: StepEps, SlotDecayFactor: StepDecayFactor, SlotStepSize: StepSize, SlotInvBias2Sqrt: StepInvBias2Sqrt,
		SlotClipScale: StepClipScale, Per: adamwPer, Texels: boolU32(texels)})
	if err != nil {
		return err
	}
	args := []vk.Arg{vk.InOut(param), vk.In(grad), vk.InOut(m), vk.InOut(v), vk.In(stepParams)}
	if texels {
		args[0], args[1], args[2], args[3] = vk.InOutTexels(param), vk.InTexels(grad), vk.InOutTexels(m), vk.InOutTexels(v)
	}
	return counted(s, adamwFLOPs*float64(n), s.Dispatch(k, grid1D(o.ctx, vk.Groups((n+3)/4, wg*adamwPer)),
		shaders.AdamWPush{N: uint32(n), Decay: boolU32(decay)}, args...))
}
