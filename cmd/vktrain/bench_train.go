package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/model/data"
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
	GFLOPS     float64 `json:"gflops"`
	FLOPsStep  float64 `json:"flops_per_step"`
	Device     string  `json:"device"`
}

// benchTrain times whole optimizer steps (forward, backward, clipping, AdamW) of a preset's
// model on random tokens, after two warm-up steps.
func benchTrain(args []string, stdout io.Writer) error {
	fs := newFlags("bench train", "bench train [-preset NAME | -config FILE] [-steps N] [-json]")
	var cf configFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON line")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	steps := cf.steps
	if steps <= 0 {
		steps = 5
	}
	cf.steps = 0 // -steps here is the number of timed steps, not the schedule's length
	cfg, _, name, err := cf.load()
	if err != nil {
		return err
	}
	vocab, err := model.VocabSize(cfg.Model)
	if err != nil {
		return err
	}
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()
	b, t := cfg.Train.Batch, cfg.Model.Context
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
		out := make([]data.Batch, cfg.Train.MicroBatches)
		for i := range out {
			out[i] = data.Batch{B: b, T: t, Input: make([]uint32, b*t), Target: make([]uint32, b*t)}
			for j := range out[i].Input {
				out[i].Input[j], out[i].Target[j] = uint32(rng.IntN(vocab)), uint32(rng.IntN(vocab))
			}
		}
		return out
	}
	tc := cfg.Train
	var elapsed time.Duration
	var flops float64
	for i := 0; i < steps+2; i++ {
		bs := batch()
		start := time.Now()
		r, err := net.Step(bs, ops.StepParams{LR: tc.LR, Beta1: tc.Beta1, Beta2: tc.Beta2, Eps: tc.Eps, WeightDecay: tc.WeightDecay, Step: i + 1})
		if err != nil {
			return err
		}
		if i >= 2 {
			elapsed += time.Since(start)
			flops = r.FLOPs
		}
	}
	secs := elapsed.Seconds()
	tokens := float64(steps * cfg.Train.MicroBatches * b * t)
	res := trainResult{Op: "train", Preset: name, Params: model.CountParams(net.Specs), Batch: b, Context: t, Steps: steps,
		MsPerStep: round(1000*secs/float64(steps), 2), TokensPerS: round(tokens/secs, 1),
		GFLOPS: round(flops*float64(steps)/secs/1e9, 2), FLOPsStep: flops, Device: ctx.Info.Name}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "train %s (%d parameters, %d x %d tokens) on %s: %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s\n",
		name, res.Params, b, t, res.Device, res.MsPerStep, res.TokensPerS, res.GFLOPS)
	return nil
}
