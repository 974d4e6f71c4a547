package train

import (
	"math"
	"testing"

	"github.com/vktrain/vktrain/config"
)

func TestLearningRate(t *testing.T) {
	c := config.Train{LR: 1, MinLR: 0.1, Warmup: 10, Steps: 110, Decay: "cosine"}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	for _, tc := range []struct {
		decay string
		step  int
		want  float64
	}{
		{"cosine", 0, 0.1}, {"cosine", 9, 1}, {"cosine", 10, 1}, {"cosine", 109, 0.1},
		{"linear", 10, 1}, {"linear", 109, 0.1}, {"constant", 50, 1}, {"constant", 3, 0.4},
	} {
		c.Decay = tc.decay
		if got := LearningRate(c, float64(tc.step)); !near(got, tc.want) {
			t.Errorf("%s step %d: %v, want %v", tc.decay, tc.step, got, tc.want)
		}
	}
	c.Decay = "cosine"
	mid := LearningRate(c, 10+99/2)
	if mid < 0.5 || mid > 0.6 {
		t.Errorf("cosine midpoint %v", mid)
	}
	for s := 11; s < 110; s++ {
		if LearningRate(c, float64(s)) > LearningRate(c, float64(s-1)) {
			t.Fatalf("cosine decay rises at step %d", s)
		}
	}
}

// vcycleConfig is gpt-tiny-vcycle with the -set overrides set.
func vcycleConfig(t *testing.T, set ...string) *config.Config {
	t.Helper()
	text, err := config.PresetText("gpt-tiny-vcycle")
	if err != nil {
		t.Fatal(err)
	}
	if text, err = config.Override(text, set); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test", text)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The global schedule (docs/method.md §9.9) is [train]'s schedule at the run's progress: it
// warms up once, then never rises, and moves by no more than a normal step's change across a
// switch between levels; with a re-warmup it restarts from lr/rewarm after each switch. AdamW's
// step count runs on over the switches when the moments are mapped and restarts when they are
// reset.
func TestGlobalSchedule(t *testing.T) {
	for _, progress := range []string{"tokens", "flops"} {
		cfg := vcycleConfig(t, `vcycle.progress="`+progress+`"`)
		s, err := NewSchedule(cfg, 256, cfg.Model.Context)
		if err != nil {
			t.Fatal(err)
		}
		tc := cfg.Train
		maxDrop := tc.LR - tc.MinLR
		peaked := false // the warmup is over
		for step := 1; step < cfg.Steps(); step++ {
			prev, lr := s.LR(step-1), s.LR(step)
			peaked = peaked || prev >= tc.LR*(1-1e-12)
			if peaked && lr > prev+1e-15 {
				t.Fatalf("%s: the learning rate rises from %g to %g at step %d", progress, prev, lr, step)
			}
			if peaked && prev-lr > maxDrop*0.05 {
				t.Fatalf("%s: the learning rate jumps from %g to %g at step %d", progress, prev, lr, step)
			}
			if s.AdamStep(step) != step+1 {
				t.Fatalf("%s: AdamW step %d at run step %d with mapped moments", progress, s.AdamStep(step), step)
			}
		}
		if got := s.LR(0); got != LearningRate(tc, 0) {
			t.Errorf("%s: first step's rate %g, want [train]'s %g", progress, got, LearningRate(tc, 0))
		}
		if last := s.LR(cfg.Steps() - 1); last > tc.MinLR+0.05*(tc.LR-tc.MinLR) {
			t.Errorf("%s: the run ends at rate %g, not near min_lr %g", progress, last, tc.MinLR)
		}
	}

	cfg := vcycleConfig(t, "vcycle.rewarm=4")
	s, err := NewSchedule(cfg, 256, cfg.Model.Context)
	if err != nil {
		t.Fatal(err)
	}
	up := cfg.PhaseStart(1)
	if got, unwarmed := s.LR(up), s.LR(up-1); got > unwarmed/3 {
		t.Errorf("rewarm 4: the rate after the switch is %g, want about a quarter of %g", got, unwarmed)
	}

	cfg = vcycleConfig(t, `vcycle.moments="reset"`)
	if s, err = NewSchedule(cfg, 256, cfg.Model.Context); err != nil {
		t.Fatal(err)
	}
	if got := s.AdamStep(cfg.PhaseStart(1)); got != 1 {
		t.Errorf("moments reset: AdamW step %d at the first step of a phase, want 1", got)
	}
}

// A plain run's schedule is [train]'s, step by step.
func TestPlainSchedule(t *testing.T) {
	text, err := config.PresetText("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("gpt-tiny", text)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSchedule(cfg, 256, cfg.Model.Context)
	if err != nil {
		t.Fatal(err)
	}
	for step := range cfg.Train.Steps {
		if s.LR(step) != LearningRate(cfg.Train, float64(step)) || s.AdamStep(step) != step+1 {
			t.Fatalf("step %d: rate %g, AdamW step %d; want %g, %d", step, s.LR(step), s.AdamStep(step), LearningRate(cfg.Train, float64(step)), step+1)
		}
	}
}
