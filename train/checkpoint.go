package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/internal/atomicfile"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk/ops"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/safetensors"
)

// A checkpoint is a folder OUT/checkpoints/step-NNNNNNN holding
//   model.safetensors      the parameters, with Hugging Face's names
//   optimizer.safetensors  AdamW's moments ("m.NAME", "v.NAME")
//   config.json            a Hugging Face config for the architecture
//   vktrain.toml           the whole vktrain configuration
//   state.json             step, data position, counters, the corpus's digests, and the
//                          SHA-256 of every file above
//   state.sha256           the SHA-256 of state.json, so that every file is covered
// written into a temporary folder that is renamed into place once complete; OUT/checkpoints/LATEST
// (replaced atomically) names the newest. A crash or a signal while writing leaves the previous
// checkpoint intact.

// State is where a training run is, saved with each checkpoint.
type State struct {
	Step    int                `json:"step"` // optimizer steps done
	Tokens  int64              `json:"tokens"`
	FLOPs   float64            `json:"flops"`
	WallS   float64            `json:"wall_s"`
	Batcher data.BatcherState  `json:"batcher"`
	Arch    string             `json:"arch"`
	Files   map[string]string  `json:"files"` // file name -> hex SHA-256
	Extra   map[string]float64 `json:"extra,omitempty"`
	// The corpus trained on: document name -> SHA-256 (data.Tokenized.Files); a resume
	// refuses another corpus, naming the documents that differ.
	Corpus map[string]string `json:"corpus,omitempty"`
	Ranks  int               `json:"ranks,omitempty"` // of the data-parallel job (0: one process)

	// A V-cycle run's place: the phase in progress (an index into VCycleConfig.Phases), the
	// level its model is (0 or 1: the full model), and the work of every level so far.
	Phase  int         `json:"phase,omitempty"`
	Level  int         `json:"level,omitempty"`
	Levels []LevelWork `json:"levels,omitempty"`
	Maps   LevelWork   `json:"maps,omitzero"` // the switches between levels (Level 0)
}

// LevelWork is the work a V-cycle level did: its training steps, FLOPs and wall time.
type LevelWork struct {
	Level int     `json:"level"`
	Steps int     `json:"steps"`
	FLOPs float64 `json:"flops"`
	WallS float64 `json:"wall_s"`
}

// Checkpoint is a loaded checkpoint.
type Checkpoint struct {
	Dir    string
	Config *config.Config
	Params map[string][]float32
	M, V   map[string][]float32
	State  State
}

const latestFile = "LATEST"

// CheckpointsDir is where a run's checkpoints live.
func CheckpointsDir(out string) string { return filepath.Join(out, "checkpoints") }

// SaveCheckpoint writes a checkpoint of the run in out and points LATEST at it.
func SaveCheckpoint(out string, cfgText []byte, cfg *config.Config, params, m, v map[string][]float32, specs []model.ParamSpec, st State) (string, error) {
	root := CheckpointsDir(out)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	name := fmt.Sprintf("step-%07d", st.Step)
	tmp, err := os.MkdirTemp(root, "."+name+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up after a failure
	tensors := func(prefix string, vals map[string][]float32) []safetensors.Tensor {
		ts := make([]safetensors.Tensor, len(specs))
		for i, p := range specs {
			ts[i] = safetensors.Tensor{Name: prefix + p.Name, Shape: p.FileShape(), Data: vals[p.Name]}
		}
		return ts
	}
	meta := map[string]string{"format": "pt", "vktrain.arch": cfg.Model.Arch}
	if err := safetensors.Write(filepath.Join(tmp, "model.safetensors"), tensors("", params), meta); err != nil {
		return "", err
	}
	opt := append(tensors("m.", m), tensors("v.", v)...)
	if err := safetensors.Write(filepath.Join(tmp, "optimizer.safetensors"), opt, meta); err != nil {
		return "", err
	}
	hf, err := json.MarshalIndent(model.HuggingFaceConfig(cfg.Model, specs[0].Shape[0]), "", "  ")
	if err != nil {
		return "", err
	}
	for file, body := range map[string][]byte{"config.json": hf, "vktrain.toml": cfgText} {
		if err := atomicfile.Write(filepath.Join(tmp, file), body); err != nil {
			return "", err
		}
	}
	st.Arch = cfg.Model.Arch
	st.Files = map[string]string{}
	for _, f := range checkpointFiles {
		sum, err := fileSHA256(filepath.Join(tmp, f))
		if err != nil {
			return "", err
		}
		st.Files[f] = sum
	}
	sj, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(tmp, "state.json"), sj); err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(tmp, stateSumFile), []byte(sha256Hex(sj)+"  state.json\n")); err != nil {
		return "", err
	}
	final := filepath.Join(root, name)
	if err := os.RemoveAll(final); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	if err := atomicfile.Write(filepath.Join(root, latestFile), []byte(name+"\n")); err != nil {
		return "", err
	}
	pruneCheckpoints(root, name)
	return final, nil
}

