// Package config is a training configuration: the model, the run and the V-cycle, read from
// TOML (a file or an embedded preset) with -set overrides, filled with defaults and validated
// with every error naming its key. It depends on no other vktrain package.
package config

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/vktrain/vktrain/internal/tomlkeys"
)

// Config is a whole training configuration: the model, the training run, and optionally the V-cycle.
type Config struct {
	Model  Model   `toml:"model"`
	Train  Train   `toml:"train"`
	VCycle *VCycle `toml:"vcycle"` // nil: plain training
}

// Model is the architecture.
type Model struct {
	Arch      string  `toml:"arch"`            // "gpt" (pre-LN, causal), "bert" (post-LN, masked LM) or "vit" (images)
	Tokenizer string  `toml:"tokenizer"`       // "byte" or "gpt2" ("" for vit)
	Vocab     int     `toml:"vocab"`           // token-table rows; 0 means the tokenizer's (plus BERT's specials)
	Context   int     `toml:"context"`         // positions; vit: 0 means its patches plus the class token
	Layers    int     `toml:"layers"`          // transformer blocks
	Width     int     `toml:"width"`           // residual width d
	Heads     int     `toml:"heads"`           // attention heads; width must divide by it
	FFN       int     `toml:"ffn"`             // MLP hidden width; 0 means 4*width
	Dropout   float64 `toml:"dropout"`         // residual and embedding dropout probability
	Smoothing float64 `toml:"label_smoothing"` // training's target: smoothing/classes on each class, 1-smoothing more on the true one
	InitStd   float64 `toml:"init_std"`        // standard deviation of the weight initialisation
	TypeVocab int     `toml:"type_vocab"`      // BERT token types; 0 means 2
	Image     int     `toml:"image"`           // vit: the side of the square grey input images (28 for Fashion-MNIST)
	Patch     int     `toml:"patch"`           // vit: the side of the square patches; image must divide by it
	Classes   int     `toml:"classes"`         // vit: output classes; 0 means 10
}

// Patches is the number of patches a vit image is cut into.
func (m Model) Patches() int {
	if m.Patch < 1 {
		return 0
	}
	return (m.Image / m.Patch) * (m.Image / m.Patch)
}

// Train is the optimisation and the run around it.
type Train struct {
	Data        string `toml:"data"`              // corpus: a text file or folder; unset means data/austen (vit: data/fashion-mnist)
	AllowBinary bool   `toml:"allow_binary"`      // train on corpus files that do not look like text
	Augment     string `toml:"augment,omitempty"` // vit: "crop-flip" (default), "crop-flip-rotate" or "none"
	Batch       int    `toml:"batch"`             // sequences per micro-batch
	SeqLen      int    `toml:"seq_len"`           // tokens per sequence; unset means model.context
	GradAccum   int    `toml:"grad_accum"`        // micro-batches per optimizer step (per rank under MPI); unset means 1
	// MicroBatches is grad_accum's former name, still read (configurations and checkpoints
	// written before it was renamed) and folded into GradAccum; it is never written.
	MicroBatches    int     `toml:"micro_batches,omitzero"`
	Steps           int     `toml:"steps"`            // optimizer steps (the length of the LR schedule)
	LR              float64 `toml:"lr"`               // peak learning rate
	MinLR           float64 `toml:"min_lr"`           // learning rate at the end of the decay
	Warmup          int     `toml:"warmup"`           // linear warmup steps
	Decay           string  `toml:"decay"`            // "cosine", "linear" or "constant"
	WeightDecay     float64 `toml:"weight_decay"`     // AdamW decoupled weight decay (matrices only)
	Beta1           float64 `toml:"beta1"`            // AdamW
	Beta2           float64 `toml:"beta2"`            // AdamW
	Eps             float64 `toml:"eps"`              // AdamW
	GradClip        float64 `toml:"grad_clip"`        // global gradient-norm clip; 0 turns it off
	EvalEvery       int     `toml:"eval_every"`       // validation every N steps (and at the end)
	EvalBatches     int     `toml:"eval_batches"`     // validation batches (the same ones every time)
	CheckpointEvery int     `toml:"checkpoint_every"` // periodic checkpoint every N steps; 0 only at the end
	LogEvery        int     `toml:"log_every"`        // metrics line every N steps
	Seed            uint64  `toml:"seed"`             // initialisation, batches and dropout
}

