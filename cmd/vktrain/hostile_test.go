package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vktrain/vktrain/internal/safetensors"
	"github.com/vktrain/vktrain/train"
)

// The tests of this file are issue 12's: what a careless or hostile user does to a run.

// TestTrainLockedFolder: a second process on a run folder in use is refused at once, naming the
// process that holds it, whether it starts a run there or resumes it; a lock left by a killed
// process does not block.
func TestTrainLockedFolder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	cfg := tinyConfig(t, dir, "tiny")
	first := vktrainCmd(t, "train", "-config", cfg, "-steps", "5000", "-out", out, "-json")
	pipe, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	sc := bufio.NewScanner(pipe)
	for sc.Scan() { // until a checkpoint exists (checkpoint_every = 4)
		var m train.Metrics
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step >= 5 {
			break
		}
	}
	holder := fmt.Sprintf("in use by process %d", first.Process.Pid)
	for _, args := range [][]string{
		{"-config", cfg, "-steps", "60", "-seed", "7", "-out", out},
		{"-resume", out, "-steps", "100"},
	} {
		_, stderr, code := runVktrain(t, vktrainCmd(t, append([]string{"train", "-json"}, args...)...))
		if code != 1 || !strings.Contains(stderr, holder) || !strings.Contains(stderr, out) {
			t.Errorf("train %v while another process trains there: exit %d, want 1 and the error to say %q:\n%s", args, code, holder, stderr)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	first.Wait()
	at := latest(t, out)
	_, stderr := runTrainOK(t, "-resume", out, "-steps", strconv.Itoa(at+1), "-json")
	if !strings.Contains(stderr, fmt.Sprintf("from step %d;", at)) {
		t.Errorf("the resume after the kill:\n%s", stderr)
	}
}

// rewriteCheckpoint rewrites checkpoint ck's model.safetensors with edit applied to its tensors
// and fixes every checksum, as a careful forger would.
func rewriteCheckpoint(t *testing.T, ck string, edit func(name string, data []float32)) {
	t.Helper()
	path := filepath.Join(ck, "model.safetensors")
	f, err := safetensors.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for name, tensor := range f.Tensors {
		edit(name, tensor.Data)
		ts = append(ts, safetensors.Tensor{Name: name, Shape: tensor.Shape, Data: tensor.Data})
	}
	if err := safetensors.Write(path, ts, f.Metadata); err != nil {
		t.Fatal(err)
	}
	setChecksums(t, ck, path)
}

// TestBrokenModels: a learning rate of 1e10 breaks the model at its first step; the NaN guard
// stops the run and never checkpoints a model whose loss is not finite, so the checkpoint it
// names evaluates to a finite loss. eval and sample refuse a checkpoint whose model gives a
// non-finite loss or logits (exit 1), however it came about.
func TestBrokenModels(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	cfg := tinyConfig(t, dir, "diverge", "lr = 1e10", "min_lr = 0", "warmup = 0", "checkpoint_every = 1")
	_, stderr, code := runVktrain(t, vktrainCmd(t, "train", "-config", cfg, "-steps", "10", "-out", out))
	if code != 1 {
		t.Fatalf("the diverging run: exit %d, want 1:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "100%") {
		t.Errorf("the progress shows 100%% for a run that stopped:\n%s", stderr)
	}
	m := regexp.MustCompile(`training stopped at step (\d+): .*(NaN|Inf).*; the last good checkpoint is (.*)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the error does not name the step, the non-finite value and the last checkpoint:\n%s", stderr)
	}
	t.Logf("%s", strings.TrimSpace(stderr))
	if m[3] != "none written yet" {
		stdout, stderr, code := runVktrain(t, vktrainCmd(t, "eval", "-ckpt", m[3], "-json"))
		var res struct {
			ValLoss float64 `json:"val_loss"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || math.IsNaN(res.ValLoss) || math.IsInf(res.ValLoss, 0) {
			t.Errorf("the last good checkpoint %s: exit %d, %s %s", m[3], code, stdout, stderr)
		}
	}

	// A good checkpoint, then the same with its weights made huge (all checksums fixed).
	good := filepath.Join(dir, "good")
	runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "2", "-out", good, "-json")
	ck := filepath.Join(train.CheckpointsDir(good), "step-0000002")
	if _, stderr, code := runVktrain(t, vktrainCmd(t, "eval", "-ckpt", good)); code != 0 {
		t.Fatalf("eval of a good checkpoint: exit %d\n%s", code, stderr)
	}
	rewriteCheckpoint(t, ck, func(name string, data []float32) {
		for i := range data {
			data[i] = float32(math.Inf(1))
		}
	})
	for _, args := range [][]string{{"eval", "-ckpt", good}, {"sample", "-ckpt", good, "-tokens", "3"}} {
		stdout, stderr, code := runVktrain(t, vktrainCmd(t, args...))
		if code != 1 || !regexp.MustCompile(`NaN|Inf`).MatchString(stderr) || !strings.Contains(stderr, "broken") {
			t.Errorf("%v of a broken model: exit %d, want 1 with the non-finite value named:\n%s%s", args, code, stdout, stderr)
		}
	}
}

// TestStateTampered: state.json is covered by a checksum too: editing its step is refused.
func TestStateTampered(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "4", "-out", out, "-json")
	path := filepath.Join(train.CheckpointsDir(out), "step-0000004", "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), `"step": 4`, `"step": 3`, 1)
	if edited == string(b) {
		t.Fatalf("state.json has no step 4:\n%s", b)
	}
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"train", "-resume", out, "-steps", "8"}, {"eval", "-ckpt", out}} {
		_, stderr, code := runVktrain(t, vktrainCmd(t, args...))
		if code != 1 || !strings.Contains(stderr, "state.json is corrupted or was edited") {
			t.Errorf("%v with an edited state.json: exit %d\n%s", args, code, stderr)
		}
	}
}

