package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

func runBench(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" {
		fmt.Fprintln(stdout, "Usage: vktrain bench matmul|attention|train [flags]   (run \"vktrain bench NAME -h\" for its flags)")
		if len(args) == 0 {
			return fmt.Errorf("%w: name a benchmark", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "attention":
		return benchAttention(args[1:], stdout)
	case "train":
		return benchTrain(args[1:], stdout)
	case "matmul":
		return benchMatmul(args[1:], stdout)
	}
	return fmt.Errorf("%w: unknown benchmark %q (known: matmul, attention, train)", errUsage, args[0])
}

// matmulResult is one line of `bench matmul -json`.
type matmulResult struct {
	Op      string         `json:"op"`
	Label   string         `json:"label,omitempty"` // the GPT layer shape, with -gpt
	M       int            `json:"m"`
	N       int            `json:"n"`
	K       int            `json:"k"`
	TA      bool           `json:"ta"`
	TB      bool           `json:"tb"`
	Bias    bool           `json:"bias"`
	Beta    float32        `json:"beta"`
	Ms      float64        `json:"ms"`
	GFLOPS  float64        `json:"gflops"`
	Device  string         `json:"device"`
	Variant string         `json:"variant"`
	Params  map[string]int `json:"params"`
	Timer   string         `json:"timer"`
	Runs    int            `json:"runs"`
}

// matmulShape is one product to time.
type matmulShape struct {
	label   string
	m, n, k int
	ta, tb  bool
	bias    bool
	beta    float32
}

// gptShapes are the products of one GPT layer's linear maps y = x·W + b (x: rows x in, W: in x
// out) for B*T = 512 rows, width 256 and FFN 1024, in the forms training runs them: forward with
// the bias, dW += xᵀ·dy, dx = dy·Wᵀ.
func gptShapes() []matmulShape {
	const rows = 512
	var out []matmulShape
	for _, l := range []struct {
		name    string
		in, out int
	}{{"qkv", 256, 768}, {"proj", 256, 256}, {"fc", 256, 1024}, {"fc2", 1024, 256}} {
		out = append(out,
			matmulShape{label: "fwd " + l.name, m: rows, n: l.out, k: l.in, bias: true},
			matmulShape{label: "dW " + l.name, m: l.in, n: l.out, k: rows, ta: true, beta: 1},
			matmulShape{label: "dx " + l.name, m: rows, n: l.in, k: l.out, tb: true})
	}
	return out
}

func benchMatmul(args []string, stdout io.Writer) error {
	fs := newFlags("bench matmul", "bench matmul [-m M -n N -k K] [-ta] [-tb] [-bias] [-beta B] [-gpt] [-runs R] [-json]")
	m := fs.Int("m", 1024, "rows of op(A) and C")
	n := fs.Int("n", 1024, "columns of op(B) and C")
	k := fs.Int("k", 1024, "columns of op(A), rows of op(B)")
	ta := fs.Bool("ta", false, "op(A) = Aᵀ (A stored k x m)")
	tb := fs.Bool("tb", false, "op(B) = Bᵀ (B stored n x k)")
	bias := fs.Bool("bias", false, "add a bias row to C")
	beta := fs.Float64("beta", 0, "C = op(A)·op(B) + beta·C (1 accumulates)")
	gpt := fs.Bool("gpt", false, "time the GPT layer shapes (rows 512, width 256, FFN 1024: forward, dW, dx) instead of -m -n -k")
	runs := fs.Int("runs", 5, "timed runs after two warm-up runs; the best is reported")
	asJSON := fs.Bool("json", false, "print one JSON line per product")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *m < 1 || *n < 1 || *k < 1 || *runs < 1 {
		return fmt.Errorf("%w: -m, -n, -k and -runs must be positive", errUsage)
	}
	shapes := []matmulShape{{m: *m, n: *n, k: *k, ta: *ta, tb: *tb, bias: *bias, beta: float32(*beta)}}
	if *gpt {
		shapes = gptShapes()
	}
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()
	e, err := o.Profile().Entry("matmul")
	if err != nil {
		return err
	}
	for _, sh := range shapes {
		ms, timer, err := timeMatmul(ctx, o, sh, *runs)
		if err != nil {
			return err
		}
		res := matmulResult{Op: "matmul", Label: sh.label, M: sh.m, N: sh.n, K: sh.k, TA: sh.ta, TB: sh.tb,
			Bias: sh.bias, Beta: sh.beta, Ms: round(ms, 4), GFLOPS: round(ops.MatmulFLOPs(sh.m, sh.n, sh.k)/ms/1e6, 2),
			Device: ctx.Info.Name, Variant: e.Variant, Params: e.Params, Timer: timer, Runs: *runs}
		if *asJSON {
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return err
			}
			continue
		}
		form := map[[2]bool]string{{false, false}: "NN", {true, false}: "TN", {false, true}: "NT", {true, true}: "TT"}[[2]bool{sh.ta, sh.tb}]
		label := ""
		if sh.label != "" {
			label = " (" + sh.label + ")"
		}
		fmt.Fprintf(stdout, "matmul %s %dx%dx%d%s on %s (%s %v): %.3f ms, %.1f GFLOP/s (best of %d, %s timer)\n",
			form, sh.m, sh.n, sh.k, label, res.Device, res.Variant, res.Params, res.Ms, res.GFLOPS, *runs, timer)
	}
	return nil
}

