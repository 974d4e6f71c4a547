package main

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vktrain/vktrain/internal/safetensors"
	"github.com/vktrain/vktrain/train"
)

// A run whose token table is held in chunks of 4 rows (VKTRAIN_CHUNK_BYTES=512) follows the
// unchunked run within 1e-6 relative (two sums change order, see README), writes the table to
// its checkpoint in Hugging Face's shape, and `train -init` from that checkpoint's folder (a
// config.json and model.safetensors) starts from the trained parameters.
func TestTrainChunked(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, "tiny")
	plain, chunked := filepath.Join(dir, "plain"), filepath.Join(dir, "chunked")
	runTrainOK(t, "-config", cfg, "-steps", "8", "-out", plain, "-json")
	t.Setenv("VKTRAIN_CHUNK_BYTES", "512")
	runTrainOK(t, "-config", cfg, "-steps", "8", "-out", chunked, "-json")
	want, got := metrics(t, plain), metrics(t, chunked)
	if len(got) != len(want) {
		t.Fatalf("%d metrics lines chunked, %d unchunked", len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i].Loss-want[i].Loss) > 1e-6*want[i].Loss {
			t.Errorf("step %d: loss %v chunked, %v unchunked", want[i].Step, got[i].Loss, want[i].Loss)
		}
	}
	ck := filepath.Join(train.CheckpointsDir(chunked), "step-0000008")
	st, err := safetensors.Read(filepath.Join(ck, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if shape := st.Tensors["wte.weight"].Shape; !slices.Equal(shape, []int{256, 32}) {
		t.Errorf("wte.weight has shape %v in the checkpoint, want [256 32]", shape)
	}
	initOut := filepath.Join(dir, "init")
	runTrainOK(t, "-config", cfg, "-steps", "6", "-out", initOut, "-json", "-init", ck)
	first := metrics(t, initOut)[0]
	if !(first.Loss < want[0].Loss-0.1) {
		t.Errorf("-init: first loss %v, a fresh run's is %v: the trained parameters were not loaded", first.Loss, want[0].Loss)
	}
}