// Parse reads a configuration; name prefixes every error (a path, or "preset:NAME").
// Unknown keys are refused with their line.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	md, err := tomlkeys.Decode(name, data, &c)
	if err != nil {
		return nil, err
	}
	c.fillDefaults(md.IsDefined)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// Load reads a configuration file.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(file, data)
}

// fillDefaults gives each key the file leaves out its default. A key the file sets keeps its
// value, zero included (beta1 = 0 is a valid choice; eps = 0 is refused by Validate, never
// replaced): defined says which keys the file sets.
func (c *Config) fillDefaults(defined func(key ...string) bool) {
	m, t := &c.Model, &c.Train
	orDefault(defined, &m.FFN, "model.ffn", 4*m.Width)
	orDefault(defined, &m.TypeVocab, "model.type_vocab", 2)
	orDefault(defined, &m.InitStd, "model.init_std", 0.02)
	switch accum, micro := defined("train", "grad_accum"), defined("train", "micro_batches"); {
	case !accum && !micro:
		t.GradAccum = 1
	case !accum || t.GradAccum == t.MicroBatches: // micro_batches is grad_accum's former name
		t.GradAccum, t.MicroBatches = t.MicroBatches, 0
	}
	orDefault(defined, &t.Decay, "train.decay", "cosine")
	orDefault(defined, &t.Beta1, "train.beta1", 0.9)
	orDefault(defined, &t.Beta2, "train.beta2", 0.95)
	orDefault(defined, &t.Eps, "train.eps", 1e-8)
	orDefault(defined, &t.LogEvery, "train.log_every", 10)
	orDefault(defined, &t.EvalBatches, "train.eval_batches", 8)
	if m.Arch == "vit" {
		orDefault(defined, &m.Context, "model.context", m.Patches()+1)
		orDefault(defined, &m.Classes, "model.classes", 10)
		orDefault(defined, &t.Data, "train.data", DefaultImages)
		orDefault(defined, &t.Augment, "train.augment", "crop-flip")
	}
	orDefault(defined, &t.Data, "train.data", DefaultCorpus)
	orDefault(defined, &t.SeqLen, "train.seq_len", m.Context)
	if c.VCycle != nil {
		c.VCycle.fillDefaults()
	}
}

// orDefault sets *p to v unless the dotted key is defined.
func orDefault[T any](defined func(key ...string) bool, p *T, key string, v T) {
	if !defined(strings.Split(key, ".")...) {
		*p = v
	}
}

// TOML is the configuration as a TOML document (what a checkpoint stores, and what
// Parse reads back to the same configuration).
func (c *Config) TOML() ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DefaultCorpus is where `make data` puts Jane Austen's novels; DefaultImages Fashion-MNIST.
const (
	DefaultCorpus = "data/austen"
	DefaultImages = "data/fashion-mnist"
)

