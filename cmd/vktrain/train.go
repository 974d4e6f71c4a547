package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/internal/runlock"
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
	allowBinary        bool
	steps, seed        optionalInt
	set                []string
}

// optionalInt is an integer flag that knows whether it was given: an unset flag keeps the
// configuration's value, a given one is used or refused, zero and negatives included.
type optionalInt struct {
	v   int64
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatInt(o.v, 10)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	o.v, o.set = v, true
	return nil
}

// register registers the flags that choose and change a configuration, and those of a run:
// -data, -steps and -seed.
func (c *configFlags) register(fs *flag.FlagSet) {
	c.registerChoice(fs)
	fs.StringVar(&c.data, "data", "", "corpus: a text file or a folder of .txt files (default: the config's, data/austen)")
	fs.BoolVar(&c.allowBinary, "allow-binary", false, "train on corpus files that do not look like text (NUL bytes, mostly control or non-UTF-8 bytes)")
	fs.Var(&c.steps, "steps", "optimizer steps: the length of the learning-rate schedule, at least 1 (default: the config's)")
	fs.Var(&c.seed, "seed", "seed for initialisation, batches and dropout, 0 or more (default: the config's)")
}

// check refuses a -steps or -seed out of range.
func (c *configFlags) check() error {
	if c.steps.set && c.steps.v < 1 {
		return fmt.Errorf("%w: -steps must be at least 1, got %d", errUsage, c.steps.v)
	}
	if c.seed.set && c.seed.v < 0 {
		return fmt.Errorf("%w: -seed must not be negative, got %d", errUsage, c.seed.v)
	}
	return nil
}

