package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/safetensors"
	"github.com/vktrain/vktrain/train"
)

// fashion returns the absolute path of Fashion-MNIST, failing the test when it is missing.
func fashion(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", data.FashionMNISTPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.LoadFashionMNIST(dir); err != nil {
		t.Fatalf("Fashion-MNIST is missing (%v): run `make data` in the repository root first", err)
	}
	return dir
}

// tinyViT are the flags that train the vit-tiny preset shrunk to one layer of width 16 on
// batches of 32 images for 12 steps, every step logged, validated every 4 steps on 2 batches.
func tinyViT(t *testing.T, out string) []string {
	args := []string{"-preset", "vit-tiny", "-out", out, "-json", "-set", "train.data=" + fmt.Sprintf("%q", fashion(t))}
	for _, kv := range []string{"model.layers=1", "model.width=16", "model.heads=2", "model.ffn=32", "train.batch=32", "train.lr=5e-3",
		"train.steps=12", "train.warmup=2", "train.eval_every=4", "train.eval_batches=2", "train.checkpoint_every=4",
		"train.log_every=1"} {
		args = append(args, "-set", kv)
	}
	return args
}

// A ViT run logs val_acc with every validation and test_acc on its last line, resumes bit for
// bit (augmented batches included), stores Hugging Face ViT tensors, and its checkpoint's eval
// and predict agree with the test accuracy it logged.
func TestViTTrainResumeEvalPredict(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "reference")
	runTrainOK(t, tinyViT(t, ref)...)
	want := metrics(t, ref)
	if len(want) != 12 {
		t.Fatalf("%d metrics lines, want 12", len(want))
	}
	for _, m := range want {
		if (m.ValLoss != nil) != (m.ValAcc != nil) || (m.TestAcc != nil) != (m.Step == 12) || m.ImagesPerS <= 0 {
			t.Errorf("step %d: val_loss %v, val_acc %v, test_acc %v, images_per_s %v", m.Step, m.ValLoss, m.ValAcc, m.TestAcc, m.ImagesPerS)
		}
	}
	last := want[len(want)-1]
	if last.TestAcc == nil || *last.TestAcc <= 0.1 {
		t.Fatalf("test accuracy after 12 steps: %v, want above chance (0.1)", deref(last.TestAcc))
	}

	t.Run("resume", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		signalAfter(t, syscall.SIGINT, 5, tinyViT(t, out)...)
		runTrainOK(t, "-resume", out, "-json")
		got := metrics(t, out)
		sameCurve(t, want, got)
		for i := range want {
			if fmt.Sprint(deref(want[i].ValAcc), deref(want[i].TestAcc)) != fmt.Sprint(deref(got[i].ValAcc), deref(got[i].TestAcc)) {
				t.Errorf("step %d: accuracies %v %v, the uninterrupted run's %v %v", want[i].Step,
					deref(got[i].ValAcc), deref(got[i].TestAcc), deref(want[i].ValAcc), deref(want[i].TestAcc))
			}
		}
	})

	ck := filepath.Join(train.CheckpointsDir(ref), "step-0000012")
	t.Run("Hugging Face layout", func(t *testing.T) {
		const d, f, p, n = 16, 32, 7, 17
		e := "vit.embeddings."
		wantShapes := map[string][]int{e + "cls_token": {1, 1, d}, e + "position_embeddings": {1, n, d},
			e + "patch_embeddings.projection.weight": {d, 1, p, p}, e + "patch_embeddings.projection.bias": {d},
			"vit.layernorm.weight": {d}, "vit.layernorm.bias": {d}, "classifier.weight": {10, d}, "classifier.bias": {10}}
		h := "vit.encoder.layer.0."
		for _, ln := range []string{"layernorm_before", "layernorm_after"} {
			wantShapes[h+ln+".weight"], wantShapes[h+ln+".bias"] = []int{d}, []int{d}
		}
		for _, l := range []string{"attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense"} {
			wantShapes[h+l+".weight"], wantShapes[h+l+".bias"] = []int{d, d}, []int{d}
		}
		wantShapes[h+"intermediate.dense.weight"], wantShapes[h+"intermediate.dense.bias"] = []int{f, d}, []int{f}
		wantShapes[h+"output.dense.weight"], wantShapes[h+"output.dense.bias"] = []int{d, f}, []int{d}
		st, err := safetensors.Read(filepath.Join(ck, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Tensors) != len(wantShapes) {
			t.Errorf("model.safetensors has %d tensors, want %d", len(st.Tensors), len(wantShapes))
		}
		for name, shape := range wantShapes {
			if tensor, ok := st.Tensors[name]; !ok || !slices.Equal(tensor.Shape, shape) {
				t.Errorf("%s: present %v, shape %v, want %v", name, ok, tensor.Shape, shape)
			}
		}
		var hf map[string]any
		b, _ := os.ReadFile(filepath.Join(ck, "config.json"))
		if err := json.Unmarshal(b, &hf); err != nil || hf["model_type"] != "vit" || hf["patch_size"] != 7.0 || hf["image_size"] != 28.0 {
			t.Errorf("config.json: %v, %v", err, hf)
		}
	})

	t.Run("eval", func(t *testing.T) {
		stdout, stderr, code := runVktrain(t, vktrainCmd(t, "eval", "-ckpt", ck, "-json"))
		if code != 0 {
			t.Fatalf("eval: exit %d\n%s", code, stderr)
		}
		var r struct {
			Images    int
			Accuracy  float64
			Confusion [][]int
		}
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		sum, diag := 0, 0
		for i, row := range r.Confusion {
			for j, c := range row {
				sum += c
				if i == j {
					diag += c
				}
			}
		}
		if r.Images != 10000 || sum != 10000 || r.Accuracy != *last.TestAcc || float64(diag)/1e4 != r.Accuracy {
			t.Errorf("eval: %d images, confusion sums to %d (%d right), accuracy %v; the run's test_acc is %v",
				r.Images, sum, diag, r.Accuracy, *last.TestAcc)
		}
	})

	t.Run("predict", func(t *testing.T) {
		grid := filepath.Join(t.TempDir(), "grid.png")
		stdout, stderr, code := runVktrain(t, vktrainCmd(t, "predict", "-ckpt", ck, "-out", grid, "-n", "10", "-json"))
		if code != 0 {
			t.Fatalf("predict: exit %d\n%s", code, stderr)
		}
		var r struct{ Predictions []prediction }
		if err := json.Unmarshal([]byte(stdout), &r); err != nil || len(r.Predictions) != 10 || r.Predictions[9].Index != 9 {
			t.Errorf("predict -json: %v, %s", err, stdout)
		}
		f, err := os.Open(grid)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 8*28*3 {
			t.Errorf("grid.png: %v", err)
		}
		if _, stderr, code := runVktrain(t, vktrainCmd(t, "predict", "-ckpt", ck, "-out", grid, "-n", "20000")); code != 2 ||
			!strings.Contains(stderr, "inside the split") {
			t.Errorf("predict -n 20000: exit %d, %s", code, stderr)
		}
	})
}

func deref(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}
