package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
)

func runPlan(args []string, stdout io.Writer) error {
	fs := newFlags("plan", "plan [-config FILE | -preset NAME] [-set KEY=VALUE ...] [-json]\n\n"+
		"The device memory a configuration's model takes (parameters, gradients, AdamW moments,\n"+
		"activations, workspace; which tensors are held in row chunks) and the host memory its\n"+
		"initialisation stages through, computed without allocating. Exit status 1 when it does not fit.")
	var cf configFlags
	cf.registerChoice(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, _, _, err := cf.load()
	if err != nil {
		return err
	}
	return printPlan(df, cfg, *asJSON, stdout)
}

// errNoFit is returned after printing a plan that does not fit.
var errNoFit = errors.New("the model does not fit the device")

// printPlan prints the memory plan of cfg's model (the full model; a V-cycle's coarser levels
// come on top) for its micro-batch on the device df selects.
func printPlan(df deviceFlags, cfg *config.Config, asJSON bool, stdout io.Writer) error {
	vocab, err := model.VocabSize(cfg.Model)
	if err != nil {
		return err
	}
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()
	plan, err := model.PlanNet(o, cfg.Model, vocab, cfg.Train.Batch, cfg.Train.SeqLen)
	if err != nil {
		return err
	}
	if asJSON {
		err = json.NewEncoder(stdout).Encode(plan)
	} else {
		_, err = fmt.Fprint(stdout, plan)
	}
	if err == nil && !plan.Fits {
		err = errNoFit
	}
	return err
}
