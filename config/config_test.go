package config

import (
	"strings"
	"testing"
)

func TestPresetsParse(t *testing.T) {
	names := Presets()
	for _, want := range []string{"gpt-tiny", "gpt-small", "gpt-small-bpe", "gpt2-124m", "gpt-l4-256", "bert-tiny", "bert-small"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("preset %s missing from %v", want, names)
		}
	}
	for _, n := range names {
		c, err := Preset(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if c.Model.FFN != 4*c.Model.Width || c.Train.GradAccum != 1 {
			t.Errorf("%s: defaults not filled: %+v", n, c)
		}
	}
	if _, err := Preset("gpt-huge"); err == nil || !strings.Contains(err.Error(), "gpt-tiny") {
		t.Errorf("unknown preset: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	base, err := PresetText("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"width = 64", "width = 65", "model.width: 65 is not divisible by model.heads = 2"},
		{"heads = 2", "heads = 0", "model.heads: must be at least 1"},
		{`arch = "gpt"`, `arch = "rnn"`, "model.arch"},
		{"layers = 2", "layers = 2\nlayres = 3", `preset:x:7: unknown key "model.layres"`},
		{"warmup = 20", "warmup = 2000", "train.warmup"},
		{"warmup = 20", "warmup = 20\ngrad_accum = 2\nmicro_batches = 3", "train.micro_batches: is train.grad_accum's former name"},
		{`decay = "cosine"`, `decay = "cubic"`, "train.decay"},
		{"dropout = 0.0", "dropout = 1.5", "model.dropout"},
		{"batch = 16", "batch = \"x\"", "preset:x:"},
		{"batch = 16", "batch = 16\nseq_len = 4096", "train.seq_len: 4096 is not in 1..model.context"},
	} {
		text := strings.Replace(string(base), tc.from, tc.to, 1)
		_, err := Parse("preset:x", []byte(text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: error %v, want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestVCycleConfig(t *testing.T) {
	c, err := Preset("gpt-tiny-vcycle")
	if err != nil {
		t.Fatal(err)
	}
	v := c.VCycle
	if v == nil || v.DepthPairing != "stride" || v.Embedding != "exact" || v.Levels[1].Halve != "both" || v.Keep != "gpu" ||
		v.Moments != "map" || v.Schedule != "global" || v.Progress != "flops" || v.DepthInit != "zero" || v.Levels[1].LRScale != 1 {
		t.Fatalf("defaults not filled: %+v", v)
	}
	models, err := c.LevelModels()
	if err != nil || len(models) != 2 || models[1].Width != 32 || models[1].Layers != 1 || models[1].Heads != 1 || models[1].FFN != 128 {
		t.Fatalf("level models %+v, %v", models, err)
	}
	s := c.Schedule(v.Levels[0].Down)
	if s.Steps != 30 || s.LR != c.Train.LR || s.MinLR != c.Train.MinLR || s.Decay != c.Train.Decay || s.WeightDecay != c.Train.WeightDecay {
		t.Errorf("level 1 down schedule %+v", s)
	}
	if c.Steps() != 540 || c.PhaseStart(2) != 390 {
		t.Errorf("V-cycle steps %d, want 540; phase 2 starts at %d, want 390", c.Steps(), c.PhaseStart(2))
	}
	// The TOML a checkpoint stores reads back to the same V-cycle.
	text, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("round trip", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if back.Steps() != c.Steps() || back.VCycle.Alpha != v.Alpha || *back.VCycle.Levels[0].Up != *v.Levels[0].Up {
		t.Errorf("round trip changed the V-cycle: %+v", back.VCycle)
	}

	base, _ := PresetText("gpt-tiny-vcycle")
	for _, tc := range []struct{ from, to, want string }{
		{"alpha = 1.0", "alpha = 1.5", "vcycle.alpha"},
		{"split = 0.01", "split = -0.1", "vcycle.split"},
		{"alpha = 1.0", "alpha = 1.0\nkeep = \"ram\"", "vcycle.keep"},
		{`depth_pairing = "stride"`, `depth_pairing = "random"`, "vcycle.depth_pairing"},
		{`embedding = "exact"`, `embedding = "none"`, "vcycle.embedding"},
		{`moments = "map"`, `moments = "keep"`, "vcycle.moments"},
		{`schedule = "global"`, `schedule = "cyclic"`, "vcycle.schedule"},
		{`progress = "flops"`, `progress = "time"`, "vcycle.progress"},
		{`depth_init = "zero"`, `depth_init = "random"`, "vcycle.depth_init"},
		{"alpha = 1.0", "alpha = 1.0\nrewarm = -1", "vcycle.rewarm: must not be negative"},
		{`schedule = "global"`, "schedule = \"phases\"\nrewarm = 5", "vcycle.rewarm: re-warmup belongs to schedule = \"global\""},
		{`halve = "both"`, "halve = \"both\"\nlr_scale = -2", "vcycle.level.2.lr_scale: must be positive"},
		{"down = { steps = 30 }", "down = { steps = 30, lr = 1e-3 }", "vcycle.level.1.down: schedule = \"global\" takes the learning rate from [train]"},
		{`halve = "both"`, `halve = "all"`, "vcycle.level.2.halve"},
		{"up = { steps = 150 }", "up = { steps = 0 }", "vcycle.level.1.up.steps: must be at least 1"},
		{"up = { steps = 150 }", "up = { stepz = 150 }", `unknown key "vcycle.level.up.stepz"`},
		{`halve = "both"`, "halve = \"both\"\nup = { steps = 5 }", "vcycle.level.2.up: the coarsest level trains once"},
		{"heads = 2", "heads = 1", "vcycle.level.2: width 64, 1 heads, FFN 256 cannot be halved"},
		{"layers = 2", "layers = 3", "3 layers cannot be halved"},
		{"up = { steps = 150 }", "", "vcycle.level.1.up: missing"},
	} {
		text := strings.Replace(string(base), tc.from, tc.to, 1)
		_, err := Parse("preset:x", []byte(text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: error %v, want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// Keys that only one schedule takes are refused under the other.
func TestVCycleScheduleKeys(t *testing.T) {
	base, _ := PresetText("gpt-tiny-vcycle")
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{`vcycle.schedule="phases"`, "vcycle.level.2.lr_scale=2"}, "vcycle.level.2.lr_scale: belongs to schedule = \"global\""},
		{[]string{`vcycle.schedule="phases"`, "vcycle.level.1.down={steps = 1, warmup = 2}"}, "vcycle.level.1.down.warmup: 2 is not in [0, steps = 1]"},
	} {
		text, err := Override(base, tc.set)
		if err == nil {
			_, err = Parse("preset:x", text)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to contain %q", tc.set, err, tc.want)
		}
	}
}

func TestOverride(t *testing.T) {
	base, _ := PresetText("gpt-tiny-vcycle")
	text, err := Override(base, []string{"train.lr=1e-2", "vcycle.alpha = 0.5", `vcycle.schedule="phases"`, `vcycle.level.2.down={steps = 50, lr = 2e-3}`, "vcycle.split=0.02"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("overridden", text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if c.Train.LR != 1e-2 || c.VCycle.Alpha != 0.5 || c.VCycle.Split != 0.02 || c.VCycle.Levels[1].Down.Steps != 50 ||
		c.VCycle.Levels[1].Down.LR != 2e-3 || c.VCycle.Levels[0].Down.Steps != 30 || c.Model.Width != 64 {
		t.Errorf("overridden config %+v %+v", c.Train, c.VCycle)
	}
	for _, tc := range []struct{ set, want string }{
		{"train.lr", "want KEY=VALUE"},
		{"train.lr=fast", "not TOML"},
		{"trian.lr=1", "no table trian"},
		{"vcycle.level.5.down.lr=1", "want a number from 1 to 2"},
		{"vcycle.level.0.down.lr=1", "want a number from 1 to 2"},
		{"train.lr.x=1", "train.lr is not a table"},
	} {
		if _, err := Override(base, []string{tc.set}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.set, err, tc.want)
		}
	}
	if text, _ := Override(base, []string{"train.lrr=1"}); text != nil {
		if _, err := Parse("x", text); err == nil || !strings.Contains(err.Error(), "train.lrr") {
			t.Errorf("a new unknown key: %v", err)
		}
	}
}

// TestSetValuesAreUsedOrRefused: a key the configuration sets is used as given, zero included,
// or refused with an error that names it; it never falls back to a default. Every float key is
// checked for NaN and infinity.
func TestSetValuesAreUsedOrRefused(t *testing.T) {
	base, _ := PresetText("gpt-tiny-vcycle")
	for _, tc := range []struct {
		set  string
		want string // in the error; "" for a valid setting
		ok   func(c *Config) bool
	}{
		{"train.beta1=0", "", func(c *Config) bool { return c.Train.Beta1 == 0 }},
		{"train.beta2=0", "", func(c *Config) bool { return c.Train.Beta2 == 0 }},
		{"train.eval_every=0", "", func(c *Config) bool { return c.Train.EvalEvery == 0 }},
		{"train.eps=0", "train.eps: must be positive", nil},
		{"train.log_every=0", "train.log_every: must be at least 1", nil},
		{"train.eval_batches=0", "train.eval_batches: must be at least 1", nil},
		{"train.grad_accum=0", "train.grad_accum: must be at least 1", nil},
		{"model.ffn=0", "model.ffn: must be at least 1", nil},
		{"model.type_vocab=0", "model.type_vocab: must be at least 1", nil},
		{"model.init_std=0", "model.init_std: must be positive", nil},
		{`train.decay=""`, `train.decay: "" is not`, nil},
		{`train.data=""`, "train.data: must name a corpus", nil},
		{"train.steps=0", "train.steps: must be at least 1", nil},
		{"train.seed=-5", "train.seed", nil},
		{"train.lr=nan", "train.lr: must be a finite number, got NaN", nil},
		{"train.lr=inf", "train.lr: must be a finite number, got +Inf", nil},
		{"train.min_lr=nan", "train.min_lr: must be a finite number", nil},
		{"train.beta1=nan", "train.beta1: must be a finite number", nil},
		{"train.beta2=-inf", "train.beta2: must be a finite number", nil},
		{"train.eps=nan", "train.eps: must be a finite number", nil},
		{"train.weight_decay=inf", "train.weight_decay: must be a finite number", nil},
		{"train.grad_clip=nan", "train.grad_clip: must be a finite number", nil},
		{"model.dropout=nan", "model.dropout: must be a finite number", nil},
		{"model.init_std=inf", "model.init_std: must be a finite number", nil},
		{"vcycle.alpha=nan", "vcycle.alpha: must be a finite number", nil},
		{"vcycle.split=inf", "vcycle.split: must be a finite number", nil},
		{"vcycle.level.2.down.lr=nan", "vcycle.level.2.down.lr: must be a finite number", nil},
		{"vcycle.level.1.up.min_lr=nan", "vcycle.level.1.up.min_lr: must be a finite number", nil},
		{"model.width=4611686018427387904", "overflows", nil},
		{"train.batch=9223372036854775807", "overflows", nil},
	} {
		text, err := Override(base, []string{tc.set})
		if err == nil {
			var c *Config
			if c, err = Parse("x", text); err == nil && tc.ok != nil && !tc.ok(c) {
				t.Errorf("%s: not honoured: %+v", tc.set, c.Train)
			}
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.set, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.set, err, tc.want)
		}
	}
}

// A vit model's context is its patches and the class token; its image keys are checked, and
// other models refuse them.
func TestViTConfig(t *testing.T) {
	c, err := Preset("vit-tiny")
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Model; m.Context != m.Patches()+1 || m.Patches() != 16 || m.Classes != 10 || c.Train.Data != DefaultImages || c.Train.Augment != "crop-flip" {
		t.Errorf("vit-tiny: context %d, %d patches, %d classes, data %q, augment %q", m.Context, m.Patches(), m.Classes, c.Train.Data, c.Train.Augment)
	}
	base, _ := PresetText("vit-tiny")
	gpt, _ := PresetText("gpt-tiny")
	for _, tc := range []struct {
		text     []byte
		from, to string
		want     string
	}{
		{base, "patch = 7", "patch = 5", "model.image, model.patch"},
		{base, "patch = 7", "patch = 7\ncontext = 50", "model.context: a vit model has 16 patches"},
		{base, "patch = 7", "patch = 7\ntokenizer = \"byte\"", "model.tokenizer"},
		{base, `augment = "crop-flip"`, `augment = "mixup"`, "train.augment"},
		{gpt, "layers = 2", "layers = 2\npatch = 4", "only a vit model"},
	} {
		_, err := Parse("x", []byte(strings.Replace(string(tc.text), tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: error %v, want one saying %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// TestMicroBatchesIsGradAccum reads grad_accum's former name and writes only the new one.
func TestMicroBatchesIsGradAccum(t *testing.T) {
	base, err := PresetText("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("old", []byte(strings.Replace(string(base), "warmup = 20", "warmup = 20\nmicro_batches = 3", 1)))
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.GradAccum != 3 || strings.Contains(string(text), "micro_batches") || !strings.Contains(string(text), "grad_accum = 3") {
		t.Fatalf("grad_accum %d, TOML:\n%s", c.Train.GradAccum, text)
	}
}