// Validate checks the configuration; each error names the key.
func (c *Config) Validate() error {
	m, t := c.Model, c.Train
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	oneOf(bad, "model.arch", m.Arch, "gpt", "bert", "vit")
	if m.Arch == "vit" {
		c.validateViT(bad)
	} else {
		oneOf(bad, "model.tokenizer", m.Tokenizer, "byte", "gpt2")
		if m.Image != 0 || m.Patch != 0 || m.Classes != 0 || t.Augment != "" {
			bad("model.image, model.patch, model.classes, train.augment: only a vit model takes them")
		}
	}
	positive := func(key string, v int) {
		if v < 1 {
			bad("%s: must be at least 1, got %d", key, v)
		}
	}
	positive("model.context", m.Context)
	positive("model.layers", m.Layers)
	positive("model.width", m.Width)
	positive("model.heads", m.Heads)
	positive("model.ffn", m.FFN)
	if m.Vocab < 0 {
		bad("model.vocab: must not be negative, got %d", m.Vocab)
	}
	if m.Heads > 0 && m.Width%m.Heads != 0 {
		bad("model.width: %d is not divisible by model.heads = %d", m.Width, m.Heads)
	}
	if m.Dropout < 0 || m.Dropout >= 1 {
		bad("model.dropout: %g is not in [0, 1)", m.Dropout)
	}
	if m.Smoothing < 0 || m.Smoothing >= 1 {
		bad("model.label_smoothing: %g is not in [0, 1)", m.Smoothing)
	}
	if m.InitStd <= 0 {
		bad("model.init_std: must be positive, got %g", m.InitStd)
	}
	positive("model.type_vocab", m.TypeVocab)
	if t.Data == "" {
		bad("train.data: must name a corpus (a text file or a folder of .txt files)")
	}
	positive("train.batch", t.Batch)
	if t.SeqLen < 1 || t.SeqLen > m.Context {
		bad("train.seq_len: %d is not in 1..model.context = %d", t.SeqLen, m.Context)
	}
	positive("train.grad_accum", t.GradAccum)
	if t.MicroBatches != 0 {
		bad("train.micro_batches: is train.grad_accum's former name; give only grad_accum (got %d and %d)", t.MicroBatches, t.GradAccum)
	}
	positive("train.steps", t.Steps)
	if t.LR <= 0 {
		bad("train.lr: must be positive, got %g", t.LR)
	}
	if t.MinLR < 0 || t.MinLR > t.LR {
		bad("train.min_lr: %g is not in [0, train.lr]", t.MinLR)
	}
	if t.Warmup < 0 || t.Warmup > t.Steps {
		bad("train.warmup: %d is not in [0, train.steps = %d] (a shorter run needs a shorter warmup, e.g. -set train.warmup=%d)",
			t.Warmup, t.Steps, t.Steps/10)
	}
	oneOf(bad, "train.decay", t.Decay, decays...)
	if t.Beta1 < 0 || t.Beta1 >= 1 || t.Beta2 < 0 || t.Beta2 >= 1 {
		bad("train.beta1, train.beta2: must be in [0, 1), got %g, %g", t.Beta1, t.Beta2)
	}
	for key, v := range map[string]float64{"train.weight_decay": t.WeightDecay, "train.grad_clip": t.GradClip} {
		if v < 0 {
			bad("%s: must not be negative, got %g", key, v)
		}
	}
	if t.Eps <= 0 {
		bad("train.eps: must be positive, got %g", t.Eps)
	}
	for key, v := range map[string]int{"train.eval_every": t.EvalEvery, "train.checkpoint_every": t.CheckpointEvery} {
		if v < 0 {
			bad("%s: must not be negative (0 turns it off), got %d", key, v)
		}
	}
	positive("train.log_every", t.LogEvery)
	positive("train.eval_batches", t.EvalBatches)
	if t.Seed > math.MaxInt64 {
		// TOML integers are signed 64-bit: a value above MaxInt64 is a negative one wrapped.
		bad("train.seed: must not be negative, got %d", int64(t.Seed))
	}
	checkProducts(bad, c)
	checkFinite(bad, reflect.ValueOf(c).Elem(), "")
	if c.VCycle != nil {
		c.validateVCycle(bad)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// validateViT checks a vision transformer's image keys.
func (c *Config) validateViT(bad func(format string, a ...any)) {
	m, t := c.Model, c.Train
	if m.Tokenizer != "" || m.Vocab != 0 {
		bad("model.tokenizer, model.vocab: a vit model reads images, not tokens; leave them out")
	}
	if m.Image < 1 || m.Patch < 1 || m.Image%m.Patch != 0 {
		bad("model.image, model.patch: the image side %d must be a positive multiple of the patch side %d", m.Image, m.Patch)
	} else if m.Context != m.Patches()+1 {
		bad("model.context: a vit model has %d patches and the class token, %d positions, not %d (leave it out)", m.Patches(), m.Patches()+1, m.Context)
	}
	if m.Classes < 2 {
		bad("model.classes: want at least 2, got %d", m.Classes)
	}
	oneOf(bad, "train.augment", t.Augment, "crop-flip", "crop-flip-rotate", "none")
}

// checkProducts refuses sizes whose products, which size the model's tensors, overflow an int:
// such a model cannot be allocated, and the overflow would give misleading errors later.
func checkProducts(bad func(format string, a ...any), c *Config) {
	m, t := c.Model, c.Train
	for _, p := range []struct {
		what string
		v    []int
	}{
		{"train.batch x model.context x model.width", []int{t.Batch, m.Context, m.Width}},
		{"train.batch x model.context x model.ffn", []int{t.Batch, m.Context, m.FFN}},
		{"train.batch x model.heads x model.context^2", []int{t.Batch, m.Heads, m.Context, m.Context}},
		{"model.layers x model.width x model.ffn", []int{m.Layers, m.Width, m.FFN}},
		{"model.layers x model.width^2", []int{m.Layers, m.Width, m.Width}},
		{"model.vocab x model.width", []int{m.Vocab, m.Width}},
		{"train.steps x train.grad_accum x train.batch x model.context", []int{t.Steps, t.GradAccum, t.Batch, m.Context}},
	} {
		n := uint64(1)
		for _, v := range p.v {
			if v <= 0 {
				n = 0
				break
			}
			hi, lo := bits.Mul64(n, uint64(v))
			if n = lo; hi != 0 || n > math.MaxInt64 {
				bad("%s overflows: these sizes are far beyond any device (%v)", p.what, p.v)
				break
			}
		}
	}
}

// checkFinite refuses every NaN or infinite float in v (a Config, or a part of it at key),
// naming its key; a V-cycle level is named by its number, counted from 1.
func checkFinite(bad func(format string, a ...any), v reflect.Value, key string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkFinite(bad, v.Elem(), key)
		}
	case reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			bad("%s: must be a finite number, got %v", key, f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			checkFinite(bad, v.Index(i), fmt.Sprintf("%s.%d", key, i+1))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if key != "" {
				name = key + "." + name
			}
			checkFinite(bad, v.Field(i), name)
		}
	}
}

