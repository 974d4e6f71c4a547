package main

import (
	"bytes"
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
	Seed                   uint64     `json:"seed"`
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
	fs := newFlags("compare", "compare (-config FILE | -preset NAME) [-set KEY=VALUE ...] [-data PATH] [-steps N] [-seed N] [-seeds N] [-out DIR] [-baseline DIR] [-json]\n\n"+
		"Trains the baseline (the full model for train.steps) and the V-cycle of the configuration's [vcycle]\n"+
		"from the same initial weights, seed and data, and writes OUT/report.md, report.json and plot.png\n"+
		"beside the two runs' folders OUT/baseline and OUT/vcycle. -steps sets the baseline's steps;\n"+
		"-set changes any key, e.g. -set vcycle.alpha=0.5 -set 'vcycle.moments=\"reset\"'\n"+
		"(V-cycle levels count from 1, the full model: -set 'vcycle.level.2.down={steps = 400}').\n"+
		"With -seeds N it compares N seeds (the seed, seed+1, ...) in OUT/seed-S each and writes the mean\n"+
		"and spread of the final losses and savings to OUT/report.md and report.json; with -baseline D\n"+
		"-vcycle D it trains nothing and reports on D/seed-S/baseline and D/seed-S/vcycle, runs trained\n"+
		"apart (e.g. each seed's two sides at the same time, so that their wall times compare).")
	var cf configFlags
	cf.register(fs)
	out := fs.String("out", "", "output folder (default runs/compare-NAME); an existing comparison is never overwritten")
	asJSON := fs.Bool("json", false, "print report.json on stdout (progress stays on stderr)")
	reuse := fs.String("baseline", "", "reuse this finished baseline run (an earlier comparison's OUT/baseline with the same\n[model] and [train]) instead of training it again, for sweeps over [vcycle]; it is linked as OUT/baseline.\nWith -seeds: an earlier multi-seed comparison's OUT, whose seed-S/baseline each seed reuses")
	seeds := fs.Int("seeds", 1, "compare this many seeds, from the configuration's (or -seed's) upwards")
	reuseVC := fs.String("vcycle", "", "reuse this finished V-cycle run of the same configuration (vktrain train's OUT) instead of\ntraining it: with -baseline, a report on two runs trained apart, e.g. at the same time.\nWith -seeds: a folder whose seed-S/vcycle each seed reuses (e.g. the same folder as -baseline's)")
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
	if *seeds < 1 {
		return fmt.Errorf("%w: -seeds must be at least 1, got %d", errUsage, *seeds)
	}
	if *out == "" {
		*out = filepath.Join("runs", "compare-"+name)
	}
	for _, f := range []string{"report.json", "baseline", "vcycle", "seed-" + fmt.Sprint(cfg.Train.Seed)} {
		if _, err := os.Stat(filepath.Join(*out, f)); err == nil {
			return fmt.Errorf("%s already holds a comparison; choose another -out", *out)
		}
	}
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *seeds == 1 {
		rep, err := compareOne(sigCtx, o, cfg, text, *out, *reuse, *reuseVC)
		if err != nil {
			return err
		}
		rep.Config, rep.Device = name, ctx.Info.Name
		return finishReport(*out, rep, rep, reportMarkdown(rep), *asJSON, stdout)
	}
	multi := seedsReport{Config: name, Device: ctx.Info.Name}
	first := cfg.Train.Seed
	for i := range *seeds {
		seed := first + uint64(i)
		c := *cfg
		c.Train.Seed = seed
		dir := filepath.Join(*out, fmt.Sprintf("seed-%d", seed))
		prev, prevVC := "", ""
		if *reuse != "" {
			prev = filepath.Join(*reuse, fmt.Sprintf("seed-%d", seed), "baseline")
		}
		if *reuseVC != "" {
			prevVC = filepath.Join(*reuseVC, fmt.Sprintf("seed-%d", seed), "vcycle")
		}
		fmt.Fprintf(os.Stderr, "seed %d (%d of %d)\n", seed, i+1, *seeds)
		text, err := c.TOML()
		if err != nil {
			return err
		}
		rep, err := compareOne(sigCtx, o, &c, text, dir, prev, prevVC)
		if err != nil {
			return fmt.Errorf("seed %d: %w", seed, err)
		}
		rep.Config, rep.Device = name, ctx.Info.Name
		if err := writeReport(dir, rep); err != nil {
			return err
		}
		multi.Seeds = append(multi.Seeds, *rep)
	}
	multi.summarize()
	return finishReport(*out, multi, nil, multi.markdown(), *asJSON, stdout)
}