// TestFlagsUsedOrRefused: a flag the user gives is used or refused with a clear message, never
// replaced by a default.
func TestFlagsUsedOrRefused(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "2", "-out", done, "-json")
	cfg := tinyConfig(t, dir, "tiny")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"train", "-config", cfg, "-steps", "0"}, 2, "-steps must be at least 1, got 0"},
		{[]string{"train", "-config", cfg, "-steps", "-5"}, 2, "-steps must be at least 1, got -5"},
		{[]string{"train", "-config", cfg, "-seed", "-5"}, 2, "-seed must not be negative, got -5"},
		{[]string{"train", "-config", cfg, "-set", "train.seed=-5"}, 1, "train.seed: must not be negative, got -5"},
		{[]string{"train", "-config", cfg, "-set", "train.lr=nan"}, 1, "train.lr: must be a finite number, got NaN"},
		{[]string{"train", "-config", cfg, "-set", "train.eps=0"}, 1, "train.eps: must be positive"},
		{[]string{"train", "-config", cfg, "-set", "train.lrr=1"}, 1, `vktrain train: -set: unknown key "train.lrr"`},
		{[]string{"train", "-config", cfg, "-set", "train.log_every=0"}, 1, "train.log_every: must be at least 1"},
		{[]string{"train", "-config", cfg, "-set", "train.eval_batches=0"}, 1, "train.eval_batches: must be at least 1"},
		{[]string{"train", "-preset", "gpt-tiny-vcycle", "-set", "vcycle.alpha=nan"}, 1, "vcycle.alpha: must be a finite number"},
		{[]string{"train", "-preset", "gpt-tiny-vcycle", "-set", "vcycle.level.3.down.lr=1"}, 2, "want a number from 1 to 2"},
		{[]string{"eval", "-ckpt", done, "-batches", "-1"}, 2, "-batches must be at least 1, got -1"},
		{[]string{"eval", "-ckpt", done, "-batches", "0"}, 2, "-batches must be at least 1, got 0"},
		{[]string{"sample", "-ckpt", done, "-temperature", "nan"}, 2, "-temperature a finite number"},
		{[]string{"sample", "-ckpt", done, "-temperature", "inf"}, 2, "-temperature a finite number"},
	} {
		_, stderr, code := runVktrain(t, vktrainCmd(t, tc.args...))
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, stderr)
		}
	}
	// beta1 = 0 is a valid choice and is used: the run differs from the default's 0.9.
	b0 := filepath.Join(dir, "beta0")
	runTrainOK(t, "-config", cfg, "-steps", "3", "-set", "train.beta1=0", "-set", "train.warmup=1", "-out", b0, "-json")
	b9 := filepath.Join(dir, "beta9")
	runTrainOK(t, "-config", cfg, "-steps", "3", "-set", "train.beta1=0.9", "-set", "train.warmup=1", "-out", b9, "-json")
	if m0, m9 := metrics(t, b0), metrics(t, b9); m0[2].Loss == m9[2].Loss {
		t.Errorf("beta1 = 0 trains as beta1 = 0.9 does (loss %v at step 3)", m0[2].Loss)
	}
}