// pruneCheckpoints removes every checkpoint folder but keep, and the temporary folders that a
// run killed while writing a checkpoint left behind.
func pruneCheckpoints(root, keep string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		stale := strings.HasPrefix(e.Name(), "step-") && e.Name() != keep ||
			strings.HasPrefix(e.Name(), ".step-") && strings.Contains(e.Name(), ".tmp-")
		if e.IsDir() && stale {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return sha256Hex(b), nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// stateSumFile holds state.json's SHA-256 in sha256sum's format.
const stateSumFile = "state.sha256"

// checkpointFiles are the files state.json's checksums must cover.
var checkpointFiles = []string{"model.safetensors", "optimizer.safetensors", "config.json", "vktrain.toml"}

// ResolveCheckpoint finds the checkpoint folder of dir: dir itself when it holds a state.json,
// else the one LATEST names in dir or dir/checkpoints.
func ResolveCheckpoint(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return dir, nil
	}
	for _, root := range []string{CheckpointsDir(dir), dir} {
		b, err := os.ReadFile(filepath.Join(root, latestFile))
		if err == nil {
			return filepath.Join(root, strings.TrimSpace(string(b))), nil
		}
	}
	return "", fmt.Errorf("%s holds no checkpoint (no state.json, no checkpoints/LATEST)", dir)
}

// LoadCheckpoint reads and verifies a checkpoint: every file's checksum, the configuration, and
// that the tensors match the configuration's architecture.
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	dir, err := ResolveCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("checkpoint %s: %s", dir, fmt.Sprintf(format, a...))
	}
	sj, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, bad("%v", err)
	}
	sum, err := os.ReadFile(filepath.Join(dir, stateSumFile))
	if err != nil {
		return nil, bad("%v (every checkpoint has one: state.json cannot be verified)", err)
	}
	if want, _, _ := strings.Cut(string(sum), " "); want != sha256Hex(sj) {
		return nil, bad("state.json is corrupted or was edited (its checksum in %s does not match)", stateSumFile)
	}
	ck := &Checkpoint{Dir: dir}
	if err := json.Unmarshal(sj, &ck.State); err != nil {
		return nil, bad("state.json is corrupted: %v", err)
	}
	for _, f := range checkpointFiles {
		if _, ok := ck.State.Files[f]; !ok {
			return nil, bad("state.json has no checksum of %s", f)
		}
	}
	names := make([]string, 0, len(ck.State.Files))
	for f := range ck.State.Files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return nil, bad("%v", err)
		}
		if sum != ck.State.Files[f] {
			return nil, bad("%s is corrupted or truncated (checksum mismatch)", f)
		}
	}
	cfgText, err := os.ReadFile(filepath.Join(dir, "vktrain.toml"))
	if err != nil {
		return nil, bad("%v", err)
	}
	if ck.Config, err = config.Parse(filepath.Join(dir, "vktrain.toml"), cfgText); err != nil {
		return nil, err
	}
	weights, err := safetensors.Read(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	opt, err := safetensors.Read(filepath.Join(dir, "optimizer.safetensors"))
	if err != nil {
		return nil, err
	}
	arch := ck.Config.Model.Arch
	for _, c := range [][2]string{{"model.safetensors", weights.Metadata["vktrain.arch"]}, {"state.json", ck.State.Arch}} {
		if c[1] != "" && c[1] != arch {
			return nil, bad("%s is of a %s model, its vktrain.toml configures %s", c[0], c[1], arch)
		}
	}
	vocab, err := model.VocabSize(ck.Config.Model)
	if err != nil {
		return nil, err
	}
	m, err := ck.Model()
	if err != nil {
		return nil, bad("%v", err)
	}
	ck.Params, ck.M, ck.V = map[string][]float32{}, map[string][]float32{}, map[string][]float32{}
	for _, p := range model.Params(m, vocab) {
		for _, src := range []struct {
			f      *safetensors.File
			name   string
			target map[string][]float32
		}{{weights, p.Name, ck.Params}, {opt, "m." + p.Name, ck.M}, {opt, "v." + p.Name, ck.V}} {
			t, ok := src.f.Tensors[src.name]
			if !ok {
				return nil, bad("tensor %s is missing: the checkpoint is not a %s model of this configuration", src.name, ck.Config.Model.Arch)
			}
			if fmt.Sprint(t.Shape) != fmt.Sprint(p.FileShape()) {
				return nil, bad("tensor %s has shape %v, the configuration needs %v", src.name, t.Shape, p.FileShape())
			}
			src.target[p.Name] = t.Data
		}
	}
	return ck, nil
}

// Model is the architecture of the checkpoint's parameters: the configuration's model, or the
// V-cycle level's that the run was training.
func (ck *Checkpoint) Model() (config.Model, error) {
	if ck.State.Level <= 1 {
		return ck.Config.Model, nil
	}
	if ck.Config.VCycle == nil {
		return config.Model{}, fmt.Errorf("state.json names V-cycle level %d, vktrain.toml has no [vcycle]", ck.State.Level)
	}
	models, err := ck.Config.LevelModels()
	if err != nil || ck.State.Level > len(models) {
		return config.Model{}, fmt.Errorf("state.json names V-cycle level %d, vktrain.toml has %d", ck.State.Level, len(models))
	}
	return models[ck.State.Level-1], nil
}

// LoadNet builds the checkpoint's model on the GPU for b x t micro-batches, with its parameters.
func LoadNet(o *ops.Ops, ck *Checkpoint, b, t int) (*model.Net, error) {
	m, err := ck.Model()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", ck.Dir, err)
	}
	vocab, err := model.VocabSize(m)
	if err != nil {
		return nil, err
	}
	n, err := model.NewNet(o, m, vocab, b, t, ck.Config.Train.Seed)
	if err != nil {
		return nil, err
	}
	if err := n.SetParams(ck.Params); err != nil {
		n.Free()
		return nil, err
	}
	return n, nil
}
