package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// attentionResult is one line of `bench attention -json`. The GFLOP/s count the attention math
// (ops.AttentionFLOPs): 4*B*H*T*T*Dh forward, halved when causal, and 2.5 times that backward.
type attentionResult struct {
	Op        string  `json:"op"`
	B         int     `json:"b"`
	H         int     `json:"h"`
	T         int     `json:"t"`
	D         int     `json:"d"`
	Causal    bool    `json:"causal"`
	FwdMs     float64 `json:"fwd_ms"`
	BwdMs     float64 `json:"bwd_ms"`
	FwdGFLOPS float64 `json:"fwd_gflops"`
	BwdGFLOPS float64 `json:"bwd_gflops"`
	Device    string  `json:"device"`
}

func benchAttention(args []string, stdout io.Writer) error {
	fs := newFlags("bench attention", "bench attention -b B -h H -t T -d Dh [-causal] [-runs R] [-json]")
	b := fs.Int("b", 4, "batch entries")
	h := fs.Int("h", 12, "heads")
	t := fs.Int("t", 256, "tokens per entry")
	dh := fs.Int("d", 64, fmt.Sprintf("head size (at most %d)", ops.MaxHeadSize))
	causal := fs.Bool("causal", false, "causal mask (GPT); otherwise every key is seen (BERT without padding)")
	runs := fs.Int("runs", 5, "timed runs after two warm-up runs; the best is reported")
	asJSON := fs.Bool("json", false, "print one JSON line")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *b < 1 || *h < 1 || *t < 1 || *dh < 1 || *runs < 1 {
		return fmt.Errorf("%w: -b, -h, -t, -d and -runs must be positive", errUsage)
	}
	if *dh > ops.MaxHeadSize {
		return fmt.Errorf("%w: -d %d exceeds the largest head size, %d", errUsage, *dh, ops.MaxHeadSize)
	}
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	d := *h * *dh
	a := ops.Attention{B: *b, T: *t, H: *h, Dh: *dh, Causal: *causal}
	var dOut, dQKV *vk.Tensor
	for _, x := range []struct {
		t    **vk.Tensor
		name string
		n    int
	}{{&a.QKV, "qkv", *b * *t * 3 * d}, {&a.Out, "out", *b * *t * d}, {&a.LSE, "lse", *b * *h * *t},
		{&dOut, "dOut", *b * *t * d}, {&dQKV, "dQKV", *b * *t * 3 * d}} {
		if *x.t, err = randomTensor(ctx, rng, x.name, x.n); err != nil {
			return err
		}
	}

	fwd, err := timeDispatches(ctx, *runs, func(s *vk.Sequence) error { return o.AttentionForward(s, a) })
	if err != nil {
		return err
	}
	bwd, err := timeDispatches(ctx, *runs, func(s *vk.Sequence) error { return o.AttentionBackward(s, a, dOut, dQKV) })
	if err != nil {
		return err
	}
	fwdFLOPs, bwdFLOPs := ops.AttentionFLOPs(*b, *h, *t, *dh, *causal)
	res := attentionResult{Op: "attention", B: *b, H: *h, T: *t, D: *dh, Causal: *causal,
		FwdMs: round(fwd, 4), BwdMs: round(bwd, 4),
		FwdGFLOPS: round(fwdFLOPs/fwd/1e6, 2), BwdGFLOPS: round(bwdFLOPs/bwd/1e6, 2), Device: ctx.Info.Name}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	mask := "full"
	if *causal {
		mask = "causal"
	}
	fmt.Fprintf(stdout, "attention B=%d H=%d T=%d Dh=%d %s on %s: forward %.3f ms, %.1f GFLOP/s; backward %.3f ms, %.1f GFLOP/s (best of %d)\n",
		*b, *h, *t, *dh, mask, res.Device, res.FwdMs, res.FwdGFLOPS, res.BwdMs, res.BwdGFLOPS, *runs)
	return nil
}

// randomTensor allocates a tensor of n elements uniform in [-1, 1).
func randomTensor(ctx *vk.Context, rng *rand.Rand, name string, n int) (*vk.Tensor, error) {
	t, err := ctx.NewTensor(name, n)
	if err != nil {
		return nil, err
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = rng.Float32()*2 - 1
	}
	return t, t.WriteFloat32(0, data)
}

// timeDispatches records the dispatches of record into one sequence, runs it twice to warm up
// and then runs times, and returns the best run's milliseconds: the sum of the dispatches' GPU
// times where the device has timestamps, else the wall time of the run.
func timeDispatches(ctx *vk.Context, runs int, record func(*vk.Sequence) error) (float64, error) {
	const maxDispatches = 8
	gpu := ctx.TimestampsSupported()
	var seq *vk.Sequence
	var err error
	if gpu {
		seq, err = ctx.NewTimedSequence(maxDispatches)
	} else {
		seq, err = ctx.NewSequence()
	}
	if err != nil {
		return 0, err
	}
	defer seq.Release()
	if err := record(seq); err != nil {
		return 0, err
	}
	best := 0.0
	for i := 0; i < runs+2; i++ {
		start := time.Now()
		if err := seq.Run(); err != nil {
			return 0, err
		}
		ms := float64(time.Since(start).Nanoseconds()) / 1e6
		if gpu {
			times, err := seq.Times()
			if err != nil {
				return 0, err
			}
			ms = 0
			for _, t := range times {
				ms += t.Ms
			}
		}
		if i >= 2 && (best == 0 || ms < best) {
			best = ms
		}
	}
	return best, nil
}