// decays are the learning-rate decays LearningRate knows.
var decays = []string{"cosine", "linear", "constant"}

// oneOf reports key's value v through bad unless it is one of allowed.
func oneOf(bad func(format string, a ...any), key, v string, allowed ...string) {
	if slices.Contains(allowed, v) {
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	list := quoted[0]
	if n := len(quoted); n > 1 {
		list = strings.Join(quoted[:n-1], ", ") + " or " + quoted[n-1]
	}
	bad("%s: %q is not %s", key, v, list)
}

//go:embed presets/*.toml
var presets embed.FS

// Presets lists the embedded preset names, sorted.
func Presets() []string {
	files, _ := fs.Glob(presets, "presets/*.toml")
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(path.Base(f), ".toml")
	}
	sort.Strings(names)
	return names
}

// PresetText returns a preset's TOML exactly as shipped (what `vktrain config show` prints).
func PresetText(name string) ([]byte, error) {
	data, err := presets.ReadFile("presets/" + name + ".toml")
	if err != nil {
		return nil, fmt.Errorf("no preset %q (known: %s)", name, strings.Join(Presets(), ", "))
	}
	return data, nil
}

// Preset parses an embedded preset.
func Preset(name string) (*Config, error) {
	data, err := PresetText(name)
	if err != nil {
		return nil, err
	}
	return Parse("preset:"+name, data)
}

