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

func runBench(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" {
		fmt.Fprintln(stdout, "Usage: vktrain bench matmul [flags]   (run \"vktrain bench matmul -h\" for its flags)")
		if len(args) == 0 {
			return fmt.Errorf("%w: name a benchmark", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "matmul":
		return benchMatmul(args[1:], stdout)
	}
	return fmt.Errorf("%w: unknown benchmark %q (known: matmul)", errUsage, args[0])
}

// matmulResult is one line of `bench matmul -json`.
type matmulResult struct {
	Op      string         `json:"op"`
	M       int            `json:"m"`
	N       int            `json:"n"`
	K       int            `json:"k"`
	Ms      float64        `json:"ms"`
	GFLOPS  float64        `json:"gflops"`
	Device  string         `json:"device"`
	Variant string         `json:"variant"`
	Params  map[string]int `json:"params"`
	Timer   string         `json:"timer"`
	Runs    int            `json:"runs"`
}

func benchMatmul(args []string, stdout io.Writer) error {
	fs := newFlags("bench matmul", "bench matmul -m M -n N -k K [-runs R] [-json]")
	m := fs.Int("m", 1024, "rows of A and C")
	n := fs.Int("n", 1024, "columns of B and C")
	k := fs.Int("k", 1024, "columns of A, rows of B")
	runs := fs.Int("runs", 5, "timed runs after two warm-up runs; the best is reported")
	asJSON := fs.Bool("json", false, "print one JSON line")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *m < 1 || *n < 1 || *k < 1 || *runs < 1 {
		return fmt.Errorf("%w: -m, -n, -k and -runs must be positive", errUsage)
	}
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	tensor := func(name string, size int) (*vk.Tensor, error) {
		t, err := ctx.NewTensor(name, size)
		if err != nil {
			return nil, err
		}
		data := make([]float32, size)
		for i := range data {
			data[i] = rng.Float32()*2 - 1
		}
		return t, t.WriteFloat32(0, data)
	}
	a, err := tensor("A", *m**k)
	if err != nil {
		return err
	}
	b, err := tensor("B", *k**n)
	if err != nil {
		return err
	}
	c, err := tensor("C", *m**n)
	if err != nil {
		return err
	}
	timer := "gpu"
	var seq *vk.Sequence
	if ctx.TimestampsSupported() {
		seq, err = ctx.NewTimedSequence(1)
	} else {
		timer = "wall"
		seq, err = ctx.NewSequence()
	}
	if err != nil {
		return err
	}
	defer seq.Release()
	if err := o.Matmul(seq, a, b, c, *m, *n, *k); err != nil {
		return err
	}
	best := 0.0
	for i := 0; i < *runs+2; i++ {
		start := time.Now()
		if err := seq.Run(); err != nil {
			return err
		}
		ms := float64(time.Since(start).Nanoseconds()) / 1e6
		if timer == "gpu" {
			times, err := seq.Times()
			if err != nil {
				return err
			}
			ms = times[0].Ms
		}
		if i >= 2 && (best == 0 || ms < best) {
			best = ms
		}
	}
	e, err := o.Profile().Entry("matmul")
	if err != nil {
		return err
	}
	res := matmulResult{Op: "matmul", M: *m, N: *n, K: *k, Ms: round(best, 4),
		GFLOPS: round(ops.MatmulFLOPs(*m, *n, *k)/best/1e6, 2), Device: ctx.Info.Name,
		Variant: e.Variant, Params: e.Params, Timer: timer, Runs: *runs}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "matmul %dx%dx%d on %s (%s %v): %.3f ms, %.1f GFLOP/s (best of %d, %s timer)\n",
		*m, *n, *k, res.Device, res.Variant, res.Params, res.Ms, res.GFLOPS, *runs, timer)
	return nil
}

// openOps opens the selected device and resolves its tuning profile.
func openOps(df deviceFlags) (*vk.Context, *ops.Ops, error) {
	cfg := vk.ConfigFromEnv()
	cfg.Device = df.device
	ctx, err := vk.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	o, err := ops.New(ctx, df.profile)
	if err != nil {
		ctx.Close()
		return nil, nil, err
	}
	return ctx, o, nil
}

func round(x float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}
