package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vktrain/vktrain/train"
)

// tinyVCycle is the [vcycle] section the tests add to tinyTOML: 2 x 32 -> 1 x 16, 30 steps in
// all (the baseline gets -steps 30 too).
const tinyVCycle = `
[vcycle]
alpha = 0.25

[[vcycle.level]]
down = { steps = 6, warmup = 5, decay = "constant" }
up = { steps = 12 }

[[vcycle.level]]
down = { steps = 12 }
`

// tinyRecipe is tinyVCycle with the recipe of the presets (docs/method.md §9): moments through
// the maps, one schedule by FLOPs, stacked depth grown as an identity.
const tinyRecipe = `
[vcycle]
alpha = 1.0
split = 0.01
depth_pairing = "stride"
moments = "map"
schedule = "global"
progress = "flops"
depth_init = "zero"

[[vcycle.level]]
down = { steps = 6 }
up = { steps = 12 }

[[vcycle.level]]
down = { steps = 12 }
`

// tinyVCycleConfig writes tinyTOML with the [vcycle] section vcycle (tinyVCycle if empty).
func tinyVCycleConfig(t *testing.T, dir string, vcycle ...string) string {
	t.Helper()
	section := tinyVCycle
	if len(vcycle) > 0 {
		section = vcycle[0]
	}
	path := tinyConfig(t, dir, "tiny-vcycle", "checkpoint_every = 5")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(section); err != nil {
		t.Fatal(err)
	}
	return path
}

func compare(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runVktrain(t, vktrainCmd(t, append([]string{"compare"}, args...)...))
}

