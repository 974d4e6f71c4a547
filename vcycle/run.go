package vcycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/model/safetensors"
	"github.com/vktrain/vktrain/vk/ops"
)

// Options are what Train reports along the way; any may be nil.
type Options struct {
	OnLog    func(model.Metrics) // every metrics line, as model.Run.Train logs it
	OnPhase  func(Phase)         // as a phase starts
	OnSwitch func(Switch)        // around every level switch, before and after its maps run
}

// Phase is one stretch of a V-cycle: a level trained with its own schedule.
type Phase struct {
	Level int
	Model model.ModelConfig
	Up    bool // after interpolation (else on the way down, or the coarsest level)
	Sched model.TrainConfig
}

// Switch is a level switch: coalescing fine into coarse (Up false) or interpolating fine with
// the de-coalesced coarse (Up true). Done says whether the maps have run.
type Switch struct {
	Level        int // the fine model's level
	Up, Done     bool
	Fine, Coarse *model.Net
}

// LevelStats is the work one level did: its training steps, and the FLOPs and wall time of
// its training (Maps: of the switches into it).
type LevelStats struct {
	Level int     `json:"level"`
	Steps int     `json:"steps"`
	FLOPs float64 `json:"flops"`
	WallS float64 `json:"wall_s"`
}

// Result is the accounting of a V-cycle: per level, and the maps between levels (counted in
// the run's FLOPs and wall time too).
type Result struct {
	Levels    []LevelStats `json:"levels"`
	MapsFLOPs float64      `json:"maps_flops"`
	MapsWallS float64      `json:"maps_wall_s"`
}

