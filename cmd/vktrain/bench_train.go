package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/train"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// trainResult is one line of `bench train -json`.
type trainResult struct {
	Op         string  `json:"op"`
	Preset     string  `json:"preset"`
	Params     int     `json:"params"`
	Batch      int     `json:"batch"`
	Context    int     `json:"context"`
	Steps      int     `json:"steps"`
	MsPerStep  float64 `json:"ms_per_step"`
	TokensPerS float64 `json:"tokens_per_s"`
	ImagesPerS float64 `json:"images_per_s,omitempty"` // an image classifier's (vit); its tokens are its images' rows
	GFLOPS     float64 `json:"gflops"`
	FLOPsStep  float64 `json:"flops_per_step"`
	Device     string  `json:"device"`
	// Under mpirun: the job's ranks (tokens_per_s and gflops are the job's), and per step the
	// time rank 0 spent summing gradients across the ranks and the part of it the backward pass
	// hid (train.CommStats).
	Ranks           int     `json:"ranks"`
	ReduceMsPerStep float64 `json:"allreduce_ms_per_step,omitempty"`
	ExposedMsStep   float64 `json:"allreduce_exposed_ms_per_step,omitempty"`
	Hidden          float64 `json:"allreduce_hidden,omitempty"`
	// Breakdown (-breakdown) is the GPU time of one step per kernel, the largest first.
	Breakdown []kernelTime `json:"breakdown,omitempty"`
}

// kernelTime is the GPU time a step spends in one kernel (shader and specialization constants).
type kernelTime struct {
	Kernel     string  `json:"kernel"`
	Dispatches int     `json:"dispatches"`
	Ms         float64 `json:"ms"`
	Share      float64 `json:"share"` // of the step's summed kernel time
}

