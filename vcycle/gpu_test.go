package vcycle

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/model/reference"
	"github.com/vktrain/vktrain/train"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

func openOps(t *testing.T) *ops.Ops {
	t.Helper()
	o, err := ops.New(vktest.Open(t), "")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func newNet(t *testing.T, o *ops.Ops, cfg config.Model) *model.Net {
	t.Helper()
	n, err := model.NewNet(o, cfg, tinyVocab, 1, cfg.Context, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Free)
	return n
}

func setParams(t *testing.T, n *model.Net, p Params) {
	t.Helper()
	f := map[string][]float32{}
	for name, v := range p {
		f[name] = make([]float32, len(v))
		for i, x := range v {
			f[name][i] = float32(x)
		}
	}
	if err := n.SetParams(f); err != nil {
		t.Fatal(err)
	}
}

func params(t *testing.T, n *model.Net) Params {
	t.Helper()
	p, err := n.Params()
	if err != nil {
		t.Fatal(err)
	}
	return reference.Widen(p)
}

// within fails unless got and want agree to float32 rounding (relative to the largest value).
func within(t *testing.T, what string, got, want Params) {
	t.Helper()
	scale := 0.0
	for _, v := range want {
		for _, x := range v {
			scale = math.Max(scale, math.Abs(x))
		}
	}
	if d := maxAbsDiff(t, got, want); d > 1e-6*scale {
		t.Errorf("%s: GPU and CPU maps differ by %g (largest value %g)", what, d, scale)
	}
}

// mapCases are the halvings and rules the GPU maps are checked under.
var mapCases = []struct {
	halving            int // index into halvings
	pairing, depthInit string
}{{0, "adjacent", "copy"}, {1, "adjacent", "copy"}, {2, "adjacent", "copy"}, {1, "stride", "zero"}, {2, "stride", "halve"}, {2, "stride", "zero"}}

// setMoments writes AdamW moments m and v (float64, rounded to float32) into n.
func setMoments(t *testing.T, n *model.Net, m, v Params) {
	t.Helper()
	narrow := func(p Params) map[string][]float32 {
		f := map[string][]float32{}
		for name, x := range p {
			f[name] = make([]float32, len(x))
			for i := range x {
				f[name][i] = float32(x[i])
			}
		}
		return f
	}
	if err := n.SetMoments(narrow(m), narrow(v)); err != nil {
		t.Fatal(err)
	}
}

func moments(t *testing.T, n *model.Net) (m, v Params) {
	t.Helper()
	m32, v32, err := n.Moments()
	if err != nil {
		t.Fatal(err)
	}
	return reference.Widen(m32), reference.Widen(v32)
}

// randomMoments draws a first moment around 0 and a positive second moment for specs.
func randomMoments(rng *rand.Rand, specs []model.ParamSpec) (m, v Params) {
	m, v = randomParams(rng, specs), Params{}
	for name, x := range m {
		v[name] = make([]float64, len(x))
		for i := range x {
			v[name][i] = x[i]*x[i] + 0.01
		}
	}
	return m, v
}

// The GPU maps equal the float64 CPU maps: coalescing, de-coalescing (with the antisymmetric
// split) and interpolation (alpha 0.25; alpha 0 keeps the saved parameters bit for bit, alpha 1
// gives the de-coalesced ones), and the maps of AdamW's moments both ways.
func TestGPUMapsEqualCPUMaps(t *testing.T) {
	o := openOps(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, arch := range []string{"gpt", "bert", "vit"} {
		for _, c := range mapCases {
			h := halvings[c.halving]
			name := arch + "/" + h.name + "/" + c.pairing + "/" + c.depthInit
			fineCfg := tinyModel(arch)
			coarseCfg, _ := fineCfg.Halved(h.width, h.depth)
			m, err := NewMaps(fineCfg, tinyVocab, h.width, h.depth, rules(c.pairing, "exact", c.depthInit))
			if err != nil {
				t.Fatal(err)
			}
			fine, coarse := newNet(t, o, fineCfg), newNet(t, o, coarseCfg)
			saved := randomParams(rng, m.Fine)
			setParams(t, fine, saved)
			saved = params(t, fine) // rounded to float32
			vktest.Run(t, o.Context(), func(s *vk.Sequence) error { return m.RecordCoalesce(o, s, fine, coarse) })
			want, err := m.Coalesce(saved)
			if err != nil {
				t.Fatal(err)
			}
			within(t, name+" coalesce", params(t, coarse), want)

			fm, fv := randomMoments(rng, m.Fine)
			setMoments(t, fine, fm, fv)
			fm, fv = moments(t, fine)
			vktest.Run(t, o.Context(), func(s *vk.Sequence) error { return m.RecordMomentsDown(o, s, fine, coarse) })
			wantM, wantV, err := m.MomentsDown(fm, fv)
			if err != nil {
				t.Fatal(err)
			}
			gotM, gotV := moments(t, coarse)
			within(t, name+" first moment down", gotM, wantM)
			within(t, name+" second moment down", gotV, wantV)

			cm, cv := randomMoments(rng, m.Coarse)
			setMoments(t, coarse, cm, cv)
			cm, cv = moments(t, coarse)
			vktest.Run(t, o.Context(), func(s *vk.Sequence) error { return m.RecordMomentsUp(o, s, coarse, fine) })
			if wantM, wantV, err = m.MomentsUp(cm, cv); err != nil {
				t.Fatal(err)
			}
			gotM, gotV = moments(t, fine)
			within(t, name+" first moment up", gotM, wantM)
			within(t, name+" second moment up", gotV, wantV)

			setParams(t, coarse, randomParams(rng, m.Coarse))
			small := params(t, coarse)
			de, err := m.DeCoalesce(small, testSplit)
			if err != nil {
				t.Fatal(err)
			}
			for _, alpha := range []float64{0.25, 0, 1} {
				setParams(t, fine, saved)
				vktest.Run(t, o.Context(), func(s *vk.Sequence) error { return m.RecordInterpolate(o, s, coarse, fine, alpha, testSplit) })
				want, err := Interpolate(saved, de, alpha)
				if err != nil {
					t.Fatal(err)
				}
				got := params(t, fine)
				within(t, name+" interpolate", got, want)
				if alpha == 0 && maxAbsDiff(t, got, saved) != 0 {
					t.Errorf("%s: alpha 0 changed the saved parameters", name)
				}
			}
		}
	}
}

const scheduleConfig = `
[model]
arch = "gpt"
tokenizer = "byte"
context = 16
layers = 2
width = 16
heads = 2

[train]
data = "CORPUS"
batch = 2
steps = 10
lr = 1e-2
warmup = 0
decay = "linear"
eval_every = 0
eval_batches = 1
log_every = 1
seed = 3

[vcycle]
alpha = 0.25

[[vcycle.level]]
down = { steps = 3, warmup = 1 }
up = { steps = 3 }

[[vcycle.level]]
halve = "both"
down = { steps = 4, lr = 4e-2 }
`

// vcycleRun prepares a run of scheduleConfig (with the replacements of replace, old then new)
// on a small corpus, in a folder of its own.
func vcycleRun(t *testing.T, o *ops.Ops, replace ...string) (*train.Run, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	text := strings.Repeat("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ", 40)
	if err := os.WriteFile(corpus, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgText := strings.Replace(scheduleConfig, "CORPUS", corpus, 1)
	for i := 0; i+1 < len(replace); i += 2 {
		cfgText = strings.Replace(cfgText, replace[i], replace[i+1], 1)
	}
	cfg, err := config.Parse("test", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	run, err := train.NewRun(o, cfg, []byte(cfgText), filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run.Free)
	return run, cfg
}

// The saved level waits on disk while the level below trains, and with keep = "disk" only
// there: the level is rebuilt from the file for the interpolation. Either way the run is
// bitwise the same (dropout masks included), and the files are gone at the end.
func TestKeepOnDisk(t *testing.T) {
	o := openOps(t)
	var losses [2][]float64
	for i, keep := range []string{"gpu", "disk"} {
		// With dropout, so that a level rebuilt from disk must draw the same masks.
		run, _ := vcycleRun(t, o, "alpha = 0.25", "alpha = 0.25\nkeep = \""+keep+"\"", "heads = 2", "heads = 2\ndropout = 0.1")
		level1 := run.Net
		opt := Options{
			OnLog: func(m train.Metrics) { losses[i] = append(losses[i], m.Loss) },
			OnPhase: func(p config.Phase) {
				if _, err := os.Stat(savedPath(run.Out, 1)); (err == nil) != (p.Level == 2 || p.Up) {
					t.Errorf("keep %s, level %d phase: the saved level 1 on disk: %v", keep, p.Level, err)
				}
			},
			OnSwitch: func(sw Switch) {
				if sw.Up && (sw.Fine == level1) != (keep == "gpu") {
					t.Errorf("keep %s: level 1 interpolated in the net it trained in: %v", keep, sw.Fine == level1)
				}
			},
		}
		if err := Train(context.Background(), o, run, opt); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(run.Out, savedDir)); err == nil {
			t.Errorf("keep %s: %s left behind", keep, savedDir)
		}
	}
	if len(losses[0]) != 10 || len(losses[1]) != 10 {
		t.Fatalf("logged %d and %d steps", len(losses[0]), len(losses[1]))
	}
	for i := range losses[0] {
		if math.Float64bits(losses[0][i]) != math.Float64bits(losses[1][i]) {
			t.Fatalf("step %d: loss %v kept on the GPU, %v kept on disk", i+1, losses[0][i], losses[1][i])
		}
	}
}

// A 2-level V-cycle runs its phases in order (level 1, level 2, level 1, each evaluated at
// its end) and interpolates with the level-1 parameters saved when it was coalesced.
func TestTwoLevelSchedule(t *testing.T) {
	o := openOps(t)
	run, cfg := vcycleRun(t, o)

	var levels []int
	var evaluated []int
	var atCoalesce, saved, coarse Params
	var phases []config.Phase
	opt := Options{
		OnLog: func(m train.Metrics) {
			levels = append(levels, m.Level)
			if m.ValLoss != nil {
				evaluated = append(evaluated, m.Step)
			}
		},
		OnPhase: func(p config.Phase) { phases = append(phases, p) },
		OnSwitch: func(sw Switch) {
			switch {
			case !sw.Up && sw.Done:
				atCoalesce = params(t, sw.Fine)
			case sw.Up && !sw.Done:
				saved, coarse = params(t, sw.Fine), params(t, sw.Coarse)
			case sw.Up && sw.Done:
				m, err := NewMaps(cfg.Model, sw.Fine.Vocab, true, true, rules("adjacent", "exact", "copy"))
				if err != nil {
					t.Fatal(err)
				}
				de, err := m.DeCoalesce(coarse, ops.Split{})
				if err != nil {
					t.Fatal(err)
				}
				want, err := Interpolate(atCoalesce, de, 0.25)
				if err != nil {
					t.Fatal(err)
				}
				within(t, "interpolation", params(t, sw.Fine), want)
			}
		},
	}
	if err := Train(context.Background(), o, run, opt); err != nil {
		t.Fatal(err)
	}
	want := []int{1, 1, 1, 2, 2, 2, 2, 1, 1, 1}
	if len(levels) != len(want) {
		t.Fatalf("logged levels %v, want %v", levels, want)
	}
	for i := range want {
		if levels[i] != want[i] {
			t.Fatalf("logged levels %v, want %v", levels, want)
		}
	}
	if got := []int{3, 7, 10}; len(evaluated) != 3 || evaluated[0] != got[0] || evaluated[1] != got[1] || evaluated[2] != got[2] {
		t.Errorf("evaluated at steps %v, want the phase ends %v", evaluated, got)
	}
	if maxAbsDiff(t, saved, atCoalesce) != 0 {
		t.Error("the level-1 parameters changed between coalescing and interpolation")
	}
	models, err := cfg.LevelModels()
	if err != nil {
		t.Fatal(err)
	}
	if len(phases) != 3 || phases[1].Level != 2 || models[1].Width != 8 || models[1].Layers != 1 || cfg.Schedule(phases[1]).LR != 4e-2 || !phases[2].Up {
		t.Errorf("phases %+v", phases)
	}
	st := run.State
	total := st.Maps.FLOPs
	for _, l := range st.Levels {
		total += l.FLOPs
	}
	if math.Abs(total-st.FLOPs) > 1e-9*st.FLOPs || len(st.Levels) != 2 || st.Levels[0].Steps != 6 || st.Levels[1].Steps != 4 {
		t.Errorf("accounting %+v, %+v does not add up to the run's %g FLOPs", st.Levels, st.Maps, st.FLOPs)
	}
}