// TestRunFolderWithoutCheckpoint: a run that stopped before its first checkpoint left a folder
// with metrics only; -resume says what to do, and the first command, run again, restarts it.
func TestRunFolderWithoutCheckpoint(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "metrics.jsonl"), []byte(`{"step":1,"loss":5.5}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runVktrain(t, vktrainCmd(t, "train", "-resume", out))
	if code != 1 || !strings.Contains(stderr, "stopped before its first checkpoint") || !strings.Contains(stderr, "without -resume") {
		t.Errorf("-resume of a folder without checkpoint: exit %d\n%s", code, stderr)
	}
	cfg := tinyConfig(t, dir, "tiny", "warmup = 1")
	_, stderr = runTrainOK(t, "-config", cfg, "-steps", "2", "-out", out, "-json")
	if !strings.Contains(stderr, "starting it again") {
		t.Errorf("the restart says nothing:\n%s", stderr)
	}
	if ms := metrics(t, out); len(ms) != 2 || ms[0].Step != 1 || ms[1].Step != 2 {
		t.Errorf("metrics after the restart: %+v", ms)
	}
}

// TestResumeWithSettings: -resume may change the keys that change neither the model nor the
// data (the warmup an error suggests, the learning rate, logging), and the metrics say from
// which step; model and batch keys are refused, naming the key.
func TestResumeWithSettings(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "8", "-out", out, "-json")
	runTrainOK(t, "-resume", out, "-steps", "12", "-set", "train.lr=1e-3", "-set", "train.warmup=2", "-set", "train.log_every=2", "-json")
	var changed map[string]string
	for _, m := range metrics(t, out) {
		if m.Changed != nil {
			if m.Step != 9 || changed != nil {
				t.Errorf("settings changed at step %d: %v", m.Step, m.Changed)
			}
			changed = m.Changed
		}
	}
	want := map[string]string{"train.lr": "0.001", "train.warmup": "2", "train.log_every": "2", "train.steps": "12"}
	if fmt.Sprint(changed) != fmt.Sprint(want) {
		t.Errorf("metrics record the changes %v, want %v", changed, want)
	}
	for _, set := range []string{"model.width=64", "train.seed=3", "train.batch=8"} {
		key, _, _ := strings.Cut(set, "=")
		_, stderr, code := runVktrain(t, vktrainCmd(t, "train", "-resume", out, "-steps", "14", "-set", set))
		if code != 1 || !strings.Contains(stderr, key+" cannot change on resume") {
			t.Errorf("-resume -set %s: exit %d\n%s", set, code, stderr)
		}
	}
}

// TestCorpusIdentity: a run stores where its corpus is (an absolute path) and a digest of it, so
// that eval works from any folder, a moved corpus is found again with -data, and a changed
// document is named.
func TestCorpusIdentity(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "c1")
	copyRun(t, austen(t), corpus)
	out := filepath.Join(dir, "run")
	cmd := vktrainCmd(t, "train", "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "4", "-data", "c1", "-out", out, "-json")
	cmd.Dir = dir // -data relative to here
	if _, stderr, code := runVktrain(t, cmd); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// vktrainCmd runs in a folder of its own: the relative -data c1 means nothing there.
	if _, stderr, code := runVktrain(t, vktrainCmd(t, "eval", "-ckpt", out)); code != 0 {
		t.Errorf("eval from another folder: exit %d\n%s", code, stderr)
	}
	moved := filepath.Join(dir, "c2")
	if err := os.Rename(corpus, moved); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runVktrain(t, vktrainCmd(t, "train", "-resume", out, "-steps", "6"))
	if code != 1 || !strings.Contains(stderr, corpus) || !strings.Contains(stderr, "train.data") {
		t.Errorf("resume with the corpus moved: exit %d\n%s", code, stderr)
	}
	if err := os.WriteFile(filepath.Join(moved, "emma.txt"), []byte("Emma Woodhouse, handsome, clever, and rich"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runVktrain(t, vktrainCmd(t, "train", "-resume", out, "-steps", "6", "-data", moved))
	if code != 1 || !strings.Contains(stderr, "emma.txt changed") {
		t.Errorf("resume on a changed corpus: exit %d\n%s", code, stderr)
	}
	copyRun(t, austen(t), filepath.Join(dir, "c3"))
	runTrainOK(t, "-resume", out, "-steps", "6", "-data", filepath.Join(dir, "c3"), "-json")
}

// TestProgressNotTerminal: with stderr redirected, the progress is plain lines, one per metrics
// line, with the current step and loss, and no carriage-return redraws.
func TestProgressNotTerminal(t *testing.T) {
	dir := t.TempDir()
	_, stderr := runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "4", "-out", filepath.Join(dir, "run"))
	if strings.Contains(stderr, "\r") {
		t.Errorf("carriage returns in redirected output:\n%q", stderr)
	}
	for step := 1; step <= 4; step++ {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^step %d/4 loss \d+\.\d{4}`, step)).MatchString(stderr) {
			t.Errorf("no line for step %d:\n%s", step, stderr)
		}
	}
	if !regexp.MustCompile(`(?m)^step 4/4 .* ETA 0s$`).MatchString(stderr) {
		t.Errorf("no ETA on the last line:\n%s", stderr)
	}
}