// timeMatmul runs one product runs+2 times on random data and returns the best time of the
// last runs, from GPU timestamps where the device has them.
func timeMatmul(ctx *vk.Context, o *ops.Ops, sh matmulShape, runs int) (best float64, timer string, err error) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tensors []*vk.Tensor
	defer func() {
		for _, t := range tensors {
			t.Free()
		}
	}()
	tensor := func(name string, size int) (*vk.Tensor, error) {
		t, err := ctx.NewTensor(name, size)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, t)
		data := make([]float32, size)
		for i := range data {
			data[i] = rng.Float32()*2 - 1
		}
		return t, t.WriteFloat32(0, data)
	}
	g := ops.Gemm{M: sh.m, N: sh.n, K: sh.k, TransA: sh.ta, TransB: sh.tb, Alpha: 1, Beta: sh.beta}
	for _, x := range []struct {
		t    **vk.Tensor
		name string
		size int
	}{{&g.A, "A", sh.m * sh.k}, {&g.B, "B", sh.k * sh.n}, {&g.C, "C", sh.m * sh.n}} {
		if *x.t, err = tensor(x.name, x.size); err != nil {
			return 0, "", err
		}
	}
	if sh.bias {
		if g.Bias, err = tensor("bias", sh.n); err != nil {
			return 0, "", err
		}
	}
	timer = "gpu"
	var seq *vk.Sequence
	if ctx.TimestampsSupported() {
		// ops.Gemm records a long product as several, one per block of K rows (2048 on CPUs).
		seq, err = ctx.NewTimedSequence(8 + sh.k/1024)
	} else {
		timer = "wall"
		seq, err = ctx.NewSequence()
	}
	if err != nil {
		return 0, "", err
	}
	defer seq.Release()
	if err := o.Gemm(seq, g); err != nil {
		return 0, "", err
	}
	for i := 0; i < runs+2; i++ {
		start := time.Now()
		if err := seq.Run(); err != nil {
			return 0, "", err
		}
		ms := float64(time.Since(start).Nanoseconds()) / 1e6
		if timer == "gpu" {
			times, err := seq.Times()
			if err != nil {
				return 0, "", err
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
	return best, timer, nil
}

// openOps opens the selected device and resolves its tuning profile.
func openOps(df deviceFlags) (*vk.Context, *ops.Ops, error) {
	ctx, err := df.open()
	if err != nil {
		return nil, nil, err
	}
	o, err := ops.New(ctx, df.profile)
	if err != nil {
		ctx.Close()
		return nil, nil, err
	}
	for _, note := range o.Profile().Notes() {
		fmt.Fprintf(os.Stderr, "vktrain: %s\n", note)
	}
	return ctx, o, nil
}

func round(x float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits || (math.Abs(x)*p < 100 && i < 12); i++ {
		p *= 10 // more decimals for a small value, so that it keeps 3 significant digits
	}
	return math.Round(x*p) / p
}
