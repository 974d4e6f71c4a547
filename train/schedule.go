package train

import (
	"math"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
)

// LearningRate is the schedule's rate at step (0-based, possibly fractional) of t.Steps: a
// linear warmup to lr over warmup steps, then a cosine or linear decay to minLR at the last
// step, or constant.
func LearningRate(t config.Train, step float64) float64 {
	if step < float64(t.Warmup) {
		return t.LR * (step + 1) / float64(t.Warmup)
	}
	span := float64(t.Steps - t.Warmup - 1)
	progress := 1.0
	if span > 0 {
		progress = math.Min(1, (step-float64(t.Warmup))/span)
	}
	switch t.Decay {
	case "cosine":
		return t.MinLR + 0.5*(1+math.Cos(math.Pi*progress))*(t.LR-t.MinLR)
	case "linear":
		return t.LR - (t.LR-t.MinLR)*progress
	}
	return t.LR
}

// Schedule is a run's learning rate and AdamW step count at each of its steps, over all its
// phases (docs/method.md §9.9). With [vcycle] schedule = "phases" (and in a plain run) each phase
// follows its own schedule; with "global" the whole run follows [train]'s, evaluated at the
// run's progress: the fraction of its tokens, or of its FLOPs, spent before the step.
type Schedule struct {
	cfg    *config.Config
	phases []config.Phase
	starts []int     // the run step at which each phase starts; one more entry: the run's end
	cost   []float64 // progress per step in each phase: 1 per step, or the level's FLOPs per token
	spent  []float64 // progress before each phase
	total  float64
}

// NewSchedule is cfg's schedule for a model of vocab tokens trained on sequences of t tokens.
func NewSchedule(cfg *config.Config, vocab, t int) (*Schedule, error) {
	s := &Schedule{cfg: cfg, phases: cfg.Phases()}
	models := []config.Model{cfg.Model}
	if cfg.VCycle != nil {
		var err error
		if models, err = cfg.LevelModels(); err != nil {
			return nil, err
		}
	}
	for i, p := range s.phases {
		s.starts = append(s.starts, cfg.PhaseStart(i))
		c := 1.0
		if cfg.VCycle != nil && cfg.VCycle.Progress == "flops" {
			c = model.TrainingFLOPsPerToken(models[p.Level-1], vocab, t)
		}
		s.cost = append(s.cost, c)
		s.spent = append(s.spent, s.total)
		s.total += c * float64(p.Steps)
	}
	s.starts = append(s.starts, cfg.Steps())
	return s, nil
}

// Phase is the index of the phase that trains run step step (0-based).
func (s *Schedule) Phase(step int) int {
	for p := range s.phases {
		if step < s.starts[p+1] {
			return p
		}
	}
	return len(s.phases) - 1
}

// PhaseStart is the run step at which phase p starts.
func (s *Schedule) PhaseStart(p int) int { return s.starts[p] }

// LR is the learning rate of run step step (0-based).
func (s *Schedule) LR(step int) float64 {
	p := s.Phase(step)
	ph, k := s.phases[p], step-s.starts[p]
	if !s.cfg.VCycle.Global() {
		return LearningRate(s.cfg.Schedule(ph), float64(k))
	}
	v := s.cfg.VCycle
	progress := (s.spent[p] + s.cost[p]*float64(k)) / s.total
	lr := LearningRate(s.cfg.Train, progress*float64(s.cfg.Train.Steps)) * v.Levels[ph.Level-1].LRScale
	if p > 0 && k < v.Rewarm {
		lr *= float64(k+1) / float64(v.Rewarm)
	}
	return lr
}

// AdamStep is AdamW's step count (from 1, for its bias correction) at run step step: counted
// from the phase's start when every phase starts a fresh optimizer, from the run's start when
// the moments are carried through the maps.
func (s *Schedule) AdamStep(step int) int {
	if v := s.cfg.VCycle; v != nil && v.Moments == "reset" {
		return step - s.starts[s.Phase(step)] + 1
	}
	return step + 1
}
