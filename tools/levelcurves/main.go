// Command levelcurves draws the V-cycle's diagnostic (docs/method.md §6 and RESULTS.md): the
// validation loss of several runs against their training FLOPs on one plot, e.g. each level's
// model trained from scratch, so that one sees where a smaller model is ahead per FLOP.
//
//	go run ./tools/levelcurves -out curves.png [-json] NAME=RUNDIR ...
//
// Each RUNDIR is a run folder with a metrics.jsonl (vktrain train or one side of a compare).
// With -json it prints every run's evaluations ({"run", "flops", "val_loss"} lines) on stdout.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vktrain/vktrain/internal/plot"
	"github.com/vktrain/vktrain/train"
)

func main() {
	out := flag.String("out", "levels.png", "the PNG to write")
	asJSON := flag.Bool("json", false, "print the evaluations as JSON lines on stdout")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: levelcurves [-out FILE.png] [-json] NAME=RUNDIR ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *asJSON, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "levelcurves:", err)
		os.Exit(1)
	}
}

func run(out string, asJSON bool, runs []string) error {
	panel := plot.Panel{Title: "validation loss by work", XLabel: "training FLOPs", YLabel: "validation loss (nats/token)", LogX: true}
	enc := json.NewEncoder(os.Stdout)
	for _, arg := range runs {
		name, dir, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("%q: want NAME=RUNDIR", arg)
		}
		ms, err := train.ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
		if err != nil {
			return err
		}
		s := plot.Series{Name: name}
		for _, m := range ms {
			if m.ValLoss == nil {
				continue
			}
			s.X, s.Y = append(s.X, m.FLOPs), append(s.Y, *m.ValLoss)
			if asJSON {
				if err := enc.Encode(map[string]any{"run": name, "step": m.Step, "flops": m.FLOPs, "val_loss": *m.ValLoss}); err != nil {
					return err
				}
			}
		}
		if len(s.X) == 0 {
			return fmt.Errorf("%s: no validation in %s", name, dir)
		}
		panel.Series = append(panel.Series, s)
	}
	return plot.WritePNG(out, panel)
}
