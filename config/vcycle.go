package config

import (
	"fmt"
)

// VCycle is the [vcycle] section: the multi-level V-cycle of docs/method.md §5. Level 1
// is the model of [model]; each further level is coalesced from the one above it. On the way
// down each level trains for its `down` phase and is then coalesced; the coarsest level trains
// its `down` phase only; on the way up each level is interpolated from its saved parameters
// and the de-coalesced level below, then trains its `up` phase. With the paper's settings
// (moments "reset", schedule "phases") every phase starts a fresh AdamW and its own
// learning-rate schedule; docs/method.md §9 states the alternatives.
type VCycle struct {
	Alpha        float64 `toml:"alpha"`         // interpolation weight of the de-coalesced model (0.25 GPT, 0.5 BERT)
	DepthPairing string  `toml:"depth_pairing"` // "adjacent" (big layers 2i, 2i+1; the paper) or "stride" (i, i+L/2)
	Embedding    string  `toml:"embedding"`     // "exact" (final LayerNorm rescaled) or "reference" (embeddings rescaled)
	Keep         string  `toml:"keep"`          // where a level waits while the levels below train: "gpu" (default) or "disk"
	Split        float64 `toml:"split"`         // std of the antisymmetric split of de-coalesced inputs (0: none; ours, docs/method.md §8)
	Moments      string  `toml:"moments"`       // AdamW state at a switch: "reset" (zero, the paper) or "map" (carried through the maps, §9.4–§9.6)
	Schedule     string  `toml:"schedule"`      // "phases" (each phase its own schedule, the paper) or "global" (one schedule for the run, §9.9)
	Progress     string  `toml:"progress"`      // the global schedule's clock: "tokens" or "flops" (fraction of the run's budget)
	Rewarm       int     `toml:"rewarm"`        // global schedule: linear re-warmup steps after each switch (0: none)
	DepthInit    string  `toml:"depth_init"`    // de-coalesced depth pairs: "copy" (the paper), "halve" or "zero" (§9.7)
	Levels       []Level `toml:"level"`
}

// Level is one level of the V-cycle.
type Level struct {
	Halve   string  `toml:"halve"`    // what this level halves of the one above: "both" (default), "width" or "depth"; not on level 1
	LRScale float64 `toml:"lr_scale"` // global schedule: this level's learning-rate factor; 0 means 1
	Down    Phase   `toml:"down"`     // training before coalescing (E_a); the coarsest level's only training (E_small)
	Up      *Phase  `toml:"up"`       // training after interpolation (E_k); not on the coarsest level
}

// Phase is one stretch of training with its own length and learning-rate schedule: a level's
// `down` or `up` phase of a V-cycle (unset keys take [train]'s), or the whole of a plain run.
// Level and Up say where it sits in the V-cycle (Phases sets them; they are not TOML keys).
type Phase struct {
	Level  int      `toml:"-"` // 1 = the full model
	Up     bool     `toml:"-"` // after interpolation (else on the way down, or the coarsest level)
	Steps  int      `toml:"steps"`
	LR     float64  `toml:"lr"`     // peak; 0 means train.lr
	MinLR  *float64 `toml:"min_lr"` // unset means train.min_lr scaled by lr/train.lr
	Warmup int      `toml:"warmup"`
	Decay  string   `toml:"decay"` // "" means train.decay
}

// Halves says which halvings a level's Halve names.
func (l Level) Halves() (width, depth bool) {
	switch l.Halve {
	case "width":
		return true, false
	case "depth":
		return false, true
	}
	return true, true
}

