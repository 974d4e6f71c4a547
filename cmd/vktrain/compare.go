package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/internal/atomicfile"
	"github.com/vktrain/vktrain/train"

	"github.com/vktrain/vktrain/internal/plot"
	"github.com/vktrain/vktrain/vcycle"
	"github.com/vktrain/vktrain/vk/ops"
)

// evalPoint is one validation of a run, with the work done up to it.
type evalPoint struct {
	Step    int      `json:"step"`
	Level   int      `json:"level"`
	Tokens  int64    `json:"tokens"`
	FLOPs   float64  `json:"flops"`
	WallS   float64  `json:"wall_s"`
	ValLoss float64  `json:"val_loss"`
	ValAcc  *float64 `json:"val_acc,omitempty"` // an image classifier's
}

// runSummary is one side of a comparison.
type runSummary struct {
	Steps        int               `json:"steps"`
	Tokens       int64             `json:"tokens"`
	FLOPs        float64           `json:"flops"`
	WallS        float64           `json:"wall_s"`
	FinalValLoss float64           `json:"final_val_loss"`
	FinalValAcc  *float64          `json:"final_val_acc,omitempty"` // an image classifier's
	TestAcc      *float64          `json:"test_acc,omitempty"`
	Eval         []evalPoint       `json:"eval"`
	Levels       []train.LevelWork `json:"levels,omitempty"` // the V-cycle's work per level
	Maps         *train.LevelWork  `json:"maps,omitempty"`   // and of its switches between levels
}

// compareReport is report.json. The targets are what the V-cycle needed to first reach the
// baseline's final validation loss at level 1 (the full model), null if it never did; the
// savings are against the baseline's whole run.
type compareReport struct {
	Config                 string     `json:"config"`
	Device                 string     `json:"device"`
	Baseline               runSummary `json:"baseline"`
	VCycle                 runSummary `json:"vcycle"`
	TargetValLoss          float64    `json:"target_val_loss"`
	FLOPsToTarget          *float64   `json:"flops_to_target"`
	WallToTarget           *float64   `json:"wall_to_target"`
	SavingFLOPsPct         *float64   `json:"saving_flops_pct"`
	SavingWallPct          *float64   `json:"saving_wall_pct"`
	BaselineValAtVCycleUse *float64   `json:"baseline_val_loss_at_vcycle_flops"` // the baseline's last validation within the V-cycle's FLOPs
}

func runCompare(args []string, stdout io.Writer) error {
	fs := newFlags("compare", "compare (-config FILE | -preset NAME) [-set KEY=VALUE ...] [-data PATH] [-steps N] [-seed N] [-out DIR] [-baseline DIR] [-json]\n\n"+
		"Trains the baseline (the full model for train.steps) and the V-cycle of the configuration's [vcycle]\n"+
		"from the same initial weights, seed and data, and writes OUT/report.md, report.json and plot.png\n"+
		"beside the two runs' folders OUT/baseline and OUT/vcycle. -steps sets the baseline's steps;\n"+
		"-set changes any key, e.g. -set vcycle.alpha=1 -set 'vcycle.level.2.down={steps = 400}' (levels count from 1).")
	var cf configFlags
	cf.register(fs)
	out := fs.String("out", "", "output folder (default runs/compare-NAME); an existing comparison is never overwritten")
	asJSON := fs.Bool("json", false, "print report.json on stdout (progress stays on stderr)")
	reuse := fs.String("baseline", "", "reuse this finished baseline run (an earlier comparison's OUT/baseline with the same\n[model] and [train]) instead of training it again, for sweeps over [vcycle]; it is linked as OUT/baseline")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if cf.file == "" && cf.preset == "" {
		return fmt.Errorf("%w: give -config FILE or -preset NAME (a configuration with a [vcycle] section, e.g. gpt-tiny-vcycle)", errUsage)
	}
	cfg, text, name, err := cf.load()
	if err != nil {
		return err
	}
	if cfg.VCycle == nil {
		return fmt.Errorf("%s has no [vcycle] section: nothing to compare (see vktrain config show gpt-tiny-vcycle)", name)
	}
	if *out == "" {
		*out = filepath.Join("runs", "compare-"+name)
	}
	for _, f := range []string{"report.json", "baseline", "vcycle"} {
		if _, err := os.Stat(filepath.Join(*out, f)); err == nil {
			return fmt.Errorf("%s already holds a comparison; choose another -out", *out)
		}
	}
	base := *cfg
	base.VCycle = nil
	baseText, err := base.TOML()
	if err != nil {
		return err
	}

	if *reuse != "" {
		if err := checkBaseline(*reuse, &base); err != nil {
			return err
		}
	}

	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *reuse != "" {
		abs, err := filepath.Abs(*reuse)
		if err == nil {
			err = os.MkdirAll(*out, 0o755)
		}
		if err == nil {
			err = os.Symlink(abs, filepath.Join(*out, "baseline"))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "baseline: reusing %s\n", *reuse)
	} else {
		fmt.Fprintf(os.Stderr, "baseline: %d steps of the full model on %s\n", base.Train.Steps, ctx.Info.Name)
		if _, err := trainCompared(sigCtx, o, &base, baseText, filepath.Join(*out, "baseline")); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "V-cycle: %d levels, %d steps\n", len(cfg.VCycle.Levels), cfg.Steps())
	st, err := trainCompared(sigCtx, o, cfg, text, filepath.Join(*out, "vcycle"))
	if err != nil {
		return err
	}

	rep, err := buildReport(*out, st)
	if err != nil {
		return err
	}
	rep.Config, rep.Device = name, ctx.Info.Name
	if err := writeReport(*out, rep); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprint(os.Stderr, reportMarkdown(rep))
	fmt.Fprintf(os.Stderr, "\nreport: %s, %s, %s\n", filepath.Join(*out, "report.md"), filepath.Join(*out, "report.json"), filepath.Join(*out, "plot.png"))
	return nil
}