// Train runs the V-cycle of r.Cfg.VCycle on r, a fresh run whose Net is the level-1 model
// (method.md section 5): down through the levels, training each and coalescing it into the next
// (its parameters stay unchanged as the saved theta_k: on the GPU, or with [vcycle] keep =
// "disk" in OUT/vcycle-saved while its GPU memory is freed); the coarsest level; then
// up, interpolating each level's saved parameters with the de-coalesced level below and
// training it. Every phase starts a fresh AdamW and its own learning-rate schedule. Only the
// level-1 model is checkpointed (at the end, and periodically in its last phase). A cancelled
// ctx returns model.ErrInterrupted.
func Train(ctx context.Context, o *ops.Ops, r *model.Run, opt Options) (*Result, error) {
	v := r.Cfg.VCycle
	if v == nil {
		return nil, fmt.Errorf("vcycle: the configuration has no [vcycle] section")
	}
	if r.State.Step != 0 {
		return nil, fmt.Errorf("vcycle: a V-cycle starts from step 0; this run is at step %d (V-cycle runs cannot be resumed)", r.State.Step)
	}
	models, err := r.Cfg.LevelModels()
	if err != nil {
		return nil, err
	}
	res := &Result{Levels: make([]LevelStats, len(models))}
	for i := range res.Levels {
		res.Levels[i].Level = i + 1
	}
	vocab, b, t := r.Net.Vocab, r.Net.B, r.Net.T
	nets := []*model.Net{r.Net}
	maps := make([]*Maps, len(models)-1)
	// retired nets are freed once r trains another; r frees the Net it trains last.
	var retired []*model.Net
	retire := func(k int) {
		retired = append(retired, nets[k])
		nets[k] = nil
	}
	freeRetired := func() {
		for _, n := range retired {
			if n != r.Net {
				n.Free()
			}
		}
		retired = nil
	}
	defer func() {
		for _, n := range nets {
			if n != nil && n != r.Net {
				n.Free()
			}
		}
		freeRetired()
	}()
	train := func(k int, up bool, p model.PhaseConfig) error {
		sched := r.Cfg.Schedule(p)
		if opt.OnPhase != nil {
			opt.OnPhase(Phase{Level: k + 1, Model: models[k], Up: up, Sched: sched})
		}
		if err := r.BeginPhase(k+1, nets[k], sched, k == 0 && up); err != nil {
			return err
		}
		freeRetired()
		before := r.State
		err := r.Train(ctx, opt.OnLog)
		st := &res.Levels[k]
		st.Steps += r.State.Step - before.Step
		st.FLOPs += r.State.FLOPs - before.FLOPs
		st.WallS += r.State.WallS - before.WallS
		return err
	}
	last := len(models) - 1
	for k := 0; k <= last; k++ {
		if k > 0 {
			w, d := v.Levels[k].Halves()
			if maps[k-1], err = NewMaps(models[k-1], vocab, w, d, v.DepthPairing, v.Embedding); err != nil {
				return nil, err
			}
			coarse, err := model.NewNet(o, models[k], vocab, b, t, r.Cfg.Train.Seed)
			if err != nil {
				return nil, fmt.Errorf("level %d: %w", k+1, err)
			}
			nets = append(nets, coarse)
			if err := runMaps(o, r, res, opt, maps[k-1], Switch{Level: k, Fine: nets[k-1], Coarse: coarse}); err != nil {
				return nil, err
			}
			if v.Keep == "disk" {
				start := time.Now()
				if err := saveLevel(r.Out, k, nets[k-1]); err != nil {
					return nil, err
				}
				res.addMapsWall(r, time.Since(start).Seconds())
				retire(k - 1)
			}
		}
		if err := train(k, false, v.Levels[k].Down); err != nil {
			return nil, err
		}
	}
	for k := last - 1; k >= 0; k-- {
		if nets[k] == nil {
			start := time.Now()
			if nets[k], err = loadLevel(o, r.Out, k+1, models[k], vocab, b, t); err != nil {
				return nil, err
			}
			res.addMapsWall(r, time.Since(start).Seconds())
		}
		if err := runMaps(o, r, res, opt, maps[k], Switch{Level: k + 1, Up: true, Fine: nets[k], Coarse: nets[k+1]}); err != nil {
			return nil, err
		}
		retire(k + 1)
		if err := train(k, true, *v.Levels[k].Up); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runMaps records and runs one switch's maps on the GPU (coalescing, or de-coalescing and
// interpolating) and counts their FLOPs and wall time in the run and the result.
func runMaps(o *ops.Ops, r *model.Run, res *Result, opt Options, m *Maps, sw Switch) error {
	if opt.OnSwitch != nil {
		opt.OnSwitch(sw)
	}
	start := time.Now()
	s, err := o.Context().NewSequence()
	if err != nil {
		return err
	}
	defer s.Release()
	if sw.Up {
		v := r.Cfg.VCycle
		split := ops.Split{Sigma: float32(v.Split), Seed: uint32(r.Cfg.Train.Seed) + uint32(sw.Level)}
		err = m.RecordInterpolate(o, s, sw.Coarse, sw.Fine, v.Alpha, split)
	} else {
		err = m.RecordCoalesce(o, s, sw.Fine, sw.Coarse)
	}
	if err == nil {
		err = s.Run()
	}
	if err != nil {
		return fmt.Errorf("vcycle: level %d maps: %w", sw.Level, err)
	}
	r.AddWork(s.FLOPs(), 0)
	res.MapsFLOPs += s.FLOPs()
	res.addMapsWall(r, time.Since(start).Seconds())
	sw.Done = true
	if opt.OnSwitch != nil {
		opt.OnSwitch(sw)
	}
	return nil
}

// addMapsWall counts wall time of the switches between levels in the run and the result.
func (res *Result) addMapsWall(r *model.Run, s float64) {
	r.AddWork(0, s)
	res.MapsWallS += s
}

// savedPath is where keep = "disk" holds level's saved parameters.
func savedPath(out string, level int) string {
	return filepath.Join(out, "vcycle-saved", fmt.Sprintf("level-%d.safetensors", level))
}

// saveLevel writes net's parameters (level level's saved theta) to disk.
func saveLevel(out string, level int, net *model.Net) error {
	params, err := net.Params()
	if err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for _, p := range net.Specs {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: params[p.Name]})
	}
	path := savedPath(out, level)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return safetensors.Write(path, ts, nil)
}

// loadLevel rebuilds level level's model from the parameters saveLevel wrote, and removes the
// file.
func loadLevel(o *ops.Ops, out string, level int, cfg model.ModelConfig, vocab, b, t int) (*model.Net, error) {
	path := savedPath(out, level)
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("level %d's saved parameters: %w", level, err)
	}
	net, err := model.NewNet(o, cfg, vocab, b, t, 0)
	if err != nil {
		return nil, err
	}
	params := map[string][]float32{}
	for name, ts := range f.Tensors {
		params[name] = ts.Data
	}
	if err := net.SetParams(params); err != nil {
		net.Free()
		return nil, fmt.Errorf("level %d's saved parameters: %w", level, err)
	}
	os.Remove(path)
	return net, nil
}
