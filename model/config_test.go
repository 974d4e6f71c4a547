package model

import (
	"strings"
	"testing"
)

func TestPresetsParse(t *testing.T) {
	names := Presets()
	for _, want := range []string{"gpt-tiny", "gpt-small", "gpt-small-bpe", "gpt-l4-256", "bert-tiny", "bert-small"} {
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
		if c.Model.FFN != 4*c.Model.Width || c.Train.MicroBatches != 1 {
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
		{`decay = "cosine"`, `decay = "cubic"`, "train.decay"},
		{"dropout = 0.0", "dropout = 1.5", "model.dropout"},
		{"batch = 16", "batch = \"x\"", "preset:x:"},
	} {
		text := strings.Replace(string(base), tc.from, tc.to, 1)
		_, err := ParseConfig("preset:x", []byte(text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: error %v, want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
}
