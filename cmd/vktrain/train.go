package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/train"
	"github.com/vktrain/vktrain/vcycle"
)

// defaultPreset is what `vktrain train` trains without -config or -preset.
const defaultPreset = "gpt-tiny"

// configFlags choose a configuration: a file or a preset, with command-line overrides.
type configFlags struct {
	def                string // the preset without -config or -preset; "" means defaultPreset
	file, preset, data string
	steps              int
	seed               int64
	set                []string
}

// register registers the flags that choose and change a configuration, and those of a run:
// -data, -steps and -seed.
func (c *configFlags) register(fs *flag.FlagSet) {
	c.registerChoice(fs)
	fs.StringVar(&c.data, "data", "", "corpus: a text file or a folder of .txt files (default: the config's, data/austen)")
	fs.IntVar(&c.steps, "steps", 0, "optimizer steps: the length of the learning-rate schedule (default: the config's)")
	fs.Int64Var(&c.seed, "seed", -1, "seed for initialisation, batches and dropout (default: the config's)")
}

// registerChoice registers -config, -preset and -set.
func (c *configFlags) registerChoice(fs *flag.FlagSet) {
	if c.def == "" {
		c.def = defaultPreset
	}
	c.seed = -1
	fs.StringVar(&c.file, "config", "", "configuration TOML file (see vktrain config show NAME)")
	fs.StringVar(&c.preset, "preset", "", "embedded preset (vktrain config list); default "+c.def)
	fs.Func("set", "KEY=VALUE: change one configuration key (repeatable), e.g. -set train.lr=1e-3,\n"+
		"-set vcycle.alpha=0.5, -set 'vcycle.level.1.down={steps = 200}' (levels count from 0)", func(s string) error {
		c.set = append(c.set, s)
		return nil
	})
}

// load returns the configuration, its TOML text (with the overrides applied) and a run name.
func (c *configFlags) load() (*config.Config, []byte, string, error) {
	if c.file != "" && c.preset != "" {
		return nil, nil, "", fmt.Errorf("%w: give -config or -preset, not both", errUsage)
	}
	name := c.preset
	var text []byte
	var err error
	switch {
	case c.file != "":
		text, err = os.ReadFile(c.file)
		name = filepath.Base(c.file)
		name = name[:len(name)-len(filepath.Ext(name))]
	default:
		if name == "" {
			name = c.def
		}
		text, err = config.PresetText(name)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("config: %w", err)
	}
	source := "preset:" + name
	if c.file != "" {
		source = c.file
	}
	if text, err = config.Override(text, c.set); err != nil {
		return nil, nil, "", fmt.Errorf("%w: -set: %v", errUsage, err)
	}
	cfg, err := config.Parse(source, text)
	if err != nil {
		return nil, nil, "", err
	}
	if c.data != "" {
		cfg.Train.Data = c.data
	}
	if c.steps > 0 {
		cfg.Train.Steps = c.steps
	}
	if c.seed >= 0 {
		cfg.Train.Seed = uint64(c.seed)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, "", err
	}
	text, err = cfg.TOML()
	return cfg, text, name, err
}

