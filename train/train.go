package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/internal/atomicfile"
	"github.com/vktrain/vktrain/model"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/vk/ops"
)

// Metrics is one line of OUT/metrics.jsonl.
type Metrics struct {
	Step       int      `json:"step"`
	Level      int      `json:"level"`
	Tokens     int64    `json:"tokens"`             // training tokens seen
	FLOPs      float64  `json:"flops"`              // training FLOPs of the kernels dispatched
	WallS      float64  `json:"wall_s"`             // training wall time (evaluation excluded)
	Loss       float64  `json:"loss"`               // this step's mean training loss
	ValLoss    *float64 `json:"val_loss"`           // null between evaluations
	ValAcc     *float64 `json:"val_acc,omitempty"`  // image classification: validation accuracy, with val_loss
	TestAcc    *float64 `json:"test_acc,omitempty"` // image classification: test accuracy, on the run's last line
	LR         float64  `json:"lr"`
	GradNorm   float64  `json:"grad_norm"`
	TokensPerS float64  `json:"tokens_per_s"`           // over the steps since the last line
	ImagesPerS float64  `json:"images_per_s,omitempty"` // image classification: over the steps since the last line
	// Settings a resume changed (key -> new TOML value), in force from this line's step; set
	// on the first line after such a resume only.
	Changed map[string]string `json:"changed,omitempty"`
}

// ErrInterrupted is returned by Train when its context is cancelled (SIGINT, SIGTERM) after the
// checkpoint of the steps done has been written.
var ErrInterrupted = errors.New("interrupted")

// Run is a training run: a model on the GPU, its data, and its output folder.
type Run struct {
	Cfg     *config.Config
	CfgText []byte
	Net     *model.Net
	Out     string
	State   State

	// The learning rate and AdamW step of every step; the phase in progress starts at run step
	// phaseStart (a plain run is one phase).
	schedule   *Schedule
	phaseStart int

	// Restarted says that out held a run that stopped before its first checkpoint, which this
	// run replaces.
	Restarted bool

	batcher  batchSource
	next     func() data.Batch // the next training micro-batch (BERT's masked)
	evalSet  []data.Batch
	testSet  []data.Batch      // image classification: the whole test set, for the final test accuracy
	corpus   map[string]string // a language model's corpus: its documents' digests (data.Tokenized.Files)
	lastCkpt string
	changed  map[string]string // settings a resume changed, for the next metrics line

	dataDigest [32]byte // of the training and validation tokens (or images)
	job        *Job     // nil: not one rank of a data-parallel job of more than one (JoinWorld)
}

// batchSource is where a run's training batches come from (token windows, or images), with the
// position a checkpoint saves.
type batchSource interface {
	State() data.BatcherState
	Restore(data.BatcherState) error
}

// NewRun prepares a fresh run in out, which must not hold a run already (nothing is overwritten;
// a run that stopped before its first checkpoint left nothing to continue and is replaced, with
// Restarted set). The folder is created only once the data and the model are ready, so a run
// that cannot start leaves nothing behind. The caller keeps other processes out of the folder
// (internal/runlock).
func NewRun(o *ops.Ops, cfg *config.Config, cfgText []byte, out string) (*Run, error) {
	metricsPath := filepath.Join(out, "metrics.jsonl")
	if _, err := ResolveCheckpoint(out); err == nil {
		return nil, fmt.Errorf("%s already holds a training run; continue it with -resume %s or choose another -out", out, out)
	}
	_, mErr := os.Stat(metricsPath)
	r, err := newRun(o, cfg, cfgText, out, nil)
	if err != nil {
		return nil, err
	}
	if mErr == nil {
		// A run that stopped before its first checkpoint: nothing of it can be continued. (Every
		// rank of a data-parallel job gets here; the first removes the file.)
		if err := os.Remove(metricsPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.Free()
			return nil, err
		}
		r.Restarted = true
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		r.Free()
		return nil, err
	}
	return r, nil
}

// RunDir is the run folder of dir, a run folder or one of its checkpoints (what -resume takes).
func RunDir(dir string) string {
	if ck, err := ResolveCheckpoint(dir); err == nil {
		return filepath.Dir(filepath.Dir(ck))
	}
	return dir
}