// Halved is the configuration of the model one V-cycle level below m: half the width, heads
// and FFN width (the head size stays), half the layers.
func (m Model) Halved(width, depth bool) (Model, error) {
	h := m
	if width {
		if m.Width%2 != 0 || m.Heads%2 != 0 || m.FFN%2 != 0 {
			return h, fmt.Errorf("width %d, %d heads, FFN %d cannot be halved (each must be even)", m.Width, m.Heads, m.FFN)
		}
		h.Width, h.Heads, h.FFN = m.Width/2, m.Heads/2, m.FFN/2
	}
	if depth {
		if m.Layers%2 != 0 {
			return h, fmt.Errorf("%d layers cannot be halved (must be even)", m.Layers)
		}
		h.Layers = m.Layers / 2
	}
	return h, nil
}

// LevelModels is the model of every level, level 1 first.
func (c *Config) LevelModels() ([]Model, error) {
	models := []Model{c.Model}
	for i, l := range c.VCycle.Levels[1:] {
		w, d := l.Halves()
		m, err := models[i].Halved(w, d)
		if err != nil {
			return nil, fmt.Errorf("vcycle.level.%d: %w", i+2, err)
		}
		models = append(models, m)
	}
	return models, nil
}

// Schedule is phase p's learning-rate schedule as a Train (Steps, LR, MinLR, Warmup,
// Decay set from the phase, the rest from [train]).
func (c *Config) Schedule(p Phase) Train {
	t := c.Train
	t.Steps, t.Warmup = p.Steps, p.Warmup
	if p.LR > 0 {
		t.LR = p.LR
	}
	if p.MinLR != nil {
		t.MinLR = *p.MinLR
	} else {
		t.MinLR = c.Train.MinLR * t.LR / c.Train.LR
	}
	if p.Decay != "" {
		t.Decay = p.Decay
	}
	return t
}

// Phases lists the V-cycle's phases in the order they train: every level's down phase from
// level 1 to the coarsest, then the up phases back to level 1.
func (v *VCycle) Phases() []Phase {
	var ps []Phase
	for i, l := range v.Levels {
		p := l.Down
		p.Level = i + 1
		ps = append(ps, p)
	}
	for i := len(v.Levels) - 2; i >= 0; i-- {
		p := *v.Levels[i].Up
		p.Level, p.Up = i+1, true
		ps = append(ps, p)
	}
	return ps
}

// Phases lists the phases the run trains: the V-cycle's, or for plain training one phase of
// train.steps steps of the full model with [train]'s schedule.
func (c *Config) Phases() []Phase {
	if c.VCycle != nil {
		return c.VCycle.Phases()
	}
	t := c.Train
	return []Phase{{Level: 1, Steps: t.Steps, LR: t.LR, MinLR: &t.MinLR, Warmup: t.Warmup, Decay: t.Decay}}
}

// PhaseStart is the run's step at which phase p of Phases starts.
func (c *Config) PhaseStart(p int) int {
	n := 0
	for _, ph := range c.Phases()[:p] {
		n += ph.Steps
	}
	return n
}

// Steps is the run's total number of optimizer steps, over all its phases.
func (c *Config) Steps() int { return c.PhaseStart(len(c.Phases())) }

func (v *VCycle) fillDefaults() {
	// Unset keys keep the paper's behaviour.
	for _, d := range []struct {
		key *string
		def string
	}{{&v.DepthPairing, "adjacent"}, {&v.Embedding, "exact"}, {&v.Keep, "gpu"}, {&v.Moments, "reset"},
		{&v.Schedule, "phases"}, {&v.Progress, "tokens"}, {&v.DepthInit, "copy"}} {
		if *d.key == "" {
			*d.key = d.def
		}
	}
	for i := range v.Levels {
		if i > 0 && v.Levels[i].Halve == "" {
			v.Levels[i].Halve = "both"
		}
		if v.Levels[i].LRScale == 0 {
			v.Levels[i].LRScale = 1
		}
	}
}

// Global says whether the run follows one learning-rate schedule (schedule = "global").
func (v *VCycle) Global() bool { return v != nil && v.Schedule == "global" }

