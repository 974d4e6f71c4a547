// Command blasbench times OpenBLAS sgemm on the CPU, the peer that BENCHMARKS.md sets against
// `vktrain bench matmul` (lavapipe runs on the same cores). It prints the same lines, with
// "peer":"openblas" in the JSON. It is a module of its own, so that cgo and libopenblas
// (Debian: libopenblas-dev) stay out of vktrain's build:
//
//	cd tools/blasbench && go run . [-m M -n N -k K] [-ta] [-tb] [-beta B] [-gpt] [-runs R] [-threads T] [-json]
//
// OpenBLAS picks its kernels from the CPU model; in a VM that hides it, it may fall back to an
// old core (Prescott, SSE3). OPENBLAS_CORETYPE=SkylakeX (or Haswell) selects the right one.
package main

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// result is one line of -json: the fields of `vktrain bench matmul -json`, plus the peer.
type result struct {
	Op      string  `json:"op"`
	Peer    string  `json:"peer"`
	Label   string  `json:"label,omitempty"`
	M       int     `json:"m"`
	N       int     `json:"n"`
	K       int     `json:"k"`
	TA      bool    `json:"ta"`
	TB      bool    `json:"tb"`
	Bias    bool    `json:"bias"`
	Beta    float32 `json:"beta"`
	Ms      float64 `json:"ms"`
	GFLOPS  float64 `json:"gflops"`
	Device  string  `json:"device"`
	Core    string  `json:"core"` // the kernel set OpenBLAS chose (OPENBLAS_CORETYPE overrides it)
	Threads int     `json:"threads"`
	Timer   string  `json:"timer"`
	Runs    int     `json:"runs"`
}

// shape is one product C = op(A)·op(B) + beta·C.
type shape struct {
	label   string
	m, n, k int
	ta, tb  bool
	beta    float32
}

// gptShapes are the shapes of `vktrain bench matmul -gpt`: one GPT layer's linear maps for 512
// rows, width 256, FFN 1024, as forward, dW += xᵀ·dy and dx = dy·Wᵀ. sgemm has no bias; the
// forward's bias row is left out (it is N additions against M*N*K multiply-adds).
func gptShapes() []shape {
	const rows = 512
	var out []shape
	for _, l := range []struct {
		name    string
		in, out int
	}{{"qkv", 256, 768}, {"proj", 256, 256}, {"fc", 256, 1024}, {"fc2", 1024, 256}} {
		out = append(out,
			shape{label: "fwd " + l.name, m: rows, n: l.out, k: l.in},
			shape{label: "dW " + l.name, m: l.in, n: l.out, k: rows, ta: true, beta: 1},
			shape{label: "dx " + l.name, m: rows, n: l.in, k: l.out, tb: true})
	}
	return out
}

func main() {
	m := flag.Int("m", 1024, "rows of op(A) and C")
	n := flag.Int("n", 1024, "columns of op(B) and C")
	k := flag.Int("k", 1024, "columns of op(A), rows of op(B)")
	ta := flag.Bool("ta", false, "op(A) = Aᵀ (A stored k x m)")
	tb := flag.Bool("tb", false, "op(B) = Bᵀ (B stored n x k)")
	beta := flag.Float64("beta", 0, "C = op(A)·op(B) + beta·C")
	gpt := flag.Bool("gpt", false, "time the GPT layer shapes instead of -m -n -k")
	runs := flag.Int("runs", 5, "timed runs after two warm-up runs; the best is reported")
	threads := flag.Int("threads", 0, "OpenBLAS threads (0: its default, every core)")
	asJSON := flag.Bool("json", false, "print one JSON line per product")
	flag.Parse()
	if flag.NArg() != 0 || *m < 1 || *n < 1 || *k < 1 || *runs < 1 || *threads < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *threads > 0 {
		C.openblas_set_num_threads(C.int(*threads))
	}
	shapes := []shape{{m: *m, n: *n, k: *k, ta: *ta, tb: *tb, beta: float32(*beta)}}
	if *gpt {
		shapes = gptShapes()
	}
	device, core := cpuName(), strings.TrimSpace(C.GoString(C.openblas_get_corename()))
	for _, sh := range shapes {
		ms := timeSgemm(sh, *runs)
		res := result{Op: "matmul", Peer: "openblas", Label: sh.label, M: sh.m, N: sh.n, K: sh.k, TA: sh.ta, TB: sh.tb,
			Beta: sh.beta, Ms: round(ms, 4), GFLOPS: round(2*float64(sh.m)*float64(sh.n)*float64(sh.k)/ms/1e6, 2),
			Device: device, Core: core, Threads: int(C.openblas_get_num_threads()), Timer: "wall", Runs: *runs}
		if *asJSON {
			if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			continue
		}
		label := ""
		if sh.label != "" {
			label = " (" + sh.label + ")"
		}
		fmt.Printf("sgemm %s %dx%dx%d%s on %s (OpenBLAS %s, %d threads): %.3f ms, %.1f GFLOP/s (best of %d, wall timer)\n",
			form(sh.ta, sh.tb), sh.m, sh.n, sh.k, label, device, core,
			res.Threads, res.Ms, res.GFLOPS, *runs)
	}
}

func form(ta, tb bool) string {
	f := [2]byte{'N', 'N'}
	if ta {
		f[0] = 'T'
	}
	if tb {
		f[1] = 'T'
	}
	return string(f[:])
}

// timeSgemm runs one row-major sgemm runs+2 times on random data and returns the best wall
// time of the last runs, in milliseconds.
func timeSgemm(sh shape, runs int) float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		return x
	}
	a, b, c := random(sh.m*sh.k), random(sh.k*sh.n), random(sh.m*sh.n)
	transA, lda := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), sh.k
	if sh.ta {
		transA, lda = C.CblasTrans, sh.m
	}
	transB, ldb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), sh.n
	if sh.tb {
		transB, ldb = C.CblasTrans, sh.k
	}
	best := math.Inf(1)
	for i := 0; i < runs+2; i++ {
		start := time.Now()
		C.cblas_sgemm(C.CblasRowMajor, transA, transB, C.blasint(sh.m), C.blasint(sh.n), C.blasint(sh.k),
			1, (*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda), (*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
			C.float(sh.beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(sh.n))
		ms := float64(time.Since(start).Nanoseconds()) / 1e6
		if i >= 2 {
			best = math.Min(best, ms)
		}
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
	return best
}

// cpuName is the processor's model name from /proc/cpuinfo, or "cpu".
func cpuName() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "cpu"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "cpu"
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