// Override applies settings of the form KEY=VALUE to a configuration's TOML text and returns
// the new text. KEY is a dotted path (train.lr, vcycle.alpha; a number, counted from 1, picks
// one table of an array: vcycle.level.1.down.lr is level 1's, the full model's) and VALUE a
// TOML value (3e-4, "cosine", {steps = 50}). A path must lead through existing tables; its last
// key may be new (Parse then checks it).
func Override(text []byte, settings []string) ([]byte, error) {
	if len(settings) == 0 {
		return text, nil
	}
	var doc map[string]any
	if err := toml.Unmarshal(text, &doc); err != nil {
		return nil, err
	}
	for _, s := range settings {
		key, value, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("setting %q: want KEY=VALUE", s)
		}
		var v map[string]any
		if err := toml.Unmarshal([]byte("v = "+value), &v); err != nil {
			return nil, fmt.Errorf("setting %s: the value %s is not TOML: %v", key, value, err)
		}
		if err := setPath(doc, strings.Split(strings.TrimSpace(key), "."), v["v"]); err != nil {
			return nil, fmt.Errorf("setting %s: %w", key, err)
		}
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// setPath sets path in a decoded TOML document to v.
func setPath(node any, path []string, v any) error {
	for i, k := range path {
		last := i == len(path)-1
		switch n := node.(type) {
		case map[string]any:
			if last {
				n[k] = v
				return nil
			}
			next, ok := n[k]
			if !ok {
				return fmt.Errorf("no table %s", strings.Join(path[:i+1], "."))
			}
			node = next
		case []map[string]any:
			j, err := strconv.Atoi(k)
			if err != nil || j < 1 || j > len(n) || last {
				return fmt.Errorf("%s: want a number from 1 to %d followed by a key", strings.Join(path[:i+1], "."), len(n))
			}
			node = n[j-1]
		default:
			return fmt.Errorf("%s is not a table", strings.Join(path[:i], "."))
		}
	}
	return nil
}

// Changed maps each key whose value differs between a and b to b's value as
// TOML ("train.lr" -> "0.001"); V-cycle levels are numbered from 1.
func Changed(a, b *Config) (map[string]string, error) {
	fa, err := a.flat()
	if err != nil {
		return nil, err
	}
	fb, err := b.flat()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range fb {
		if fa[k] != v {
			out[k] = v
		}
	}
	for k := range fa {
		if _, ok := fb[k]; !ok {
			out[k] = "(unset)"
		}
	}
	return out, nil
}

// flat is the configuration as dotted key -> TOML value.
func (c *Config) flat() (map[string]string, error) {
	text, err := c.TOML()
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := toml.Unmarshal(text, &doc); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch n := v.(type) {
		case map[string]any:
			for k, x := range n {
				walk(strings.TrimPrefix(key+"."+k, "."), x)
			}
		case []map[string]any:
			for i, x := range n {
				walk(fmt.Sprintf("%s.%d", key, i+1), x)
			}
		default:
			var b bytes.Buffer
			if err := toml.NewEncoder(&b).Encode(map[string]any{"v": v}); err == nil {
				out[key] = strings.TrimSpace(strings.TrimPrefix(b.String(), "v = "))
			}
		}
	}
	walk("", doc)
	return out, nil
}

// ResumableKeys are the keys a resumed run may change: they set how it trains from here on
// (schedule, optimizer constants, logging, checkpoints), not the model, the data or the batches.
// train.data may name the same corpus at another place (the run checks its digest).
var ResumableKeys = []string{"train.steps", "train.lr", "train.min_lr", "train.warmup", "train.decay",
	"train.weight_decay", "train.beta1", "train.beta2", "train.eps", "train.grad_clip",
	"train.eval_every", "train.checkpoint_every", "train.log_every", "train.data"}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