// validate checks the [vcycle] section; bad is Validate's error collector.
func (c *Config) validateVCycle(bad func(format string, a ...any)) {
	v := c.VCycle
	if v.Alpha < 0 || v.Alpha > 1 {
		bad("vcycle.alpha: %g is not in [0, 1]", v.Alpha)
	}
	oneOf(bad, "vcycle.depth_pairing", v.DepthPairing, "adjacent", "stride")
	oneOf(bad, "vcycle.embedding", v.Embedding, "exact", "reference")
	if v.Split < 0 {
		bad("vcycle.split: must not be negative, got %g", v.Split)
	}
	oneOf(bad, "vcycle.keep", v.Keep, "gpu", "disk")
	oneOf(bad, "vcycle.moments", v.Moments, "reset", "map")
	oneOf(bad, "vcycle.schedule", v.Schedule, "phases", "global")
	oneOf(bad, "vcycle.progress", v.Progress, "tokens", "flops")
	oneOf(bad, "vcycle.depth_init", v.DepthInit, "copy", "halve", "zero")
	if v.Rewarm < 0 {
		bad("vcycle.rewarm: must not be negative, got %d", v.Rewarm)
	}
	if !v.Global() && v.Rewarm != 0 {
		bad("vcycle.rewarm: re-warmup belongs to schedule = \"global\" (each phase of \"phases\" has its own warmup)")
	}
	if len(v.Levels) < 2 {
		bad("vcycle.level: a V-cycle needs at least 2 levels, got %d", len(v.Levels))
		return
	}
	last := len(v.Levels) - 1
	for i, l := range v.Levels {
		key := fmt.Sprintf("vcycle.level.%d", i+1) // levels count from 1, as -set names them
		if i == 0 && l.Halve != "" {
			bad("%s.halve: level 1 is the full model and halves nothing", key)
		} else if i > 0 {
			oneOf(bad, key+".halve", l.Halve, "both", "width", "depth")
		}
		if l.LRScale <= 0 || !finite(l.LRScale) {
			bad("%s.lr_scale: must be positive, got %g", key, l.LRScale)
		} else if l.LRScale != 1 && !v.Global() {
			bad("%s.lr_scale: belongs to schedule = \"global\" (with \"phases\" set the phase's lr)", key)
		}
		c.validatePhase(bad, key+".down", l.Down, i == last)
		switch {
		case i == last && l.Up != nil:
			bad("%s.up: the coarsest level trains once, in its down phase", key)
		case i < last && l.Up == nil:
			bad("%s.up: missing (the training after interpolation)", key)
		case i < last:
			c.validatePhase(bad, key+".up", *l.Up, true)
		}
	}
	if _, err := c.LevelModels(); err != nil {
		bad("%v", err)
	}
}

func (c *Config) validatePhase(bad func(format string, a ...any), key string, p Phase, needSteps bool) {
	switch {
	case p.Steps < 0:
		bad("%s.steps: must not be negative, got %d", key, p.Steps)
	case needSteps && p.Steps < 1:
		bad("%s.steps: must be at least 1, got %d", key, p.Steps)
	}
	if c.VCycle.Global() {
		// One schedule for the run: the phase gives only its length.
		if p.LR != 0 || p.MinLR != nil || p.Warmup != 0 || p.Decay != "" {
			bad("%s: schedule = \"global\" takes the learning rate from [train]; set only steps here (lr_scale and rewarm adjust it)", key)
		}
		return
	}
	s := c.Schedule(p)
	if s.LR <= 0 {
		bad("%s.lr: must be positive, got %g", key, s.LR)
	}
	if s.MinLR < 0 || s.MinLR > s.LR {
		bad("%s.min_lr: %g is not in [0, lr = %g]", key, s.MinLR, s.LR)
	}
	if p.Warmup < 0 || p.Warmup > p.Steps {
		bad("%s.warmup: %d is not in [0, steps = %d]", key, p.Warmup, p.Steps)
	}
	oneOf(bad, key+".decay", s.Decay, decays...)
}