// checkBaseline checks that dir is a finished baseline run of base: the same model and
// training configuration, trained to the end.
func checkBaseline(dir string, base *config.Config) error {
	ck, err := train.LoadCheckpoint(dir)
	if err != nil {
		return fmt.Errorf("-baseline: %w", err)
	}
	switch {
	case ck.Config.VCycle != nil:
		return fmt.Errorf("-baseline %s is a V-cycle run, not a baseline", dir)
	case ck.Config.Model != base.Model || ck.Config.Train != base.Train:
		return fmt.Errorf("-baseline %s was trained with another [model] or [train] than this configuration's", dir)
	case ck.State.Step != base.Train.Steps:
		return fmt.Errorf("-baseline %s stopped at step %d of %d", dir, ck.State.Step, base.Train.Steps)
	}
	return nil
}

// trainCompared trains one side of a comparison into out and returns where the run ended.
func trainCompared(ctx context.Context, o *ops.Ops, cfg *config.Config, text []byte, out string) (train.State, error) {
	unlock, err := lockRun(out, 0)
	if err != nil {
		return train.State{}, err
	}
	run, err := train.NewRun(o, cfg, text, out)
	started := err == nil
	defer func() { unlock(started) }()
	if err != nil {
		return train.State{}, err
	}
	defer run.Free()
	total := cfg.Train.Steps
	if cfg.VCycle != nil {
		total = cfg.Steps()
	}
	p := newProgress(total, 0, false, nil, os.Stderr)
	if cfg.VCycle != nil {
		err = vcycle.Train(ctx, o, run, p.vcycleOptions(cfg))
	} else {
		err = run.Train(ctx, p.log)
	}
	p.finish(err == nil)
	if errors.Is(err, train.ErrInterrupted) {
		return run.State, fmt.Errorf("interrupted in %s at step %d: the comparison is incomplete", out, run.State.Step)
	}
	if err != nil {
		return run.State, err
	}
	return run.State, writeCurves(out)
}

// summarize reads a run's metrics into its summary.
func summarize(dir string) (runSummary, error) {
	ms, err := train.ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return runSummary{}, err
	}
	if len(ms) == 0 {
		return runSummary{}, fmt.Errorf("%s: no metrics", dir)
	}
	last := ms[len(ms)-1]
	s := runSummary{Steps: last.Step, Tokens: last.Tokens, FLOPs: last.FLOPs, WallS: last.WallS}
	for _, m := range ms {
		if m.ValLoss != nil {
			s.Eval = append(s.Eval, evalPoint{Step: m.Step, Level: m.Level, Tokens: m.Tokens, FLOPs: m.FLOPs, WallS: m.WallS, ValLoss: *m.ValLoss, ValAcc: m.ValAcc})
		}
	}
	if len(s.Eval) == 0 || last.ValLoss == nil {
		return s, fmt.Errorf("%s: the run did not end with a validation", dir)
	}
	s.FinalValLoss, s.FinalValAcc, s.TestAcc = *last.ValLoss, last.ValAcc, last.TestAcc
	return s, nil
}