// ResumeRun continues the run whose output folder (or checkpoint) is dir, exactly where its
// last checkpoint left it. settings (KEY=VALUE, as -set takes them) may change the keys of
// config.ResumableKeys; the first metrics line after the resume records them. The corpus must
// be the one the run trained on (by its digest); each document that changed is named.
func ResumeRun(o *ops.Ops, dir string, settings []string) (*Run, error) {
	ckDir, err := ResolveCheckpoint(dir)
	if err != nil {
		if _, mErr := os.Stat(filepath.Join(dir, "metrics.jsonl")); mErr == nil {
			return nil, fmt.Errorf("%s holds a run that stopped before its first checkpoint: there is nothing to resume; "+
				"start it again with the command that started it, without -resume (the folder is reused)", dir)
		}
		return nil, err
	}
	return resumeRun(o, ckDir, RunDir(ckDir), settings)
}

func resumeRun(o *ops.Ops, ckDir, out string, settings []string) (*Run, error) {
	ck, err := LoadCheckpoint(ckDir)
	if err != nil {
		return nil, err
	}
	cfg := ck.Config
	text, err := os.ReadFile(filepath.Join(ck.Dir, "vktrain.toml"))
	if err != nil {
		return nil, err
	}
	var changed map[string]string
	if len(settings) > 0 {
		if cfg, text, changed, err = resumeSettings(ck, text, settings); err != nil {
			return nil, err
		}
	}
	if cfg.VCycle == nil && cfg.Train.Steps < ck.State.Step {
		return nil, fmt.Errorf("checkpoint %s is at step %d, past the schedule's %d steps", ck.Dir, ck.State.Step, cfg.Train.Steps)
	}
	r, err := newRun(o, cfg, text, out, ck)
	if err != nil {
		return nil, err
	}
	if len(changed) > 0 {
		r.changed = changed
	}
	if err := r.truncateMetrics(); err != nil {
		r.Free()
		return nil, err
	}
	return r, nil
}

// resumeSettings applies settings to a checkpoint's configuration text and returns the new
// configuration, its text and the keys that changed; a key outside config.ResumableKeys is
// refused.
func resumeSettings(ck *Checkpoint, text []byte, settings []string) (*config.Config, []byte, map[string]string, error) {
	newText, err := config.Override(text, settings)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-set: %w", err)
	}
	cfg, err := config.Parse("the checkpoint's configuration with -set", newText)
	if err != nil {
		return nil, nil, nil, err
	}
	changed, err := config.Changed(ck.Config, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, ok := changed["train.steps"]; ok && cfg.VCycle != nil {
		return nil, nil, nil, fmt.Errorf("%s is a V-cycle run: its length is its phases' ([vcycle]), -steps cannot change it", ck.Dir)
	}
	var refused []string
	for k := range changed {
		if !slices.Contains(config.ResumableKeys, k) {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return nil, nil, nil, fmt.Errorf("resuming %s: %s cannot change on resume: it would change the model, the data or the batches; keys that can: %s",
			ck.Dir, strings.Join(refused, ", "), strings.Join(config.ResumableKeys, ", "))
	}
	if newText, err = cfg.TOML(); err != nil {
		return nil, nil, nil, err
	}
	return cfg, newText, changed, nil
}

func newRun(o *ops.Ops, cfg *config.Config, cfgText []byte, out string, ck *Checkpoint) (*Run, error) {
	vocab, err := model.VocabSize(cfg.Model)
	if err != nil {
		return nil, err
	}
	schedule, err := NewSchedule(cfg, vocab, cfg.Train.SeqLen)
	if err != nil {
		return nil, err
	}
	r := &Run{Cfg: cfg, CfgText: cfgText, Out: out, State: State{Level: 1}, schedule: schedule}
	if cfg.Model.Arch == "vit" {
		err = r.loadImages()
	} else {
		err = r.loadTokens()
	}
	if err != nil {
		if ck != nil {
			return nil, fmt.Errorf("%w (if the corpus moved, resume with -set train.data='\"NEW PATH\"')", err)
		}
		return nil, err
	}
	if ck != nil && ck.State.Corpus != nil {
		if diff := data.Changes(ck.State.Corpus, r.corpus); diff != nil {
			return nil, fmt.Errorf("the corpus %s is not the one checkpoint %s trained on: %s", cfg.Train.Data, ck.Dir, strings.Join(diff, ", "))
		}
	}
	t := cfg.Train.SeqLen
	netCfg := cfg.Model
	if ck != nil {
		if netCfg, err = ck.Model(); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", ck.Dir, err)
		}
	}
	net, err := model.NewNet(o, netCfg, vocab, cfg.Train.Batch, t, cfg.Train.Seed)
	if err != nil {
		return nil, err
	}
	r.Net = net
	if err := net.SetGradClip(cfg.Train.GradClip); err != nil {
		net.Free()
		return nil, err
	}
	if ck != nil {
		if err := r.restore(ck); err != nil {
			net.Free()
			return nil, err
		}
	}
	return r, nil
}

