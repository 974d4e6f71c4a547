package main

import (
	"fmt"
	"math"
	"strings"
)

// seedsReport is report.json of a comparison over several seeds: every seed's report and the
// mean and spread of its figures.
type seedsReport struct {
	Config string          `json:"config"`
	Device string          `json:"device"`
	Seeds  []compareReport `json:"seeds"`

	BaselineFinal       spreadStat `json:"baseline_final_val_loss"`
	VCycleFinal         spreadStat `json:"vcycle_final_val_loss"`
	FinalDifference     spreadStat `json:"final_val_loss_difference"`         // V-cycle minus baseline, per seed
	BaselineAtVCycleUse spreadStat `json:"baseline_val_loss_at_vcycle_flops"` // over the seeds where it was measured
	FLOPsFraction       spreadStat `json:"vcycle_flops_fraction"`             // the V-cycle's FLOPs over the baseline's
	SavingFLOPsPct      spreadStat `json:"saving_flops_pct"`                  // over the seeds that reached the target
	SavingWallPct       spreadStat `json:"saving_wall_pct"`                   // over the seeds that reached the target
	Reached             int        `json:"seeds_reaching_target"`             // seeds whose full model reached the baseline's final loss
}

// spreadStat is the mean, sample standard deviation, minimum and maximum of N values.
type spreadStat struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

func statOf(xs []float64) spreadStat {
	s := spreadStat{N: len(xs)}
	if len(xs) == 0 {
		return s
	}
	s.Min, s.Max = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		s.Mean += x / float64(len(xs))
		s.Min, s.Max = math.Min(s.Min, x), math.Max(s.Max, x)
	}
	if len(xs) > 1 {
		for _, x := range xs {
			s.Std += (x - s.Mean) * (x - s.Mean) / float64(len(xs)-1)
		}
		s.Std = math.Sqrt(s.Std)
	}
	return s
}

// summarize fills the statistics from the seeds' reports.
func (r *seedsReport) summarize() {
	var base, vc, diff, atUse, frac, sf, sw []float64
	r.Reached = 0
	for _, s := range r.Seeds {
		base = append(base, s.Baseline.FinalValLoss)
		vc = append(vc, s.VCycle.FinalValLoss)
		diff = append(diff, s.VCycle.FinalValLoss-s.Baseline.FinalValLoss)
		frac = append(frac, s.VCycle.FLOPs/s.Baseline.FLOPs)
		if s.BaselineValAtVCycleUse != nil {
			atUse = append(atUse, *s.BaselineValAtVCycleUse)
		}
		if s.SavingFLOPsPct != nil {
			r.Reached++
			sf, sw = append(sf, *s.SavingFLOPsPct), append(sw, *s.SavingWallPct)
		}
	}
	r.BaselineFinal, r.VCycleFinal, r.FinalDifference = statOf(base), statOf(vc), statOf(diff)
	r.BaselineAtVCycleUse, r.FLOPsFraction = statOf(atUse), statOf(frac)
	r.SavingFLOPsPct, r.SavingWallPct = statOf(sf), statOf(sw)
}

// markdown is report.md of a multi-seed comparison.
func (r *seedsReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# V-cycle against the baseline over %d seeds: %s on %s\n\n", len(r.Seeds), r.Config, r.Device)
	fmt.Fprintf(&b, "| seed | baseline final | V-cycle final | V-cycle FLOPs / baseline | FLOPs saved to target | wall saved to target |\n|---|---|---|---|---|---|\n")
	pct := func(v *float64) string {
		if v == nil {
			return "never reached"
		}
		return fmt.Sprintf("%.1f%%", *v)
	}
	for _, s := range r.Seeds {
		fmt.Fprintf(&b, "| %d | %.4f | %.4f | %.3f | %s | %s |\n", s.Seed, s.Baseline.FinalValLoss, s.VCycle.FinalValLoss,
			s.VCycle.FLOPs/s.Baseline.FLOPs, pct(s.SavingFLOPsPct), pct(s.SavingWallPct))
	}
	row := func(name string, s spreadStat, format string) {
		if s.N == 0 {
			fmt.Fprintf(&b, "| %s | no seed | | | |\n", name)
			return
		}
		std := strings.Replace(format, "+", "", 1) // a spread has no sign
		f := "| %s (n=%d) | " + format + " | " + std + " | " + format + " | " + format + " |\n"
		fmt.Fprintf(&b, f, name, s.N, s.Mean, s.Std, s.Min, s.Max)
	}
	fmt.Fprintf(&b, "\n| figure | mean | std | min | max |\n|---|---|---|---|---|\n")
	row("baseline final val loss", r.BaselineFinal, "%.4f")
	row("V-cycle final val loss", r.VCycleFinal, "%.4f")
	row("V-cycle minus baseline", r.FinalDifference, "%+.4f")
	row("baseline val loss at the V-cycle's FLOPs", r.BaselineAtVCycleUse, "%.4f")
	row("FLOPs saved to the baseline's final loss (%)", r.SavingFLOPsPct, "%.1f")
	row("wall time saved to it (%)", r.SavingWallPct, "%.1f")
	fmt.Fprintf(&b, "\n%d of %d seeds reached the baseline's final validation loss with the full model.\n", r.Reached, len(r.Seeds))
	return b.String()
}