// buildReport compares the two runs in out (docs/method.md §6): the work the V-cycle needed to
// first reach the baseline's final validation loss with its full model, and the baseline's loss
// at the V-cycle's budget. The maps' work is in the V-cycle's FLOPs and wall time.
func buildReport(out string, vcState train.State) (*compareReport, error) {
	base, err := summarize(filepath.Join(out, "baseline"))
	if err != nil {
		return nil, err
	}
	vc, err := summarize(filepath.Join(out, "vcycle"))
	if err != nil {
		return nil, err
	}
	vc.Levels, vc.Maps = vcState.Levels, &vcState.Maps
	rep := &compareReport{Baseline: base, VCycle: vc, TargetValLoss: base.FinalValLoss}
	for _, e := range vc.Eval {
		if e.Level == 1 && e.ValLoss <= rep.TargetValLoss {
			f, w := e.FLOPs, e.WallS
			sf, sw := 100*(1-f/base.FLOPs), 100*(1-w/base.WallS)
			rep.FLOPsToTarget, rep.WallToTarget, rep.SavingFLOPsPct, rep.SavingWallPct = &f, &w, &sf, &sw
			break
		}
	}
	for _, e := range base.Eval {
		if e.FLOPs <= vc.FLOPs {
			v := e.ValLoss
			rep.BaselineValAtVCycleUse = &v
		}
	}
	return rep, nil
}

// writeReport writes report.json, report.md and plot.png into out.
func writeReport(out string, rep *compareReport) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, "report.json"), append(js, '\n')); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, "report.md"), []byte(reportMarkdown(rep))); err != nil {
		return err
	}
	series := func(name string, s runSummary, x func(evalPoint) float64) plot.Series {
		ps := plot.Series{Name: name}
		for _, e := range s.Eval {
			ps.X, ps.Y = append(ps.X, x(e)), append(ps.Y, e.ValLoss)
		}
		return ps
	}
	flops := func(e evalPoint) float64 { return e.FLOPs }
	wall := func(e evalPoint) float64 { return e.WallS }
	return plot.WritePNG(filepath.Join(out, "plot.png"),
		plot.Panel{Title: "validation loss by work", XLabel: "training FLOPs", YLabel: "validation loss (nats/token)",
			Series: []plot.Series{series("baseline", rep.Baseline, flops), series("V-cycle", rep.VCycle, flops)}},
		plot.Panel{Title: "validation loss by time", XLabel: "training wall time (s)", YLabel: "validation loss (nats/token)",
			Series: []plot.Series{series("baseline", rep.Baseline, wall), series("V-cycle", rep.VCycle, wall)}})
}

// reportMarkdown is report.md.
func reportMarkdown(rep *compareReport) string {
	var b strings.Builder
	opt := func(v *float64, format string) string {
		if v == nil {
			return "not measured (no evaluation within that budget)"
		}
		return fmt.Sprintf(format, *v)
	}
	fmt.Fprintf(&b, "# V-cycle against the baseline: %s on %s\n\n", rep.Config, rep.Device)
	fmt.Fprintf(&b, "| run | steps | FLOPs | wall (s) | final val loss |\n|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		s    runSummary
	}{{"baseline", rep.Baseline}, {"V-cycle", rep.VCycle}} {
		fmt.Fprintf(&b, "| %s | %d | %.4g | %.1f | %.4f |\n", r.name, r.s.Steps, r.s.FLOPs, r.s.WallS, r.s.FinalValLoss)
	}
	if rep.FLOPsToTarget == nil {
		fmt.Fprintf(&b, "\nThe V-cycle's full model never reached the baseline's final validation loss %.4f.\n", rep.TargetValLoss)
	} else {
		fmt.Fprintf(&b, "\nTo reach the baseline's final validation loss %.4f with the full model, the V-cycle needed\n", rep.TargetValLoss)
		fmt.Fprintf(&b, "%.4g FLOPs (saving %.1f%%) and %.1f s of training (saving %.1f%%).\n",
			*rep.FLOPsToTarget, *rep.SavingFLOPsPct, *rep.WallToTarget, *rep.SavingWallPct)
	}
	fmt.Fprintf(&b, "At the V-cycle's budget (%.4g FLOPs) the baseline's validation loss was %s; the V-cycle ended at %.4f.\n",
		rep.VCycle.FLOPs, opt(rep.BaselineValAtVCycleUse, "%.4f"), rep.VCycle.FinalValLoss)
	fmt.Fprintf(&b, "\n| V-cycle level | steps | FLOPs | wall (s) |\n|---|---|---|---|\n")
	for _, l := range rep.VCycle.Levels {
		fmt.Fprintf(&b, "| %d | %d | %.4g | %.1f |\n", l.Level, l.Steps, l.FLOPs, l.WallS)
	}
	if m := rep.VCycle.Maps; m != nil {
		fmt.Fprintf(&b, "| switches | | %.4g | %.2f |\n", m.FLOPs, m.WallS)
	}
	if rep.Baseline.TestAcc != nil && rep.VCycle.TestAcc != nil {
		fmt.Fprintf(&b, "\nAccuracy: baseline %.2f%% validation, %.2f%% test; V-cycle %.2f%% validation, %.2f%% test.\n",
			100**rep.Baseline.FinalValAcc, 100**rep.Baseline.TestAcc, 100**rep.VCycle.FinalValAcc, 100**rep.VCycle.TestAcc)
	}
	return b.String()
}
