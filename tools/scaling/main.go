// Command scaling predicts the step time and efficiency of data-parallel training against the
// number of ranks, for the table in docs/scaling.md: compute from the FLOPs of a step and a
// device's rate, communication from a ring all-reduce of the gradients over a link, with and
// without the overlap of vktrain's gradient buckets.
//
//	go run ./tools/scaling            the markdown table
//	go run ./tools/scaling -json      the same figures, one JSON object per row
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
)

// workload is a model and one rank's micro-batch of a step (grad_accum 1).
type workload struct {
	Name         string
	Cfg          config.Model
	Vocab, Batch int
}

// device is a rate of training FLOPs, and how gradients reach the host.
type device struct {
	Name   string
	GFLOPS float64 // sustained training rate
	// StageGBs is the bandwidth of the copies of the gradients to the host and back (PCIe);
	// 0: the device computes in host memory (lavapipe), nothing to copy.
	StageGBs float64
	Source   string
}

// link is what carries the all-reduce between ranks: bandwidth and per-message latency.
type link struct {
	Name      string
	GBs       float64
	LatencyUS float64
}

// row is one prediction.
type row struct {
	Model      string  `json:"model"`
	Device     string  `json:"device"`
	Link       string  `json:"link"`
	Ranks      int     `json:"ranks"`
	Params     int     `json:"params"`
	ComputeMs  float64 `json:"compute_ms"`   // one rank's forward and backward
	AllReduce  float64 `json:"allreduce_ms"` // ring all-reduce of the gradients, plus staging
	StepMs     float64 `json:"step_ms"`      // without overlap
	StepOverMs float64 `json:"step_overlap_ms"`
	Eff        float64 `json:"efficiency"` // ComputeMs / StepMs
	EffOver    float64 `json:"efficiency_overlap"`
}

func main() {
	asJSON := flag.Bool("json", false, "print one JSON object per row")
	flag.Parse()
	small, err := config.Preset("gpt-small")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	loads := []workload{
		{"gpt-small (B8 x T128)", small.Model, 256, small.Train.Batch},
		// GPT-2 124M as Hugging Face's gpt2, llm.c's batch of 4 x 1024 per GPU.
		{"GPT-2 124M (B4 x T1024)", config.Model{Arch: "gpt", Context: 1024, Layers: 12, Width: 768, Heads: 12, FFN: 3072}, 50257, 4},
	}
	devices := []device{
		{"lavapipe, 2-core Xeon", 32.2, 0, "measured: gpt-small, BENCHMARKS.md"},
		{"GPU at 20 TFLOP/s", 20000, 25, "assumed: ~25% of a current GPU's published FP32 peak (RTX 4090: 82.6)"},
	}
	pcie, eth := link{"PCIe 4 (one host)", 25, 5}, []link{{"100 GbE", 12.5, 20}, {"25 GbE", 3.125, 20}}
	ranks := []int{2, 8, 64}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, w := range loads {
			for _, d := range devices {
				for _, l := range links(d, pcie, eth) {
					for _, r := range ranks {
						enc.Encode(predict(w, d, l, r))
					}
				}
			}
		}
		return
	}
	fmt.Println("| model | device | link | compute ms | all-reduce ms (8 ranks) | efficiency at 2 / 8 / 64 ranks, without / with overlap | ranks at >= 50% with overlap |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, w := range loads {
		for _, d := range devices {
			for _, l := range links(d, pcie, eth) {
				var effs []string
				for _, r := range ranks {
					p := predict(w, d, l, r)
					if l == pcie && r > 8 {
						effs = append(effs, "-")
						continue
					}
					effs = append(effs, fmt.Sprintf("%.0f%% / %.0f%%", 100*p.Eff, 100*p.EffOver))
				}
				p8 := predict(w, d, l, 8)
				fmt.Printf("| %s, %.1fM | %s | %s | %.1f | %.1f | %s | %s |\n", w.Name, float64(p8.Params)/1e6, d.Name, l.Name,
					p8.ComputeMs, p8.AllReduce, strings.Join(effs, ", "), breaks(w, d, l, l != pcie))
			}
		}
	}
	fmt.Println()
	for _, d := range devices {
		fmt.Printf("- %s: %.1f GFLOP/s (%s)\n", d.Name, d.GFLOPS, d.Source)
	}
}

// links are the links worth predicting for d: lavapipe ranks share a host's cores, so only
// ranks on separate hosts (Ethernet) make sense for it.
func links(d device, pcie link, eth []link) []link {
	if d.StageGBs == 0 {
		return eth
	}
	return append([]link{pcie}, eth...)
}

// breaks is the largest power-of-two number of ranks at which the step with overlap still
// keeps half its time computing: up to 8 on one host, 65536 over a network.
func breaks(w workload, d device, l link, network bool) string {
	most := 8
	if network {
		most = 1 << 16
	}
	if predict(w, d, l, 2).EffOver < 0.5 {
		return "none"
	}
	r := 2
	for r < most && predict(w, d, l, 2*r).EffOver >= 0.5 {
		r *= 2
	}
	if r == most {
		return fmt.Sprintf("all %d", most)
	}
	return fmt.Sprint(r)
}

// predict is the step of w on R ranks of d joined by l.
func predict(w workload, d device, l link, ranks int) row {
	specs := model.Params(w.Cfg, w.Vocab)
	params, last := 0, 0
	for _, p := range specs {
		params += p.Size()
		// The embeddings' bucket is the backward pass's last: nothing is left to hide it.
		if !strings.HasPrefix(p.Name, "h.") && !strings.HasPrefix(p.Name, "ln_f.") {
			last += p.Size()
		}
	}
	// Training FLOPs per token: 6 per parameter (forward 2, backward 4) and the attention's
	// 12 x layers x context x width (Kaplan et al. 2020; Chowdhery et al. 2022, appendix B).
	tokens := float64(w.Batch * w.Cfg.Context)
	flops := tokens * (6*float64(params) + 12*float64(w.Cfg.Layers*w.Cfg.Context*w.Cfg.Width))
	compute := flops / (d.GFLOPS * 1e9) * 1e3
	bytes := 4 * float64(params)
	ring := func(b float64) float64 {
		return 2*float64(ranks-1)/float64(ranks)*b/(l.GBs*1e9)*1e3 + 2*float64(ranks-1)*l.LatencyUS/1e3
	}
	stage := 0.0
	if d.StageGBs > 0 {
		stage = 2 * bytes / (d.StageGBs * 1e9) * 1e3
	}
	comm := ring(bytes)
	backward := compute * 2 / 3
	exposed := max(ring(bytes*float64(last)/float64(params)), comm-backward)
	r := row{Model: w.Name, Device: d.Name, Link: l.Name, Ranks: ranks, Params: params, ComputeMs: compute,
		AllReduce: comm + stage, StepMs: compute + comm + stage, StepOverMs: compute + exposed + stage}
	r.Eff, r.EffOver = compute/r.StepMs, compute/r.StepOverMs
	return r
}
