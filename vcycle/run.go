package vcycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/internal/safetensors"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/train"
	"github.com/vktrain/vktrain/vk/ops"
)

// Options are what Train reports along the way; any may be nil.
type Options struct {
	OnLog    func(train.Metrics) // every metrics line, as train.Run.Train logs it
	OnPhase  func(config.Phase)  // as a phase starts
	OnSwitch func(Switch)        // around every level switch, before and after its maps run
}

// Switch is a level switch: coalescing fine into coarse (Up false) or interpolating fine with
// the de-coalesced coarse (Up true). Done says whether the maps have run.
type Switch struct {
	Level        int // the fine model's level
	Up, Done     bool
	Fine, Coarse *model.Net
}

// Train runs the V-cycle of r.Cfg.VCycle on r (docs/method.md §5), from the start of a fresh
// run or from where a resumed one stopped: down through the levels, training each and
// coalescing it into the next; the coarsest level; then up, interpolating each level's saved
// parameters with the de-coalesced level below and training it. AdamW's moments start fresh at
// every phase or go through the maps ([vcycle] moments), and the learning rate follows each
// phase's schedule or the run's ([vcycle] schedule; see train.Schedule). A level's parameters as they were when it was
// coalesced (the saved theta_k) are written to OUT/vcycle-saved, so that a resumed run finds
// them, and stay on the GPU as well unless [vcycle] keep = "disk". Every phase checkpoints the
// model it trains (train.checkpoint_every and at its end); the work per level is in r.State.
// A cancelled ctx writes a checkpoint and returns train.ErrInterrupted.
func Train(ctx context.Context, o *ops.Ops, r *train.Run, opt Options) error {
	v := r.Cfg.VCycle
	if v == nil {
		return fmt.Errorf("vcycle: the configuration has no [vcycle] section")
	}
	models, err := r.Cfg.LevelModels()
	if err != nil {
		return err
	}
	phases := v.Phases()
	vocab, b, t := r.Net.Vocab, r.Net.B, r.Net.T
	nets := make([]*model.Net, len(models)) // by level - 1
	nets[r.Level()-1] = r.Net
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
	first := r.State.Phase
	for p := first; p < len(phases); p++ {
		ph, k := phases[p], phases[p].Level-1
		switch {
		case p == first && r.State.Step > 0:
			// Resumed: the checkpoint restored this phase's model, optimizer and schedule.
		case p == first:
			if err := r.BeginPhase(p, nets[k]); err != nil {
				return err
			}
		case !ph.Up:
			w, d := v.Levels[k].Halves()
			m, err := NewMaps(models[k-1], vocab, w, d, v)
			if err != nil {
				return err
			}
			if nets[k], err = model.NewNet(o, models[k], vocab, b, t, r.Cfg.Train.Seed); err != nil {
				return fmt.Errorf("level %d: %w", k+1, err)
			}
			if err := runMaps(o, r, opt, m, Switch{Level: k, Fine: nets[k-1], Coarse: nets[k]}); err != nil {
				return err
			}
			start := time.Now()
			if err := saveLevel(r.Out, k, nets[k-1]); err != nil {
				return err
			}
			r.AddMapsWork(0, time.Since(start).Seconds())
			if v.Keep == "disk" {
				retire(k - 1)
			}
		default:
			w, d := v.Levels[k+1].Halves()
			m, err := NewMaps(models[k], vocab, w, d, v)
			if err != nil {
				return err
			}
			if nets[k] == nil {
				start := time.Now()
				if nets[k], err = loadLevel(o, r.Out, k+1, models[k], vocab, b, t, r.Cfg.Train.Seed); err != nil {
					return err
				}
				r.AddMapsWork(0, time.Since(start).Seconds())
			}
			if err := runMaps(o, r, opt, m, Switch{Level: k + 1, Up: true, Fine: nets[k], Coarse: nets[k+1]}); err != nil {
				return err
			}
			retire(k + 1)
		}
		if p > first {
			if err := r.BeginPhase(p, nets[k]); err != nil {
				return err
			}
			freeRetired()
		}
		if opt.OnPhase != nil {
			opt.OnPhase(ph)
		}
		if err := r.Train(ctx, opt.OnLog); err != nil {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(r.Out, savedDir))
}

// runMaps records and runs one switch's maps on the GPU (coalescing, or de-coalescing and
// interpolating) and counts their FLOPs and wall time in the run.
func runMaps(o *ops.Ops, r *train.Run, opt Options, m *Maps, sw Switch) error {
	if opt.OnSwitch != nil {
		opt.OnSwitch(sw)
	}
	start := time.Now()
	s, err := o.Context().NewSequence()
	if err != nil {
		return err
	}
	defer s.Release()
	v := r.Cfg.VCycle
	if sw.Up {
		split := ops.Split{Sigma: float32(v.Split), Seed: uint32(r.Cfg.Train.Seed) + uint32(sw.Level)}
		err = m.RecordInterpolate(o, s, sw.Coarse, sw.Fine, v.Alpha, split)
		if err == nil && v.Moments == "map" {
			err = m.RecordMomentsUp(o, s, sw.Coarse, sw.Fine)
		}
	} else {
		err = m.RecordCoalesce(o, s, sw.Fine, sw.Coarse)
		if err == nil && v.Moments == "map" {
			err = m.RecordMomentsDown(o, s, sw.Fine, sw.Coarse)
		}
	}
	if err == nil {
		err = s.Run()
	}
	if err != nil {
		return fmt.Errorf("vcycle: level %d maps: %w", sw.Level, err)
	}
	r.AddMapsWork(s.FLOPs(), time.Since(start).Seconds())
	sw.Done = true
	if opt.OnSwitch != nil {
		opt.OnSwitch(sw)
	}
	return nil
}

// savedDir is the folder of OUT where levels' saved parameters wait.
const savedDir = "vcycle-saved"

// savedPath is where level's saved parameters wait.
func savedPath(out string, level int) string {
	return filepath.Join(out, savedDir, fmt.Sprintf("level-%d.safetensors", level))
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

// loadLevel rebuilds level level's model from the parameters saveLevel wrote, with the run's
// seed (its dropout masks are then those of the model kept on the GPU).
func loadLevel(o *ops.Ops, out string, level int, cfg config.Model, vocab, b, t int, seed uint64) (*model.Net, error) {
	path := savedPath(out, level)
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("level %d's saved parameters: %w", level, err)
	}
	net, err := model.NewNet(o, cfg, vocab, b, t, seed)
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
	return net, nil
}