func runTrain(args []string, stdout io.Writer) (err error) {
	fs := newFlags("train", "train [-config FILE | -preset NAME] [-set KEY=VALUE ...] [-data PATH] [-steps N] [-out DIR] [-resume DIR] [-seed N] [-init DIR] [-dry-run] [-json]")
	var cf configFlags
	cf.register(fs)
	out := fs.String("out", "", "output folder (default runs/NAME); an existing run is never overwritten")
	resume := fs.String("resume", "", "continue the run in this output folder from its last checkpoint")
	asJSON := fs.Bool("json", false, "print each metrics line as JSON instead of a progress bar")
	initDir := fs.String("init", "", "start from a Hugging Face model folder (config.json, model.safetensors) of the configured model")
	dryRun := fs.Bool("dry-run", false, "print the memory plan (as vktrain plan; JSON with -json) and train nothing")
	checkRanks := fs.Bool("check-ranks", false, "under mpirun: compare every rank's parameters after each step and stop at the first difference")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	// The configuration is checked before the device is opened: its errors need no GPU.
	var cfg *config.Config
	var text []byte
	var initParams map[string][]float32
	if *resume != "" {
		if cf.file != "" || cf.preset != "" || cf.data != "" || cf.seed >= 0 || len(cf.set) > 0 || *initDir != "" ||
			*out != "" && filepath.Clean(*out) != filepath.Clean(*resume) {
			return fmt.Errorf("%w: -resume takes the run's own configuration and folder; only -steps may change", errUsage)
		}
	} else {
		var name string
		var err error
		if cfg, text, name, err = cf.load(); err != nil {
			return err
		}
		if *dryRun {
			return printPlan(df, cfg, *asJSON, stdout)
		}
		if *initDir != "" {
			vocab, err := model.VocabSize(cfg.Model)
			if err != nil {
				return err
			}
			if initParams, err = train.ReadHuggingFace(*initDir, cfg.Model, vocab); err != nil {
				return err
			}
		}
		if *out == "" {
			*out = filepath.Join("runs", name)
		}
	}
	world, msgs, err := joinJob()
	if err != nil {
		return err
	}
	defer leaveJob(world, &err)
	df.rank = world.LocalRank
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()

	var run *train.Run
	if *resume != "" {
		run, err = train.ResumeRun(o, *resume, cf.steps)
	} else {
		run, err = train.NewRun(o, cfg, text, *out)
	}
	if err != nil {
		return err
	}
	defer run.Free()
	if initParams != nil {
		if err := run.Net.SetParams(initParams); err != nil {
			return err
		}
		fmt.Fprintf(msgs, "starting from the parameters in %s\n", *initDir)
	}
	accum := run.Cfg.Train.GradAccum
	if err := run.JoinWorld(world); err != nil {
		return err
	}
	if *checkRanks {
		run.CheckReplicas()
	}
	if run.Cfg.Train.GradAccum != accum {
		fmt.Fprintf(msgs, "%d ranks: train.grad_accum %d -> %d keeps the global batch of %d micro-batches per step\n",
			world.Size, accum, run.Cfg.Train.GradAccum, world.Size*run.Cfg.Train.GradAccum)
	}

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	total := run.Cfg.Steps()
	if v := run.Cfg.VCycle; v != nil {
		fmt.Fprintf(msgs, "V-cycle of %d levels, %d steps in all\n", len(v.Levels), total)
	}
	where := ctx.Info.Name
	if world.Size > 1 {
		where = fmt.Sprintf("%d ranks (rank 0: %s)", world.Size, where)
	}
	fmt.Fprintf(msgs, "training %s (%d parameters) on %s for %d steps from step %d; output in %s\n",
		run.Cfg.Model.Arch, model.CountParams(run.Net.Specs), where, total, run.State.Step, run.Out)
	if world.Rank > 0 {
		stdout = io.Discard
	}
	p := newProgress(total, run.State.Step, *asJSON, stdout, msgs)
	if run.Cfg.VCycle != nil {
		err = vcycle.Train(sigCtx, o, run, p.vcycleOptions(run.Cfg))
	} else {
		err = run.Train(sigCtx, p.log)
	}
	p.finish()
	switch {
	case errors.Is(err, train.ErrInterrupted):
		fmt.Fprintf(msgs, "interrupted at step %d; checkpoint written. Continue with: vktrain train -resume %s\n", run.State.Step, run.Out)
		return nil
	case err != nil:
		return err
	}
	if run.Cfg.VCycle != nil {
		printLevels(msgs, run.State)
	}
	if world.Rank > 0 {
		return nil
	}
	if err := writeCurves(run.Out); err != nil {
		return fmt.Errorf("drawing the loss curves: %w", err)
	}
	fmt.Fprintf(msgs, "done: metrics in %s, curves in %s, checkpoint in %s\n",
		filepath.Join(run.Out, "metrics.jsonl"), filepath.Join(run.Out, "curves.png"), train.CheckpointsDir(run.Out))
	return nil
}

// progress shows a run's metrics as they are logged: a progress bar on stderr, or JSON lines on
// stdout.
type progress struct {
	bar  *progressbar.ProgressBar
	json *json.Encoder
	msgs io.Writer // the bar and the announcements of phases
}

func newProgress(total, start int, asJSON bool, stdout, msgs io.Writer) *progress {
	if asJSON {
		return &progress{json: json.NewEncoder(stdout), msgs: msgs}
	}
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(msgs), progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetWidth(30))
	bar.Set(start)
	return &progress{bar: bar, msgs: msgs}
}

func (p *progress) log(m train.Metrics) {
	if p.json != nil {
		p.json.Encode(m)
		return
	}
	desc := fmt.Sprintf("loss %.4f", m.Loss)
	if m.ValLoss != nil {
		desc += fmt.Sprintf(" val %.4f", *m.ValLoss)
	}
	if m.ValAcc != nil {
		desc += fmt.Sprintf(" acc %.2f%%", 100**m.ValAcc)
	}
	if m.TestAcc != nil {
		desc += fmt.Sprintf(" test acc %.2f%%", 100**m.TestAcc)
	}
	if m.Level > 1 {
		desc = fmt.Sprintf("level %d %s", m.Level, desc)
	}
	speed := fmt.Sprintf("%6.0f tok/s", m.TokensPerS)
	if m.ImagesPerS > 0 {
		speed = fmt.Sprintf("%5.0f img/s", m.ImagesPerS)
	}
	p.bar.Describe(desc + " " + speed)
	p.bar.Set(m.Step)
}

// vcycleOptions log a V-cycle's metrics and announce each of its phases.
func (p *progress) vcycleOptions(cfg *config.Config) vcycle.Options {
	return vcycle.Options{OnLog: p.log, OnPhase: func(ph config.Phase) {
		if p.bar != nil {
			p.bar.Clear()
		}
		way := "down"
		if ph.Up {
			way = "up, de-coalesced"
		}
		m := cfg.Model
		if models, err := cfg.LevelModels(); err == nil {
			m = models[ph.Level-1]
		}
		lr := fmt.Sprintf("lr %g", cfg.Schedule(ph).LR)
		if cfg.VCycle.Global() {
			lr = "lr on the run's schedule"
		}
		fmt.Fprintf(p.msgs, "level %d (%d layers x %d, %s): %d steps, %s\n", ph.Level, m.Layers, m.Width, way, ph.Steps, lr)
	}}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.msgs)
	}
}

// printLevels prints a V-cycle's work per level.
func printLevels(w io.Writer, st train.State) {
	for _, l := range st.Levels {
		fmt.Fprintf(w, "level %d: %d steps, %.3g FLOPs, %.1f s\n", l.Level, l.Steps, l.FLOPs, l.WallS)
	}
	fmt.Fprintf(w, "switches between levels: %.3g FLOPs, %.2f s\n", st.Maps.FLOPs, st.Maps.WallS)
}