// compareOne trains the baseline (or links reuse, a finished one) and the V-cycle of cfg (whose
// TOML is text; or links reuseVC, a finished one) into out and compares them.
func compareOne(ctx context.Context, o *ops.Ops, cfg *config.Config, text []byte, out, reuse, reuseVC string) (*compareReport, error) {
	base := *cfg
	base.VCycle = nil
	baseText, err := base.TOML()
	if err != nil {
		return nil, err
	}
	var vcState *train.State
	if reuseVC != "" {
		if vcState, err = checkVCycle(reuseVC, cfg); err != nil {
			return nil, err
		}
	}
	if reuse != "" {
		if err := checkBaseline(reuse, &base); err != nil {
			return nil, err
		}
		if err := linkRun(reuse, filepath.Join(out, "baseline")); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "baseline: reusing %s\n", reuse)
	} else {
		fmt.Fprintf(os.Stderr, "baseline: %d steps of the full model\n", base.Train.Steps)
		if _, err := trainCompared(ctx, o, &base, baseText, filepath.Join(out, "baseline")); err != nil {
			return nil, err
		}
	}
	if vcState != nil {
		if err := linkRun(reuseVC, filepath.Join(out, "vcycle")); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "V-cycle: reusing %s\n", reuseVC)
	} else {
		fmt.Fprintf(os.Stderr, "V-cycle: %d levels, %d steps\n", len(cfg.VCycle.Levels), cfg.Steps())
		st, err := trainCompared(ctx, o, cfg, text, filepath.Join(out, "vcycle"))
		if err != nil {
			return nil, err
		}
		vcState = &st
	}
	rep, err := buildReport(out, *vcState)
	if err != nil {
		return nil, err
	}
	rep.Seed = cfg.Train.Seed
	return rep, nil
}

// finishReport writes the report (js for report.json, md for report.md; one is plotted when
// plotted is not nil) into out and prints it: the JSON on stdout with asJSON, else the text on
// stderr.
func finishReport(out string, js any, plotted *compareReport, md string, asJSON bool, stdout io.Writer) error {
	var err error
	if plotted != nil {
		err = writeReport(out, plotted)
	} else {
		err = writeJSONAndMarkdown(out, js, md)
	}
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(js)
	}
	fmt.Fprint(os.Stderr, md)
	fmt.Fprintf(os.Stderr, "\nreport: %s, %s\n", filepath.Join(out, "report.md"), filepath.Join(out, "report.json"))
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

// checkVCycle checks that dir is a finished V-cycle run of cfg and returns where it ended.
func checkVCycle(dir string, cfg *config.Config) (*train.State, error) {
	ck, err := train.LoadCheckpoint(dir)
	if err != nil {
		return nil, fmt.Errorf("-vcycle: %w", err)
	}
	want, err := cfg.TOML()
	if err != nil {
		return nil, err
	}
	got, err := ck.Config.TOML()
	switch {
	case err != nil:
		return nil, err
	case ck.Config.VCycle == nil:
		return nil, fmt.Errorf("-vcycle %s is not a V-cycle run", dir)
	case !bytes.Equal(got, want):
		return nil, fmt.Errorf("-vcycle %s was trained with another configuration than this one", dir)
	case ck.State.Step != cfg.Steps():
		return nil, fmt.Errorf("-vcycle %s stopped at step %d of %d", dir, ck.State.Step, cfg.Steps())
	}
	return &ck.State, nil
}

// linkRun links the finished run dir as link (a side of a comparison), creating link's folder.
func linkRun(dir, link string) error {
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(link), 0o755)
	}
	if err == nil {
		err = os.Symlink(abs, link)
	}
	return err
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

// writeJSONAndMarkdown writes v as out/report.json and md as out/report.md.
func writeJSONAndMarkdown(out string, v any, md string) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, "report.json"), append(js, '\n')); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(out, "report.md"), []byte(md))
}

// writeReport writes report.json, report.md and plot.png into out.
func writeReport(out string, rep *compareReport) error {
	if err := writeJSONAndMarkdown(out, rep, reportMarkdown(rep)); err != nil {
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