// TestCompare: vktrain compare trains the baseline and the V-cycle from the same weights and
// data, evaluates both at the same token counts, and writes a report whose figures follow from
// the two runs' metrics.
func TestCompare(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyVCycleConfig(t, dir)
	out := filepath.Join(dir, "cmp")
	stdout, stderr, code := compare(t, "-config", cfg, "-steps", "30", "-out", out, "-json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var rep compareReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the report: %v\n%s", err, stdout)
	}
	for _, f := range []string{"report.json", "report.md", "plot.png", "baseline/metrics.jsonl", "vcycle/metrics.jsonl", "baseline/curves.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	base, vc := metrics(t, filepath.Join(out, "baseline")), metrics(t, filepath.Join(out, "vcycle"))
	if base[0].Loss != vc[0].Loss {
		t.Errorf("first losses %v and %v: not the same initial weights and batch", base[0].Loss, vc[0].Loss)
	}
	var levels []int
	for _, m := range vc {
		if len(levels) == 0 || levels[len(levels)-1] != m.Level {
			levels = append(levels, m.Level)
		}
	}
	if len(levels) != 3 || levels[0] != 1 || levels[1] != 2 || levels[2] != 1 {
		t.Errorf("V-cycle levels in order %v, want [1 2 1]", levels)
	}
	if rep.Baseline.Steps != 30 || rep.VCycle.Steps != 30 || len(rep.VCycle.Levels) != 2 || rep.VCycle.Levels[1].Steps != 12 {
		t.Errorf("steps: baseline %d, V-cycle %d, levels %+v", rep.Baseline.Steps, rep.VCycle.Steps, rep.VCycle.Levels)
	}
	// Every baseline evaluation has a V-cycle evaluation at the same token count.
	vcTokens := map[int64]bool{}
	for _, e := range rep.VCycle.Eval {
		vcTokens[e.Tokens] = true
	}
	for _, e := range rep.Baseline.Eval {
		if !vcTokens[e.Tokens] {
			t.Errorf("the baseline evaluated at %d tokens, the V-cycle did not", e.Tokens)
		}
	}
	if rep.TargetValLoss != rep.Baseline.FinalValLoss || rep.Baseline.FinalValLoss != *base[len(base)-1].ValLoss {
		t.Errorf("target %v, baseline final %v", rep.TargetValLoss, rep.Baseline.FinalValLoss)
	}
	if rep.VCycle.FLOPs >= rep.Baseline.FLOPs {
		t.Errorf("V-cycle FLOPs %g not below the baseline's %g with a third of its steps at an eighth of the size",
			rep.VCycle.FLOPs, rep.Baseline.FLOPs)
	}
	if rep.FLOPsToTarget != nil {
		if want := 100 * (1 - *rep.FLOPsToTarget/rep.Baseline.FLOPs); math.Abs(*rep.SavingFLOPsPct-want) > 1e-9 {
			t.Errorf("saving %v%%, want %v%%", *rep.SavingFLOPsPct, want)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "| baseline | 30 |") {
		t.Errorf("report.md:\n%s", md)
	}

	// Nothing is overwritten; a sweep reuses the baseline; a baseline of another
	// configuration is refused.
	if _, stderr, code := compare(t, "-config", cfg, "-steps", "30", "-out", out); code == 0 || !strings.Contains(stderr, "already holds") {
		t.Errorf("second compare into %s: exit %d, %s", out, code, stderr)
	}
	// The sweep changes alpha only: the same run up to the interpolation at step 18, another after.
	out2 := filepath.Join(dir, "cmp2")
	if _, stderr, code := compare(t, "-config", cfg, "-steps", "30", "-out", out2, "-baseline", filepath.Join(out, "baseline"), "-set", "vcycle.alpha=1"); code != 0 {
		t.Fatalf("compare -baseline: exit %d\n%s", code, stderr)
	}
	again := metrics(t, filepath.Join(out2, "vcycle"))
	if len(again) != len(vc) {
		t.Fatalf("the sweep logged %d lines, the first V-cycle %d", len(again), len(vc))
	}
	for i, m := range again {
		if same := m.Loss == vc[i].Loss; same != (m.Step <= 18) {
			t.Errorf("step %d: loss %v with alpha 1, %v with alpha 0.25", m.Step, m.Loss, vc[i].Loss)
		}
	}
	if _, stderr, code := compare(t, "-config", cfg, "-steps", "31", "-out", filepath.Join(dir, "cmp3"), "-baseline", filepath.Join(out, "baseline")); code == 0 || !strings.Contains(stderr, "another [model] or [train]") {
		t.Errorf("mismatched -baseline: exit %d, %s", code, stderr)
	}
	// Two finished runs, trained apart, give the same report as the comparison that trained them.
	stdout, stderr, code = compare(t, "-config", cfg, "-steps", "30", "-out", filepath.Join(dir, "cmp5"), "-json",
		"-baseline", filepath.Join(out, "baseline"), "-vcycle", filepath.Join(out, "vcycle"))
	var again5 compareReport
	if code != 0 || json.Unmarshal([]byte(stdout), &again5) != nil {
		t.Fatalf("compare -baseline -vcycle: exit %d\n%s", code, stderr)
	}
	if again5.VCycle.FinalValLoss != rep.VCycle.FinalValLoss || again5.VCycle.FLOPs != rep.VCycle.FLOPs || len(again5.VCycle.Levels) != 2 {
		t.Errorf("report from the finished runs %+v, want %+v", again5.VCycle, rep.VCycle)
	}
	if _, stderr, code := compare(t, "-config", cfg, "-steps", "30", "-out", filepath.Join(dir, "cmp6"), "-set", "vcycle.alpha=0.5",
		"-vcycle", filepath.Join(out, "vcycle")); code == 0 || !strings.Contains(stderr, "another configuration") {
		t.Errorf("mismatched -vcycle: exit %d, %s", code, stderr)
	}
	if _, stderr, code := compare(t, "-config", tinyConfig(t, dir, "plain"), "-out", filepath.Join(dir, "cmp4")); code == 0 || !strings.Contains(stderr, "no [vcycle] section") {
		t.Errorf("compare without [vcycle]: exit %d, %s", code, stderr)
	}
}

// TestCompareSeeds: compare -seeds 2 compares two seeds, each in its folder with its own
// report, and summarizes them; a second sweep reuses each seed's baseline.
func TestCompareSeeds(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyVCycleConfig(t, dir, tinyRecipe)
	out := filepath.Join(dir, "seeds")
	stdout, stderr, code := compare(t, "-config", cfg, "-steps", "30", "-seed", "4", "-seeds", "2", "-out", out, "-json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var rep seedsReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not the report: %v\n%s", err, stdout)
	}
	if len(rep.Seeds) != 2 || rep.Seeds[0].Seed != 4 || rep.Seeds[1].Seed != 5 {
		t.Fatalf("seeds %+v", rep.Seeds)
	}
	var finals []float64
	for _, s := range rep.Seeds {
		vc := metrics(t, filepath.Join(out, fmt.Sprintf("seed-%d", s.Seed), "vcycle"))
		if got := *vc[len(vc)-1].ValLoss; got != s.VCycle.FinalValLoss {
			t.Errorf("seed %d: report's V-cycle final %v, metrics %v", s.Seed, s.VCycle.FinalValLoss, got)
		}
		finals = append(finals, s.VCycle.FinalValLoss)
		if _, err := os.Stat(filepath.Join(out, fmt.Sprintf("seed-%d", s.Seed), "report.json")); err != nil {
			t.Errorf("seed %d has no report of its own", s.Seed)
		}
	}
	if finals[0] == finals[1] {
		t.Errorf("both seeds ended at %v: the seed did not reach the runs", finals[0])
	}
	mean := (finals[0] + finals[1]) / 2
	std := math.Abs(finals[0]-finals[1]) / math.Sqrt2
	if v := rep.VCycleFinal; v.N != 2 || math.Abs(v.Mean-mean) > 1e-12 || math.Abs(v.Std-std) > 1e-12 ||
		v.Min != math.Min(finals[0], finals[1]) || v.Max != math.Max(finals[0], finals[1]) {
		t.Errorf("V-cycle final statistics %+v, want mean %v, std %v", v, mean, std)
	}
	// A sweep over [vcycle] reuses every seed's baseline.
	out2 := filepath.Join(dir, "sweep")
	if _, stderr, code := compare(t, "-config", cfg, "-steps", "30", "-seed", "4", "-seeds", "2", "-out", out2, "-baseline", out, "-set", "vcycle.alpha=0.5"); code != 0 {
		t.Fatalf("compare -seeds -baseline: exit %d\n%s", code, stderr)
	}
	for _, seed := range []int{4, 5} {
		link, err := os.Readlink(filepath.Join(out2, fmt.Sprintf("seed-%d", seed), "baseline"))
		if err != nil || !strings.HasSuffix(link, filepath.Join(fmt.Sprintf("seed-%d", seed), "baseline")) {
			t.Errorf("seed %d's baseline is %q (%v), want a link to the first sweep's", seed, link, err)
		}
	}
	// Both sides of every seed finished (as when each seed's two runs train at the same time):
	// a report on them trains nothing and gives the same statistics.
	stdout, stderr, code = compare(t, "-config", cfg, "-steps", "30", "-seed", "4", "-seeds", "2", "-out", filepath.Join(dir, "reports"),
		"-baseline", out, "-vcycle", out, "-json")
	var again seedsReport
	if code != 0 || json.Unmarshal([]byte(stdout), &again) != nil {
		t.Fatalf("compare -seeds -baseline -vcycle: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "steps of the full model") || strings.Contains(stderr, "levels,") {
		t.Errorf("the report on finished runs trained something:\n%s", stderr)
	}
	if again.VCycleFinal != rep.VCycleFinal || again.BaselineFinal != rep.BaselineFinal || again.FLOPsFraction != rep.FLOPsFraction {
		t.Errorf("statistics from the finished runs %+v, want %+v", again, rep)
	}
}

// TestTrainVCycle: vktrain train runs a configuration's V-cycle; the same seed gives bitwise the
// same curve; the end writes a checkpoint of the full model; a run stopped by a signal in any
// level, or killed, and resumed logs bitwise the same losses as the run uninterrupted.
func TestTrainVCycle(t *testing.T) {
	t.Run("paper", func(t *testing.T) { testTrainVCycle(t, tinyVCycle) })
	t.Run("recipe", func(t *testing.T) { testTrainVCycle(t, tinyRecipe) })
}

// testTrainVCycle trains the V-cycle of section and checks that it resumes bit for bit from
// signals and kills in every phase and at the switch.
func testTrainVCycle(t *testing.T, section string) {
	dir := t.TempDir()
	cfg := tinyVCycleConfig(t, dir, section)
	ref := filepath.Join(dir, "ref")
	runTrainOK(t, "-config", cfg, "-out", ref, "-json")
	want := metrics(t, ref)
	if last := want[len(want)-1]; last.Step != 30 || last.Level != 1 || last.ValLoss == nil {
		t.Errorf("last line %+v", last)
	}
	ck, err := train.LoadCheckpoint(ref)
	if err != nil {
		t.Fatal(err)
	}
	if ck.State.Step != 30 || len(ck.Params["h.1.mlp.c_fc.weight"]) != 32*128 {
		t.Errorf("checkpoint at step %d with c_fc of %d values", ck.State.Step, len(ck.Params["h.1.mlp.c_fc.weight"]))
	}
	if _, err := os.Stat(filepath.Join(ref, "vcycle-saved")); err == nil {
		t.Error("the saved levels are left behind after the run")
	}
	t.Run("same seed", func(t *testing.T) {
		again := filepath.Join(t.TempDir(), "again")
		runTrainOK(t, "-config", cfg, "-out", again, "-json")
		sameCurve(t, want, metrics(t, again))
	})
	// Steps 1-6 train level 1, 7-18 level 2 (1 x 16), 19-30 level 1 again.
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		after int
	}{
		{"level 1 down", syscall.SIGINT, 2},
		{"at the switch", syscall.SIGTERM, 6},
		{"level 2", syscall.SIGINT, 10},
		{"level 1 up", syscall.SIGTERM, 21},
		{"killed in level 2", syscall.SIGKILL, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			signalAfter(t, tc.sig, tc.after, "-config", cfg, "-out", out)
			at := latest(t, out)
			if at < 1 || at >= 30 {
				t.Fatalf("the checkpoint to resume from is at step %d", at)
			}
			runTrainOK(t, "-resume", out, "-json")
			sameCurve(t, want, metrics(t, out))
		})
	}
	if _, stderr, code := runVktrain(t, vktrainCmd(t, "train", "-resume", ref, "-steps", "50")); code == 0 || !strings.Contains(stderr, "-steps cannot change it") {
		t.Errorf("-resume -steps of a V-cycle run: exit %d, %s", code, stderr)
	}
}

// Growing once: level 1's down phase may be empty, so that the small model trains from the
// coalesced initial weights and is then grown (the paper's comparison without the way down,
// and with depth-only levels G_stack's).
func TestTrainGrowOnce(t *testing.T) {
	dir := t.TempDir()
	section := strings.Replace(tinyRecipe, "down = { steps = 6 }", "down = { steps = 0 }", 1)
	out := filepath.Join(dir, "run")
	runTrainOK(t, "-config", tinyVCycleConfig(t, dir, section), "-out", out, "-json")
	ms := metrics(t, out)
	first, last := ms[0], ms[len(ms)-1]
	if first.Step != 1 || first.Level != 2 || last.Step != 24 || last.Level != 1 || last.ValLoss == nil {
		t.Fatalf("first line %+v, last %+v: want level 2 from step 1, level 1 to step 24", first, last)
	}
	if *last.ValLoss >= first.Loss {
		t.Errorf("the grown model's validation loss %g is not below the first step's loss %g", *last.ValLoss, first.Loss)
	}
}