// loadTokens prepares a language model's data: batches of token windows from the corpus's
// training split (masked for BERT), and fixed validation batches.
func (r *Run) loadTokens() error {
	cfg := r.Cfg
	tok, err := data.NewTokenizer(cfg.Model.Tokenizer)
	if err != nil {
		return err
	}
	tokens, err := data.Tokens(cfg.Train.Data, tok, cfg.Train.AllowBinary)
	if err != nil {
		return err
	}
	train, val := tokens.Train, tokens.Val
	r.corpus = tokens.Files
	t := cfg.Train.SeqLen
	batcher, err := data.NewBatcher(train, cfg.Train.Batch, t, int64(cfg.Train.Seed))
	if err != nil {
		return fmt.Errorf("training data %s: %w", cfg.Train.Data, err)
	}
	r.evalSet, err = data.EvalBatches(val, cfg.Train.Batch, t, cfg.Train.EvalBatches)
	if err != nil {
		return fmt.Errorf("validation data %s: %w", cfg.Train.Data, err)
	}
	r.batcher, r.next, r.dataDigest = batcher, batcher.Next, tokensDigest(train, val)
	if cfg.Model.Arch == "bert" {
		masker, err := data.NewMasker(tok.VocabSize(), cfg.Train.Seed)
		if err != nil {
			return err
		}
		r.evalSet = masker.MaskEval(r.evalSet)
		r.next = func() data.Batch { return masker.Next(batcher) }
	}
	return nil
}

// loadImages prepares an image classifier's data: augmented batches of the training images,
// fixed validation batches, and the whole test set.
func (r *Run) loadImages() error {
	tc := r.Cfg.Train
	splits, err := data.LoadFashionMNIST(tc.Data)
	if err != nil {
		return err
	}
	if m := r.Cfg.Model; splits.Train.H != m.Image || splits.Train.W != m.Image || len(splits.Train.Classes) != m.Classes {
		return fmt.Errorf("%s holds %d x %d images of %d classes, model.image = %d and model.classes = %d", tc.Data,
			splits.Train.H, splits.Train.W, len(splits.Train.Classes), m.Image, m.Classes)
	}
	batcher, err := data.NewImageBatcher(splits.Train, tc.Batch, data.Augmentations[tc.Augment], int64(tc.Seed))
	if err != nil {
		return fmt.Errorf("training data %s: %w", tc.Data, err)
	}
	r.batcher, r.next, r.dataDigest = batcher, batcher.Next, imagesDigest(splits.Train, splits.Val)
	r.evalSet = data.ImageEvalBatches(splits.Val, tc.Batch, tc.EvalBatches)
	r.testSet = data.ImageEvalBatches(splits.Test, tc.Batch, 0)
	return nil
}

func (r *Run) restore(ck *Checkpoint) error {
	if err := r.Net.SetParams(ck.Params); err != nil {
		return err
	}
	if err := r.Net.SetMoments(ck.M, ck.V); err != nil {
		return err
	}
	r.State = ck.State
	r.lastCkpt = ck.Dir
	phases := r.Cfg.Phases()
	if r.State.Phase >= len(phases) {
		return fmt.Errorf("checkpoint %s: phase %d of %d", ck.Dir, r.State.Phase, len(phases))
	}
	r.phaseStart = r.schedule.PhaseStart(r.State.Phase)
	return r.batcher.Restore(ck.State.Batcher)
}

// truncateMetrics drops metrics lines logged after the checkpoint a resumed run starts from, so
// the file reads as one uninterrupted run.
func (r *Run) truncateMetrics() error {
	path := filepath.Join(r.Out, "metrics.jsonl")
	old, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m Metrics
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step <= r.State.Step {
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
	}
	return atomicfile.Write(path, keep.Bytes())
}

// Free releases the GPU model.
func (r *Run) Free() { r.Net.Free() }

