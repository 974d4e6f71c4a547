package model_test

import (
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk/profile"
)

// Every preset's training step is made of kernels the tuner knows.
func TestStepKernels(t *testing.T) {
	for _, name := range config.Presets() {
		cfg, err := config.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		vocab, err := model.VocabSize(cfg.Model)
		if err != nil {
			t.Fatal(err)
		}
		run := map[string]bool{}
		rows := cfg.Train.Batch * cfg.Train.SeqLen // gpt2-124m trains 64 of its 1024 positions
		for _, c := range model.StepKernels(cfg, vocab) {
			if c.Op() == "" {
				t.Errorf("%s: unknown kernel %q", name, c.Kernel)
			}
			run[c.Op()] = true
			if c.Kernel == "layernorm" && c.Dims[0] != rows {
				t.Errorf("%s: LayerNorm over %d rows, want batch x seq_len = %d", name, c.Dims[0], rows)
			}
		}
		for op := range profile.Variants() { // every op but axpy and dropout
			if want := op != "axpy" && op != "dropout"; run[op] != want {
				t.Errorf("%s: runs op %s: %v, want %v", name, op, run[op], want)
			}
		}
	}
}