// registerChoice registers -config, -preset and -set.
func (c *configFlags) registerChoice(fs *flag.FlagSet) {
	if c.def == "" {
		c.def = defaultPreset
	}
	fs.StringVar(&c.file, "config", "", "configuration TOML file (see vktrain config show NAME)")
	fs.StringVar(&c.preset, "preset", "", "embedded preset (vktrain config list); default "+c.def)
	fs.Func("set", "KEY=VALUE: change one configuration key (repeatable), e.g. -set train.lr=1e-3,\n"+
		"-set vcycle.alpha=0.5, -set 'vcycle.level.2.down={steps = 200}' (levels count from 1, the full model)", func(s string) error {
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
	base := text
	if text, err = config.Override(text, c.set); err != nil {
		return nil, nil, "", fmt.Errorf("%w: -set: %v", errUsage, err)
	}
	cfg, err := config.Parse(source, text)
	if err != nil && len(c.set) > 0 {
		// The merged text's line numbers mean nothing to the user: cite the file's own lines
		// when the file is at fault, else the -set settings.
		_, baseErr := config.Parse(source, base)
		if baseErr != nil && regexp.MustCompile("^"+regexp.QuoteMeta(source)+`:\d+:`).MatchString(baseErr.Error()) {
			return nil, nil, "", baseErr // the file does not decode
		}
		_, err = config.Parse("-set", text)
		msg := regexp.MustCompile(`-set:\d+:`).ReplaceAllString(err.Error(), "-set:")
		return nil, nil, "", errors.New(regexp.MustCompile(`line \d+ \(last key`).ReplaceAllString(msg, "(key"))
	}
	if err != nil {
		return nil, nil, "", err
	}
	if c.data != "" {
		cfg.Train.Data = c.data
	}
	if c.allowBinary {
		cfg.Train.AllowBinary = true
	}
	// The run stores where its corpus is as an absolute path, so that it resumes and
	// evaluates from any folder.
	if cfg.Train.Data, err = filepath.Abs(cfg.Train.Data); err != nil {
		return nil, nil, "", err
	}
	if err := c.check(); err != nil {
		return nil, nil, "", err
	}
	if c.steps.set {
		cfg.Train.Steps = int(c.steps.v)
		if t := &cfg.Train; t.Warmup > t.Steps {
			// The preset's warmup is for its own length: a shorter run gets a tenth of its steps.
			fmt.Fprintf(os.Stderr, "note: train.warmup %d is longer than -steps %d; warming up for %d steps instead\n",
				t.Warmup, t.Steps, t.Steps/10)
			t.Warmup = t.Steps / 10
		}
	}
	if c.seed.set {
		cfg.Train.Seed = uint64(c.seed.v)
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
	resume := fs.String("resume", "", "continue the run in this output folder from its last checkpoint\n"+
		"(with -steps, -data or -set of the schedule, optimizer, logging and checkpoint keys)")
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
	var settings []string // -resume's changes
	var initParams map[string][]float32
	if *resume != "" {
		if cf.file != "" || cf.preset != "" || cf.seed.set || cf.allowBinary || *initDir != "" ||
			*out != "" && filepath.Clean(*out) != filepath.Clean(*resume) {
			return fmt.Errorf("%w: -resume takes the run's own configuration and folder; -steps, -data and -set of the keys "+
				"that change neither the model nor the batches may change (%s)", errUsage, strings.Join(config.ResumableKeys, ", "))
		}
		if err := cf.check(); err != nil {
			return err
		}
		settings = cf.set
		if cf.steps.set {
			settings = append(settings, fmt.Sprintf("train.steps=%d", cf.steps.v))
		}
		if cf.data != "" {
			abs, err := filepath.Abs(cf.data)
			if err != nil {
				return err
			}
			settings = append(settings, "train.data="+strconv.Quote(abs))
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
	folder := *out
	if *resume != "" {
		folder = train.RunDir(*resume)
	}
	unlock, err := lockRun(folder, world.Rank)
	if err != nil {
		return err
	}
	started := false
	defer func() { unlock(started) }()
	df.rank = world.LocalRank
	ctx, o, err := openOps(df)
	if err != nil {
		return err
	}
	defer ctx.Close()

	var run *train.Run
	if *resume != "" {
		run, err = train.ResumeRun(o, *resume, settings)
	} else {
		run, err = train.NewRun(o, cfg, text, *out)
	}
	if err != nil {
		return err
	}
	started = true
	defer run.Free()
	if run.Restarted {
		fmt.Fprintf(msgs, "%s held a run that stopped before its first checkpoint; starting it again\n", run.Out)
	}
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

	// SIGUSR1 too: mpirun forwards it to every rank, while it answers SIGINT and SIGTERM by
	// killing the job within seconds.
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
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
	p.finish(err == nil)
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

// lockRun keeps every other process out of the run folder out while this one trains there: it
// takes out's lock (internal/runlock; rank 0 does, for the whole of a data-parallel job) and
// returns its release, which also removes a folder the lock created when no run started in it.
func lockRun(out string, rank int) (release func(started bool), err error) {
	if rank > 0 {
		return func(bool) {}, nil
	}
	_, statErr := os.Stat(out)
	lock, err := runlock.Acquire(out)
	if err != nil {
		return nil, err
	}
	return func(started bool) {
		lock.Release()
		if !started && errors.Is(statErr, fs.ErrNotExist) {
			os.Remove(filepath.Join(out, runlock.Name))
			os.Remove(out)
		}
	}, nil
}

// progress shows a run's metrics as they are logged: JSON lines on stdout (-json), a progress
// bar on a terminal's stderr, or plain lines on a stderr that is not a terminal (a file or a
// pipe, where a bar's redraws would pile up on one line). Its ETA counts training time only
// (metrics' wall_s, from the second line on), not shader compilation or evaluation.
type progress struct {
	bar   *progressbar.ProgressBar
	json  *json.Encoder
	lines bool      // plain lines on msgs: it is not a terminal
	msgs  io.Writer // the bar or the lines, and the announcements of phases
	total int

	first *train.Metrics // the first line logged, the origin of the ETA's rate
}

func newProgress(total, start int, asJSON bool, stdout, msgs io.Writer) *progress {
	p := &progress{total: total, msgs: msgs}
	switch {
	case asJSON:
		p.json = json.NewEncoder(stdout)
	case !isTerminal(msgs):
		p.lines = true
	default:
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(msgs), progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30))
		p.bar.Set(start)
	}
	return p
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
	desc += " " + speed
	if p.first == nil {
		p.first = &m
	} else if m.Step > p.first.Step {
		left := float64(p.total-m.Step) * (m.WallS - p.first.WallS) / float64(m.Step-p.first.Step)
		desc += " ETA " + time.Duration(left*float64(time.Second)).Round(time.Second).String()
	}
	if p.lines {
		fmt.Fprintf(p.msgs, "step %d/%d %s\n", m.Step, p.total, desc)
		return
	}
	p.bar.Set(m.Step)
	p.bar.Describe(desc)
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

// finish ends the bar where the run ended: full only when the run completed, not when it
// stopped on an error or was interrupted.
// finish ends the bar where the run ended: full only when the run completed, not when it
// stopped on an error or was interrupted.
func (p *progress) finish(completed bool) {
	if p.bar == nil {
		return
	}
	if completed {
		p.bar.Finish()
	} else {
		p.bar.Exit()
	}
	fmt.Fprintln(p.msgs)
}

// printLevels prints a V-cycle's work per level.
func printLevels(w io.Writer, st train.State) {
	for _, l := range st.Levels {
		fmt.Fprintf(w, "level %d: %d steps, %.3g FLOPs, %.1f s\n", l.Level, l.Steps, l.FLOPs, l.WallS)
	}
	fmt.Fprintf(w, "switches between levels: %.3g FLOPs, %.2f s\n", st.Maps.FLOPs, st.Maps.WallS)
}