// BeginPhase switches the run to phase phase of its configuration's Phases: to train net, the
// model of the phase's level. With [vcycle] moments = "reset" (the paper) the phase starts a
// fresh optimizer (AdamW moments zero, its step count from 1); with "map" net's moments are
// those the V-cycle's maps wrote and the step count goes on. Steps, tokens, FLOPs and wall time
// go on counting. The caller keeps ownership of the previous Net.
func (r *Run) BeginPhase(phase int, net *model.Net) error {
	ph := r.Cfg.Phases()[phase]
	if v := r.Cfg.VCycle; v == nil || v.Moments == "reset" {
		if err := net.ResetMoments(); err != nil {
			return err
		}
	}
	if err := net.SetGradClip(r.Cfg.Train.GradClip); err != nil {
		return err
	}
	r.Net, r.phaseStart = net, r.State.Step
	r.State.Phase, r.State.Level = phase, ph.Level
	return nil
}

// AddMapsWork counts the work of a switch between V-cycle levels (the maps, and saving or
// loading a level) in the run's FLOPs and wall time.
func (r *Run) AddMapsWork(flops, wallS float64) {
	r.State.FLOPs += flops
	r.State.WallS += wallS
	r.State.Maps.FLOPs += flops
	r.State.Maps.WallS += wallS
}

// Level is the V-cycle level the run trains (1, the full model, for a plain run).
func (r *Run) Level() int { return max(1, r.State.Level) }

// addLevelWork counts one training step's work for the level in training.
func (r *Run) addLevelWork(flops, wallS float64) {
	for len(r.State.Levels) < r.Level() {
		r.State.Levels = append(r.State.Levels, LevelWork{Level: len(r.State.Levels) + 1})
	}
	l := &r.State.Levels[r.Level()-1]
	l.Steps++
	l.FLOPs += flops
	l.WallS += wallS
}

// errNotFinite marks a model that holds a NaN or an infinity: it is never checkpointed.
var errNotFinite = errors.New("not finite")

// Checkpoint writes a checkpoint of the steps done so far, unless a parameter or moment is NaN
// or infinite or the model's loss on the first validation batch is. In a data-parallel job
// only rank 0 writes it (the others return "").
func (r *Run) Checkpoint() (string, error) {
	params, err := r.Net.Params()
	if err != nil {
		return "", err
	}
	m, v, err := r.Net.Moments()
	if err != nil {
		return "", err
	}
	for _, set := range []struct {
		what string
		vals map[string][]float32
	}{{"parameter", params}, {"first moment of", m}, {"second moment of", v}} {
		for _, p := range r.Net.Specs {
			for i, x := range set.vals[p.Name] {
				if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return "", fmt.Errorf("%w: %s %s[%d] is %v", errNotFinite, set.what, p.Name, i, x)
				}
			}
		}
	}
	// Finite weights can still be broken (a diverging step leaves them huge): the model
	// checkpointed must also give a finite loss on a validation batch.
	if loss, err := r.Net.MeanLoss(r.evalSet[:1]); err != nil {
		return "", err
	} else if !finite(loss) {
		return "", fmt.Errorf("%w: the model's validation loss is %v", errNotFinite, loss)
	}
	r.State.Batcher = r.batcher.State()
	r.State.Corpus = r.corpus
	if !r.lead() {
		return "", nil
	}
	// A V-cycle level's checkpoint describes that level's model (its config.json, its shapes).
	cfg := *r.Cfg
	cfg.Model = r.Net.Cfg
	dir, err := SaveCheckpoint(r.Out, r.CfgText, &cfg, params, m, v, r.Net.Specs, r.State)
	if err != nil {
		return "", fmt.Errorf("writing the checkpoint: %w", err)
	}
	r.lastCkpt = dir
	return dir, nil
}

// ValidationLoss is the mean loss over the fixed validation batches.
func (r *Run) ValidationLoss() (float64, error) {
	loss, _, err := r.validate()
	return loss, err
}

// validate is the mean loss over the fixed validation batches and, for an image classifier,
// the accuracy (nil otherwise).
func (r *Run) validate() (float64, *float64, error) {
	if r.testSet == nil {
		loss, err := r.Net.MeanLoss(r.evalSet)
		return loss, nil, err
	}
	c, err := r.Net.Classify(r.evalSet)
	return c.Loss, &c.Accuracy, err
}

// TestAccuracy classifies the whole test set (image classification only).
func (r *Run) TestAccuracy() (model.Classified, error) {
	if r.testSet == nil {
		return model.Classified{}, fmt.Errorf("model.arch %q has no test accuracy", r.Cfg.Model.Arch)
	}
	return r.Net.Classify(r.testSet)
}