// benchTrain times whole optimizer steps (forward, backward, clipping, AdamW) of a preset's
// model on random tokens (a ViT on random images), after two warm-up steps; -breakdown then times each kernel of a step.
// Under mpirun the ranks run data-parallel steps (train.Job) and rank 0 reports the job.
func benchTrain(args []string, stdout io.Writer) (err error) {
	fs := newFlags("bench train", "bench train [-preset NAME | -config FILE] [-steps N] [-breakdown] [-json]")
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON line")
	breakdown := fs.Bool("breakdown", false, "also time each kernel of a step with GPU timestamps (best of -steps runs)")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cf.check(); err != nil {
		return err
	}
	steps := 5
	if cf.steps.set {
		steps = int(cf.steps.v)
	}
	cf.steps = optionalInt{} // -steps here is the number of timed steps, not the schedule's length
	cfg, _, name, err := cf.load()
	if err != nil {
		return err
	}
	vocab, err := model.VocabSize(cfg.Model)
	if err != nil {
		return err
	}
	world, _, err := joinJob()
	if err != nil {
		return err
	}
	defer leaveJob(world, &err)
	if world.Size > 1 && *breakdown {
		return fmt.Errorf("%w: -breakdown times one process's step; run it without mpirun", errUsage)
	}
	df.rank = world.LocalRank
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()
	b, t := cfg.Train.Batch, cfg.Train.SeqLen
	net, err := model.NewNet(o, cfg.Model, vocab, b, t, cfg.Train.Seed)
	if err != nil {
		return err
	}
	defer net.Free()
	if err := net.SetGradClip(cfg.Train.GradClip); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(cfg.Train.Seed, 1))
	batch := func() []data.Batch {
		out := make([]data.Batch, world.Size*cfg.Train.GradAccum)
		for i := range out {
			if cfg.Model.Arch == "vit" {
				side := cfg.Model.Image
				out[i] = data.Batch{B: b, Images: make([]float32, b*side*side), Labels: make([]uint32, b)}
				for j := range out[i].Images {
					out[i].Images[j] = float32(rng.NormFloat64())
				}
				for j := range out[i].Labels {
					out[i].Labels[j] = uint32(rng.IntN(vocab))
				}
				continue
			}
			out[i] = data.Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
			for j := range out[i].Input {
				out[i].Input[j], out[i].Target[j] = uint32(rng.IntN(vocab)), uint32(rng.IntN(vocab))
			}
		}
		return out
	}
	tc := cfg.Train
	job := train.NewJob(world)
	var comm train.CommStats
	var elapsed time.Duration
	var flops float64
	for i := 0; i < steps+2; i++ {
		bs := batch()
		start := time.Now()
		if i == 2 {
			comm = job.Comm
		}
		r, err := job.Step(net, bs, ops.StepParams{LR: tc.LR, Beta1: tc.Beta1, Beta2: tc.Beta2, Eps: tc.Eps, WeightDecay: tc.WeightDecay, Step: i + 1})
		if err != nil {
			return err
		}
		if i >= 2 {
			elapsed += time.Since(start)
			flops = r.FLOPs
		}
	}
	var kernels []kernelTime
	if *breakdown {
		if kernels, err = stepBreakdown(net, steps); err != nil {
			return err
		}
	}
	secs := elapsed.Seconds()
	tokens := float64(steps * world.Size * cfg.Train.GradAccum * b * t)
	res := trainResult{Op: "train", Preset: name, Params: model.CountParams(net.Specs), Batch: b, Context: t, Steps: steps,
		MsPerStep: round(1000*secs/float64(steps), 2), TokensPerS: round(tokens/secs, 1),
		GFLOPS: round(flops*float64(steps)/secs/1e9, 2), FLOPsStep: flops, Device: ctx.Info.Name, Breakdown: kernels,
		Ranks: world.Size}
	if cfg.Model.Arch == "vit" {
		res.ImagesPerS = round(res.TokensPerS/float64(t), 1)
	}
	if world.Size > 1 {
		c := job.Comm
		c.Steps -= comm.Steps
		c.ReduceS -= comm.ReduceS
		c.ExposedS -= comm.ExposedS
		res.ReduceMsPerStep = round(1000*c.ReduceS/float64(c.Steps), 2)
		res.ExposedMsStep = round(1000*c.ExposedS/float64(c.Steps), 2)
		res.Hidden = round(c.Hidden(), 3)
	}
	if world.Rank > 0 {
		return nil
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "train %s (%d parameters, %d x %d tokens) on %s: %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s\n",
		name, res.Params, b, t, res.Device, res.MsPerStep, res.TokensPerS, res.GFLOPS)
	if res.ImagesPerS > 0 {
		fmt.Fprintf(stdout, "%.0f images/s\n", res.ImagesPerS)
	}
	if world.Size > 1 {
		fmt.Fprintf(stdout, "%d ranks (the figures above are the job's): gradient all-reduce %.2f ms/step, %.2f ms of it exposed (%.0f%% hidden behind the backward pass)\n",
			world.Size, res.ReduceMsPerStep, res.ExposedMsStep, 100*res.Hidden)
	}
	for _, k := range kernels {
		fmt.Fprintf(stdout, "%10.2f ms %5.1f%% %4d x %s\n", k.Ms, 100*k.Share, k.Dispatches, k.Kernel)
	}
	return nil
}

// stepBreakdown runs a timed training step (Net.TimedStep) runs times and sums each dispatch's
// best time per kernel.
func stepBreakdown(net *model.Net, runs int) ([]kernelTime, error) {
	s, err := net.TimedStep()
	if err != nil {
		return nil, err
	}
	defer s.Release()
	var best []vk.DispatchTime
	for range runs {
		if err := s.Run(); err != nil {
			return nil, err
		}
		times, err := s.Times()
		if err != nil {
			return nil, err
		}
		if best == nil {
			best = times
		}
		for i, d := range times {
			best[i].Ms = min(best[i].Ms, d.Ms)
		}
	}
	index := map[string]int{} // kernel -> its place in out
	var out []kernelTime
	total := 0.0
	for _, d := range best {
		i, ok := index[d.Label]
		if !ok {
			i, index[d.Label] = len(out), len(out)
			out = append(out, kernelTime{Kernel: d.Label})
		}
		out[i].Dispatches++
		out[i].Ms += d.Ms
		total += d.Ms
	}
	for i := range out {
		out[i].Share = round(out[i].Ms/total, 4)
		out[i].Ms = round(out[i].Ms, 2)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Ms > out[b].Ms })
	return out, nil
}
