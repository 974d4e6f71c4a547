package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vktrain/vktrain/internal/atomicfile"

	"github.com/schollz/progressbar/v3"

	"github.com/vktrain/vktrain/internal/cachedir"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/profile"
	"github.com/vktrain/vktrain/vk/tune"
)

// tunePreset is the model whose training step `vktrain tune` tunes without -preset or -config.
const tunePreset = "gpt-small"

// tuneReport is what `tune -json` prints.
type tuneReport struct {
	Device     string        `json:"device"`
	Model      string        `json:"model"`
	Out        string        `json:"out"`
	Kernels    string        `json:"kernels"`
	Quick      bool          `json:"quick"`
	Seconds    float64       `json:"seconds"`
	TunedMs    float64       `json:"tuned_ms"`    // the tuned ops' weighted time per training step, tuned
	BaselineMs float64       `json:"baseline_ms"` // the same with the entries in force before (shipped or -profile)
	Results    []tune.Result `json:"results"`
}

func runTune(args []string, stdout io.Writer) error {
	fs := newFlags("tune", "tune [-preset NAME | -config FILE] [-set KEY=VALUE ...] [-ops LIST] [-quick] [-out FILE [-force]] [-json]")
	cf := configFlags{def: tunePreset}
	cf.registerChoice(fs)
	opList := fs.String("ops", "", "comma-separated profile ops to tune (default: every op the step runs)")
	quick := fs.Bool("quick", false, "a coarser search with fewer samples (under 2 minutes on lavapipe)")
	out := fs.String("out", "", "write the profile here instead of this device's tuned profile in the user cache (which the other commands load)")
	force := fs.Bool("force", false, "let -out replace an existing file")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, _, name, err := cf.load()
	if err != nil {
		return err
	}
	vocab, err := model.VocabSize(cfg.Model)
	if err != nil {
		return err
	}
	cases, err := selectOps(model.StepKernels(cfg, vocab), *opList)
	if err != nil {
		return err
	}
	if *out != "" && !*force {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%w: %s exists; pass -force to replace it", errUsage, *out)
		}
	}

	ctx, err := df.open()
	if err != nil {
		return err
	}
	defer ctx.Close()
	path := *out
	if path == "" {
		if path = profile.TunedPath(cachedir.Dir(), ops.DeviceOf(ctx.Info)); path == "" {
			return fmt.Errorf("no user cache folder to write the tuned profile to: give -out FILE")
		}
	}
	// The baseline is the shipped profile (or -profile), never an earlier tuned one.
	o, err := ops.NewFrom(ctx, profile.Sources{Override: df.profile, Kernels: shaders.KernelSetHash()})
	if err != nil {
		return err
	}

	start := time.Now()
	var bar *progressbar.ProgressBar
	results, err := tune.Run(o, cases, tune.Options{Quick: *quick, Progress: func(done, total int) {
		if bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("tuning"),
				progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetWidth(30))
		}
		bar.Set(done)
	}})
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	tuned := tune.Profile(o, results)
	kept := keepUntuned(tuned, path, ops.DeviceOf(ctx.Info))
	header := fmt.Sprintf("Written by vktrain tune for the training step of %s on %s, %s.", name, ctx.Info.Name, time.Now().Format("2006-01-02"))
	if len(kept) > 0 {
		header += "\nKept from the profile this one replaces: " + strings.Join(kept, ", ") + "."
	}
	if err := atomicfile.Write(path, tuned.Format(header, tuneNotes(results))); err != nil {
		return err
	}

	rep := tuneReport{Device: ctx.Info.Name, Model: name, Out: path, Kernels: tuned.Kernels, Quick: *quick,
		Seconds: round(time.Since(start).Seconds(), 1), Results: results}
	for _, r := range results {
		win, base := r.StepMs()
		rep.TunedMs += win
		rep.BaselineMs += base
	}
	rep.TunedMs, rep.BaselineMs = round(rep.TunedMs, 3), round(rep.BaselineMs, 3)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printTune(stdout, rep)
	return nil
}

// selectOps keeps the cases of the comma-separated profile ops in list ("" keeps all).
func selectOps(cases []tune.Case, list string) ([]tune.Case, error) {
	if list == "" {
		return cases, nil
	}
	have := map[string]bool{}
	for _, c := range cases {
		have[c.Op()] = true
	}
	want := map[string]bool{}
	for _, op := range strings.Split(list, ",") {
		op = strings.TrimSpace(op)
		if !have[op] {
			return nil, fmt.Errorf("%w: -ops: the training step runs no op %q (it runs %s)", errUsage, op,
				strings.Join(slices.Sorted(maps.Keys(have)), ", "))
		}
		want[op] = true
	}
	var out []tune.Case
	for _, c := range cases {
		if want[c.Op()] {
			out = append(out, c)
		}
	}
	return out, nil
}

// keepUntuned copies into p the entries of the tuned profile at path for the ops p lacks, when
// that profile is for the same device and kernel set, and returns those ops: tuning some ops
// keeps the earlier tuning of the others.
func keepUntuned(p *profile.Profile, path string, dev profile.Device) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	old, err := profile.Parse(path, data)
	if err != nil || old.Kernels != p.Kernels {
		return nil
	}
	if _, ok := old.Matches(dev); !ok {
		return nil
	}
	var kept []string
	for _, op := range slices.Sorted(maps.Keys(old.Entries)) {
		if _, ok := p.Entries[op]; !ok {
			p.Entries[op] = old.Entries[op]
			kept = append(kept, op)
		}
	}
	return kept
}

// tuneNotes are the comments above each op's entry: its time against the baseline's.
func tuneNotes(results []tune.Result) map[string]string {
	notes := map[string]string{}
	for _, r := range results {
		win, base := r.StepMs()
		var b strings.Builder
		fmt.Fprintf(&b, "%.3f ms per step against %.3f ms with %s %s (%.2fx); %d candidates",
			win, base, r.Baseline.Variant, paramString(r.Baseline.Params), base/win, r.Tried)
		for _, bk := range r.Buckets {
			fmt.Fprintf(&b, "\n  %s, %.3g per step: %.3f ms (baseline %.3f ms)", bk.Case, bk.Case.Count, bk.WinnerMs, bk.BaselineMs)
		}
		notes[r.Op] = b.String()
	}
	return notes
}

// paramString is params as name=value pairs in name order.
func paramString(p map[string]int) string {
	var ps []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		ps = append(ps, fmt.Sprintf("%s=%d", k, p[k]))
	}
	return strings.Join(ps, " ")
}

// printTune prints the report as a table, one op a row.
func printTune(w io.Writer, rep tuneReport) {
	fmt.Fprintf(w, "tuned %s's training step on %s in %.0f s; per op, its weighted time per step:\n", rep.Model, rep.Device, rep.Seconds)
	fmt.Fprintf(w, "  %-10s %-9s %-34s %10s %12s %8s\n", "op", "variant", "params", "tuned ms", "baseline ms", "speedup")
	for _, r := range rep.Results {
		win, base := r.StepMs()
		fmt.Fprintf(w, "  %-10s %-9s %-34s %10.3f %12.3f %7.2fx\n", r.Op, r.Winner.Variant, paramString(r.Winner.Params), win, base, base/win)
	}
	fmt.Fprintf(w, "  %-10s %-9s %-34s %10.3f %12.3f %7.2fx\n", "all", "", "", rep.TunedMs, rep.BaselineMs, rep.BaselineMs/rep.TunedMs)
	fmt.Fprintf(w, "wrote %s\n", rep.Out)
}