// Train runs the remaining steps of the phase (the whole schedule of a plain run), logging to
// OUT/metrics.jsonl (and to onLog, if not nil), evaluating every train.eval_every steps and at
// the phase's end, and checkpointing every train.checkpoint_every steps and at the end (rank 0
// of a data-parallel job logs and checkpoints, and calls onLog). A
// cancelled ctx writes a checkpoint and returns ErrInterrupted; a non-finite loss, gradient
// norm or validation loss stops the run and names the step and the last good checkpoint, which
// is kept (a model that is not finite is never checkpointed).
func (r *Run) Train(ctx context.Context, onLog func(Metrics)) error {
	tc := r.Cfg.Train
	end := r.schedule.PhaseStart(r.State.Phase + 1)
	var enc *json.Encoder
	if r.lead() {
		f, err := os.OpenFile(filepath.Join(r.Out, "metrics.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		enc = json.NewEncoder(f)
	}
	lastLogTokens, lastLogWall := r.State.Tokens, r.State.WallS
	r.Net.SetPhaseStart(r.phaseStart)
	for r.State.Step < end {
		if stop, err := r.stopAgreed(ctx.Err() != nil); err != nil {
			return err
		} else if stop {
			if _, err := r.Checkpoint(); err != nil {
				return err
			}
			return ErrInterrupted
		}
		lr := r.schedule.LR(r.State.Step)
		batches := r.nextBatches()
		start := time.Now()
		res, err := r.step(batches, ops.StepParams{LR: lr, Beta1: tc.Beta1, Beta2: tc.Beta2, Eps: tc.Eps,
			WeightDecay: tc.WeightDecay, Step: r.schedule.AdamStep(r.State.Step)})
		if err == nil && !finite(res.Loss) {
			err = fmt.Errorf("loss is %v", res.Loss)
		}
		if err == nil && !finite(res.GradNorm) {
			err = fmt.Errorf("gradient norm is %v", res.GradNorm)
		}
		if err != nil {
			return r.stopped(r.State.Step+1, err)
		}
		r.State.Step++
		r.State.Tokens += int64(len(batches) * r.Net.B * r.Net.T) // an image counts its rows
		wall := time.Since(start).Seconds()
		r.State.FLOPs += res.FLOPs
		r.State.WallS += wall
		if r.Cfg.VCycle != nil {
			r.addLevelWork(res.FLOPs, wall)
		}

		done := r.State.Step == end
		var val, valAcc, testAcc *float64
		if done || (tc.EvalEvery > 0 && r.State.Step%tc.EvalEvery == 0) {
			v, acc, err := r.validate()
			if err != nil {
				return err
			}
			if !finite(v) {
				return r.stopped(r.State.Step, fmt.Errorf("validation loss is %v", v))
			}
			val, valAcc = &v, acc
		}
		if done && r.testSet != nil && r.State.Phase == len(r.Cfg.Phases())-1 {
			c, err := r.TestAccuracy()
			if err != nil {
				return err
			}
			testAcc = &c.Accuracy
		}
		if val != nil || done || r.State.Step%tc.LogEvery == 0 || r.State.Step == 1 || r.changed != nil {
			m := Metrics{Step: r.State.Step, Level: r.Level(), Tokens: r.State.Tokens, FLOPs: r.State.FLOPs,
				WallS: r.State.WallS, Loss: res.Loss, ValLoss: val, ValAcc: valAcc, TestAcc: testAcc, LR: lr, GradNorm: res.GradNorm,
				Changed: r.changed}
			r.changed = nil
			if dt := r.State.WallS - lastLogWall; dt > 0 {
				m.TokensPerS = float64(r.State.Tokens-lastLogTokens) / dt
				if r.testSet != nil {
					m.ImagesPerS = m.TokensPerS / float64(r.Net.T)
				}
			}
			lastLogTokens, lastLogWall = r.State.Tokens, r.State.WallS
			if enc != nil {
				if err := enc.Encode(m); err != nil {
					return err
				}
			}
			if onLog != nil && r.lead() {
				onLog(m)
			}
		}
		if done || (tc.CheckpointEvery > 0 && r.State.Step%tc.CheckpointEvery == 0) {
			if _, err := r.Checkpoint(); errors.Is(err, errNotFinite) {
				return r.stopped(r.State.Step, err)
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// stopped is the error of a run that cannot go on after step: it names the last good
// checkpoint, which is kept.
func (r *Run) stopped(step int, err error) error {
	last := r.lastCkpt
	if last == "" {
		last = "none written yet"
	}
	return fmt.Errorf("training stopped at step %d: %w; the last good checkpoint is %s", step, err, last)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// ReadMetrics reads a run's metrics.jsonl.
func ReadMetrics(path string) ([]Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Metrics
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}
