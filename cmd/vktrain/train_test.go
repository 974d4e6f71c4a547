package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/runlock"
	"github.com/vktrain/vktrain/internal/safetensors"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/train"
)

// The tests of `vktrain train` run vktrain as a subprocess (the test binary, see TestMain), so
// that it can be signalled and killed, and so that its output stays out of the test log.

// austen returns the absolute path of the default corpus, failing the test when it is missing.
func austen(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", data.DefaultPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, novel := range data.AustenNovels() {
		if _, err := os.Stat(filepath.Join(dir, novel)); err != nil {
			t.Fatalf("the default corpus is missing (%v): run `make data` in the repository root first", err)
		}
	}
	return dir
}

// tinyTOML is a GPT small enough to train 40 steps in about a second on lavapipe, with every
// step's loss logged. Its context (24) differs from its width (32) so that a transposed tensor
// shows.
const tinyTOML = `# vktrain test model
[model]
arch = "gpt"
tokenizer = "byte"
context = 24
layers = 2
width = 32
heads = 2
dropout = 0.0
init_std = 0.02

[train]
data = %q
batch = 4
steps = 60
lr = 3e-3
min_lr = 3e-4
warmup = 5
decay = "cosine"
weight_decay = 0.1
grad_clip = 1.0
eval_every = 10
eval_batches = 2
checkpoint_every = 4
log_every = 1
seed = 1
`

// tinySteps is the schedule length the tests give with -steps (the file says 60).
const tinySteps = 40

// tinyConfig writes tinyTOML, with each "key = value" of set replacing the line of that key,
// into dir/name.toml and returns its path.
func tinyConfig(t *testing.T, dir, name string, set ...string) string {
	t.Helper()
	lines := strings.Split(fmt.Sprintf(tinyTOML, austen(t)), "\n")
	for _, kv := range set {
		key, _, _ := strings.Cut(kv, " = ")
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+" = ") })
		if i < 0 {
			t.Fatalf("tinyTOML has no key %q", key)
		}
		lines[i] = kv
	}
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// vktrainCmd is vktrain as a subprocess, run in a folder of its own.
func vktrainCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "VKTRAIN_TEST_AS_MAIN=1")
	return cmd
}

// runVktrain runs cmd to its end and returns its output and exit status.
func runVktrain(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("vktrain %v: %v", cmd.Args[1:], err)
	}
	return out.String(), errb.String(), code
}

// runTrainOK runs vktrain train with args and fails the test unless it succeeds.
func runTrainOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runVktrain(t, vktrainCmd(t, append([]string{"train"}, args...)...))
	if code != 0 {
		t.Fatalf("vktrain train %v: exit %d\n%s", args, code, stderr)
	}
	return stdout, stderr
}

// metrics reads a run's metrics.jsonl.
func metrics(t *testing.T, out string) []train.Metrics {
	t.Helper()
	ms, err := train.ReadMetrics(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// sameCurve fails unless got logs the same steps as want with bitwise the same training and
// validation losses and gradient norms.
func sameCurve(t *testing.T, want, got []train.Metrics) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d metrics lines, want %d", len(got), len(want))
	}
	bits := func(v *float64) string {
		if v == nil {
			return "null"
		}
		return strconv.FormatUint(math.Float64bits(*v), 16)
	}
	for i, w := range want {
		g := got[i]
		if g.Step != w.Step || math.Float64bits(g.Loss) != math.Float64bits(w.Loss) ||
			math.Float64bits(g.GradNorm) != math.Float64bits(w.GradNorm) || bits(g.ValLoss) != bits(w.ValLoss) {
			t.Fatalf("line %d: step %d loss %v grad norm %v val %s; the uninterrupted run has step %d loss %v grad norm %v val %s",
				i+1, g.Step, g.Loss, g.GradNorm, bits(g.ValLoss), w.Step, w.Loss, w.GradNorm, bits(w.ValLoss))
		}
	}
}

// latest is the step of the checkpoint that OUT/checkpoints/LATEST names.
func latest(t *testing.T, out string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(train.CheckpointsDir(out), "LATEST"))
	if err != nil {
		t.Fatal(err)
	}
	var step int
	if _, err := fmt.Sscanf(string(b), "step-%d", &step); err != nil {
		t.Fatalf("LATEST is %q: %v", b, err)
	}
	return step
}

// TestTrainLossFalls: the gpt-tiny preset, as shipped, takes the training loss on the Austen
// corpus from about ln 256 ≈ 5.5 to below 3.3 within its 200 steps.
func TestTrainLossFalls(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	runTrainOK(t, "-preset", "gpt-tiny", "-data", austen(t), "-out", out, "-json")
	ms := metrics(t, out)
	first, last := ms[0], ms[len(ms)-1]
	if first.Step != 1 || first.Loss < 5.2 || first.Loss > 5.9 {
		t.Errorf("first line: step %d loss %.4f, want step 1 loss about 5.5", first.Step, first.Loss)
	}
	if last.Step != 200 || !(last.Loss < 3.3) {
		t.Errorf("last line: step %d loss %.4f, want step 200 loss below 3.3", last.Step, last.Loss)
	}
	t.Logf("loss %.4f at step %d, %.4f at step %d", first.Loss, first.Step, last.Loss, last.Step)
}

// TestTrainReproducible: a run is a function of its configuration and seed, and stopping it
// (SIGINT, SIGTERM, or SIGKILL after a periodic checkpoint) and resuming it with -resume changes
// none of its losses, bit for bit.
func TestTrainReproducible(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, "tiny")
	steps := strconv.Itoa(tinySteps)
	fresh := func(name string, extra ...string) string {
		out := filepath.Join(dir, name)
		runTrainOK(t, append([]string{"-config", cfg, "-steps", steps, "-out", out, "-json"}, extra...)...)
		return out
	}
	ref := metrics(t, fresh("reference"))
	if len(ref) != tinySteps || ref[len(ref)-1].Step != tinySteps {
		t.Fatalf("the reference run logged %d lines, want one per step of %d", len(ref), tinySteps)
	}

	t.Run("same seed", func(t *testing.T) {
		sameCurve(t, ref, metrics(t, fresh("again")))
	})
	t.Run("other seed", func(t *testing.T) {
		other := metrics(t, fresh("seed2", "-seed", "2"))
		if math.Float64bits(other[0].Loss) == math.Float64bits(ref[0].Loss) {
			t.Errorf("seed 2 starts at loss %v, as seed 1 does", other[0].Loss)
		}
		differ := 0
		for i := range min(len(other), len(ref)) {
			if other[i].Loss != ref[i].Loss {
				differ++
			}
		}
		if differ < len(ref)*9/10 {
			t.Errorf("seeds 1 and 2 differ at %d of %d steps only", differ, len(ref))
		}
	})

	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		after  int      // signal once this step is logged
		resume []string // extra flags of the resumed run
	}{
		{"SIGINT early", syscall.SIGINT, 1, nil},
		{"SIGTERM", syscall.SIGTERM, 13, []string{"-steps", steps}},
		{"SIGINT late", syscall.SIGINT, 26, nil},
		{"SIGKILL", syscall.SIGKILL, 18, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			signalAfter(t, tc.sig, tc.after, "-config", cfg, "-steps", steps, "-out", out)
			at := latest(t, out)
			if at < 1 || at >= tinySteps {
				t.Fatalf("the checkpoint to resume from is at step %d; want one within the %d steps", at, tinySteps)
			}
			if tc.sig == syscall.SIGKILL {
				// What a kill while writing the next checkpoint leaves: its temporary folder.
				tmp := filepath.Join(train.CheckpointsDir(out), fmt.Sprintf(".step-%07d.tmp-1234", at+4))
				if err := os.Mkdir(tmp, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(tmp, "model.safetensors"), []byte("partial"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, resumed := runTrainOK(t, append([]string{"-resume", out, "-json"}, tc.resume...)...)
			if !strings.Contains(resumed, fmt.Sprintf("from step %d;", at)) {
				t.Errorf("the resumed run does not start from step %d:\n%s", at, resumed)
			}
			sameCurve(t, ref, metrics(t, out))
			entries, err := os.ReadDir(train.CheckpointsDir(out))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if want := []string{"LATEST", fmt.Sprintf("step-%07d", tinySteps)}; !slices.Equal(names, want) {
				t.Errorf("checkpoints after the resumed run: %v, want %v", names, want)
			}
		})
	}
}

// signalAfter runs vktrain train -json with args, sends it sig once it has logged step after,
// and checks that it stopped as it should: exit 0 with a checkpoint of the step it stopped at
// for SIGINT and SIGTERM, killed for SIGKILL. The folder is given with -out or -resume.
func signalAfter(t *testing.T, sig syscall.Signal, after int, args ...string) {
	t.Helper()
	cmd := vktrainCmd(t, append([]string{"train", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sent := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		var m train.Metrics
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step >= after && !sent {
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	err = cmd.Wait()
	if !sent {
		t.Fatalf("the run never logged step %d: %v\n%s", after, err, stderr.String())
	}
	if sig == syscall.SIGKILL {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() {
			t.Fatalf("the killed run ended with %v\n%s", err, stderr.String())
		}
		return
	}
	if err != nil {
		t.Fatalf("the run stopped by %v ended with %v, want exit 0\n%s", sig, err, stderr.String())
	}
	m := regexp.MustCompile(`interrupted at step (\d+); checkpoint written. Continue with: vktrain train -resume (\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("the run ran to its end before %v, or did not say where it stopped and how to go on:\n%s", sig, stderr.String())
	}
	if at, _ := strconv.Atoi(m[1]); latest(t, m[2]) != at {
		t.Fatalf("interrupted at step %d, but LATEST names step %d", at, latest(t, m[2]))
	}
}

// TestTrainResumeLonger: -resume -steps N lengthens the schedule, and the checkpoints written
// after it keep the new length, so that stopping and resuming again (without -steps) still
// follows it.
func TestTrainResumeLonger(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, "tiny")
	longer := func(name string) string {
		out := filepath.Join(dir, name)
		runTrainOK(t, "-config", cfg, "-steps", "20", "-out", out, "-json")
		return out
	}
	ref := longer("reference")
	runTrainOK(t, "-resume", ref, "-steps", strconv.Itoa(tinySteps), "-json")
	want := metrics(t, ref)
	if last := want[len(want)-1].Step; last != tinySteps {
		t.Fatalf("the run resumed with -steps %d ends at step %d", tinySteps, last)
	}

	out := longer("stopped")
	signalAfter(t, syscall.SIGINT, 25, "-resume", out, "-steps", strconv.Itoa(tinySteps))
	if at := latest(t, out); at <= 20 || at >= tinySteps {
		t.Fatalf("interrupted at step %d, want one in (20, %d)", at, tinySteps)
	}
	runTrainOK(t, "-resume", out, "-json")
	sameCurve(t, want, metrics(t, out))
}

// TestCheckpointHuggingFaceLayout: a GPT checkpoint's model.safetensors has Hugging Face GPT-2's
// tensor names and shapes (Conv1D weights stored in x out, the LM head tied to wte), and its
// config.json is a GPT-2 config.
func TestCheckpointHuggingFaceLayout(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "2", "-out", out, "-json")
	ck := filepath.Join(train.CheckpointsDir(out), "step-0000002")

	const v, n, d, f = 256, 24, 32, 128 // vocabulary, context, width, 4*width
	want := map[string][]int{"wte.weight": {v, d}, "wpe.weight": {n, d}, "ln_f.weight": {d}, "ln_f.bias": {d}}
	for l := range 2 {
		h := fmt.Sprintf("h.%d.", l)
		want[h+"ln_1.weight"], want[h+"ln_1.bias"] = []int{d}, []int{d}
		want[h+"attn.c_attn.weight"], want[h+"attn.c_attn.bias"] = []int{d, 3 * d}, []int{3 * d}
		want[h+"attn.c_proj.weight"], want[h+"attn.c_proj.bias"] = []int{d, d}, []int{d}
		want[h+"ln_2.weight"], want[h+"ln_2.bias"] = []int{d}, []int{d}
		want[h+"mlp.c_fc.weight"], want[h+"mlp.c_fc.bias"] = []int{d, f}, []int{f}
		want[h+"mlp.c_proj.weight"], want[h+"mlp.c_proj.bias"] = []int{f, d}, []int{d}
	}
	st, err := safetensors.Read(filepath.Join(ck, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for name, shape := range want {
		tensor, ok := st.Tensors[name]
		switch {
		case !ok:
			t.Errorf("model.safetensors has no %s", name)
		case !slices.Equal(tensor.Shape, shape):
			t.Errorf("%s has shape %v, want %v", name, tensor.Shape, shape)
		}
	}
	for name := range st.Tensors {
		if _, ok := want[name]; !ok {
			t.Errorf("model.safetensors has %s, which GPT-2 has not", name)
		}
	}
	if st.Metadata["format"] != "pt" {
		t.Errorf("metadata format is %q; transformers loads \"pt\"", st.Metadata["format"])
	}

	b, err := os.ReadFile(filepath.Join(ck, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hf map[string]any
	if err := json.Unmarshal(b, &hf); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	for key, val := range map[string]any{"model_type": "gpt2", "n_embd": float64(d), "n_layer": 2.0, "n_head": 2.0,
		"vocab_size": float64(v), "n_positions": float64(n), "n_inner": float64(f)} {
		if hf[key] != val {
			t.Errorf("config.json: %s is %v, want %v", key, hf[key], val)
		}
	}
	if a, _ := hf["architectures"].([]any); len(a) != 1 || a[0] != "GPT2LMHeadModel" {
		t.Errorf("config.json: architectures is %v, want [GPT2LMHeadModel]", hf["architectures"])
	}
}

// snapshot maps every file and folder under dir but the run's lock file to a hash of its
// contents (nil when dir does not exist).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == runlock.Name {
			return nil // the lock file holds the PID of the last process that locked the folder
		}
		if e.IsDir() {
			files[rel+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		files[rel] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// copyRun copies a run folder (files and folders only).
func copyRun(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// setChecksums records the SHA-256 of each of files (in checkpoint ck) in ck/state.json, and
// state.json's in state.sha256, as if the checkpoint had been written with them.
func setChecksums(t *testing.T, ck string, files ...string) {
	t.Helper()
	var state map[string]any
	b, err := os.ReadFile(filepath.Join(ck, "state.json"))
	if err == nil {
		err = json.Unmarshal(b, &state)
	}
	if err != nil {
		t.Fatal(err)
	}
	sums := state["files"].(map[string]any)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[filepath.Base(f)] = hex.EncodeToString(s[:])
	}
	if b, err = json.Marshal(state); err == nil {
		err = os.WriteFile(filepath.Join(ck, "state.json"), b, 0o644)
	}
	if err == nil {
		s := sha256.Sum256(b)
		err = os.WriteFile(filepath.Join(ck, "state.sha256"), []byte(hex.EncodeToString(s[:])+"  state.json\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestTrainBadInputs: each bad input is a clear error (exit 1, on stderr, naming what is wrong)
// and leaves the output folder as it was: not created for a fresh run, byte-identical for a run
// that exists.
func TestTrainBadInputs(t *testing.T) {
	dir := t.TempDir()
	corpus := austen(t)
	done := filepath.Join(dir, "done")
	runTrainOK(t, "-config", tinyConfig(t, dir, "tiny", "warmup = 1"), "-steps", "4", "-out", done, "-json")
	wide := filepath.Join(dir, "wide")
	runTrainOK(t, "-config", tinyConfig(t, dir, "wide", "warmup = 1", "width = 48"), "-steps", "1", "-out", wide, "-json")
	doneCk := filepath.Join(train.CheckpointsDir(done), "step-0000004")

	// lineOf is the 1-based line of the first line of file that starts with prefix.
	lineOf := func(file, prefix string) int {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("%s has no line %q", file, prefix)
		return 0
	}
	malformed := tinyConfig(t, dir, "malformed", `width = "32`)
	unknown := tinyConfig(t, dir, "unknown", "width = 32\nwidht = 32")
	heads := tinyConfig(t, dir, "heads", "heads = 3")
	small := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(small, []byte("It is a truth universally acknowledged.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noCorpus := filepath.Join(dir, "no-such-corpus")

	// corrupt copies the finished run to a new folder and spoils its checkpoint with edit.
	corrupt := func(name string, edit func(ck string)) string {
		out := filepath.Join(dir, name)
		copyRun(t, done, out)
		edit(filepath.Join(train.CheckpointsDir(out), "step-0000004"))
		return out
	}
	flipped := corrupt("flipped", func(ck string) {
		path := filepath.Join(ck, "model.safetensors")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-100] ^= 0x40
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	truncated := corrupt("truncated", func(ck string) {
		path := filepath.Join(ck, "model.safetensors")
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()/2); err != nil {
			t.Fatal(err)
		}
	})
	// A checkpoint whose tensors are another model's (width 48), checksums and all: what a
	// checkpoint assembled from two runs looks like.
	mixed := corrupt("mixed", func(ck string) {
		for _, f := range []string{"model.safetensors", "optimizer.safetensors"} {
			b, err := os.ReadFile(filepath.Join(train.CheckpointsDir(wide), "step-0000001", f))
			if err == nil {
				err = os.WriteFile(filepath.Join(ck, f), b, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			setChecksums(t, ck, filepath.Join(ck, f))
		}
	})

	// A checkpoint whose model.safetensors is a BERT model's (a file copied in from a BERT run).
	bert := corrupt("bert", func(ck string) {
		cfg := config.Model{Arch: "bert", Tokenizer: "byte", Context: 24, Layers: 2, Width: 32, Heads: 2, FFN: 128, TypeVocab: 2}
		var ts []safetensors.Tensor
		for _, p := range model.Params(cfg, 260) {
			ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: make([]float32, p.Size())})
		}
		path := filepath.Join(ck, "model.safetensors")
		if err := safetensors.Write(path, ts, map[string]string{"format": "pt", "vktrain.arch": "bert"}); err != nil {
			t.Fatal(err)
		}
		setChecksums(t, ck, path)
	})

	fresh := func(name string) string { return filepath.Join(dir, "new-"+name) }
	for _, tc := range []struct {
		name string
		args []string
		out  string   // the folder that must stay as it is
		want []string // in the error
		not  string   // not in the error
	}{
		{"malformed TOML", []string{"-config", malformed, "-out", fresh("malformed")}, fresh("malformed"),
			[]string{fmt.Sprintf("%s:%d:", malformed, lineOf(malformed, "width = "))}, ""},
		{"unknown key", []string{"-config", unknown, "-out", fresh("unknown")}, fresh("unknown"),
			[]string{fmt.Sprintf(`%s:%d: unknown key "model.widht"`, unknown, lineOf(unknown, "widht"))}, ""},
		{"width not divisible by heads", []string{"-config", heads, "-out", fresh("heads")}, fresh("heads"),
			[]string{heads, "model.width", "model.heads = 3"}, ""},
		{"corpus too small", []string{"-config", tinyConfig(t, dir, "small", fmt.Sprintf("data = %q", small)), "-out", fresh("small")},
			fresh("small"), []string{small, "too small for one batch"}, ""},
		{"corpus too small via -data", []string{"-preset", "gpt-tiny", "-data", small, "-out", fresh("small-data")},
			fresh("small-data"), []string{small, "too small for one batch"}, ""},
		// The subprocess runs in an empty folder, where the default corpus data/austen is not.
		{"default corpus missing", []string{"-preset", "gpt-tiny", "-out", fresh("default")}, fresh("default"),
			[]string{data.DefaultPath, "run `make data`"}, ""},
		{"corpus missing", []string{"-preset", "gpt-tiny", "-data", noCorpus, "-out", fresh("nocorpus")}, fresh("nocorpus"),
			[]string{noCorpus}, "make data"},
		{"flipped byte in the checkpoint", []string{"-resume", flipped}, flipped,
			[]string{"model.safetensors", "corrupted"}, ""},
		{"truncated checkpoint", []string{"-resume", truncated}, truncated,
			[]string{"model.safetensors", "corrupted"}, ""},
		{"checkpoint of another shape", []string{"-resume", mixed}, mixed,
			[]string{"wte.weight", "shape [256 48]", "[256 32]"}, ""},
		{"checkpoint of another architecture", []string{"-resume", bert}, bert,
			[]string{"model.safetensors", "bert model", "configures gpt"}, ""},
		{"existing run", []string{"-config", tinyConfig(t, dir, "tiny"), "-data", corpus, "-out", done}, done,
			[]string{done, "already holds a training run", "-resume " + done}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, tc.out)
			_, stderr, code := runVktrain(t, vktrainCmd(t, append([]string{"train", "-json"}, tc.args...)...))
			if code != 1 || strings.Contains(stderr, "panic") {
				t.Errorf("exit %d, want 1:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("the error does not say %q:\n%s", w, stderr)
				}
			}
			if tc.not != "" && strings.Contains(stderr, tc.not) {
				t.Errorf("the error says %q:\n%s", tc.not, stderr)
			}
			if after := snapshot(t, tc.out); !maps.Equal(before, after) {
				t.Errorf("%s changed:\nbefore %v\nafter  %v", tc.out, before, after)
			}
			t.Logf("%s", strings.TrimSpace(stderr))
		})
	}
	// The checkpoints that were refused still load as they did.
	if _, err := train.LoadCheckpoint(doneCk); err != nil {
		t.Errorf("the finished run's checkpoint: %v", err)
	}
}

// TestTrainStopsOnNaN: a learning rate far too large makes the loss or the gradient norm
// overflow; training stops with an error that names the step and the last good checkpoint,
// which is kept, loads, and holds finite numbers.
func TestTrainStopsOnNaN(t *testing.T) {
	// On lavapipe, lr 1e6 makes the gradient norm NaN at step 3 while the loss is still finite,
	// and lr 1e7 makes the loss NaN at step 3; which overflows first is not part of the claim.
	for _, lr := range []string{"1e6", "1e7"} {
		t.Run("lr "+lr, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "run")
			cfg := tinyConfig(t, dir, "nan", "lr = "+lr, "min_lr = 0", "warmup = 0", "checkpoint_every = 1")
			_, stderr, code := runVktrain(t, vktrainCmd(t, "train", "-config", cfg, "-steps", "40", "-out", out, "-json"))
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, stderr)
			}
			t.Logf("%s", strings.TrimSpace(stderr))
			m := regexp.MustCompile(`training stopped at step (\d+): (.*(?:NaN|Inf).*); the last good checkpoint is (\S+)`).FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("the error does not name the step, the non-finite value and the last checkpoint:\n%s", stderr)
			}
			step, _ := strconv.Atoi(m[1])
			at := latest(t, out)
			if ck := filepath.Join(train.CheckpointsDir(out), fmt.Sprintf("step-%07d", at)); m[3] != ck {
				t.Fatalf("the error names checkpoint %s; LATEST names %s", m[3], ck)
			}
			if at != step-1 {
				t.Errorf("stopped at step %d; the last checkpoint is at step %d, want %d", step, at, step-1)
			}
			loaded, err := train.LoadCheckpoint(m[3])
			if err != nil {
				t.Fatalf("the last good checkpoint does not load: %v", err)
			}
			for name, vals := range loaded.Params {
				for i, x := range vals {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatalf("the last good checkpoint holds %s[%d] = %v", name, i, x)
					}
				}
			}
			// The step that broke the model may be logged (its loss was finite; the model it
			// left was not), never one after it.
			ms := metrics(t, out)
			if last := ms[len(ms)-1].Step; last != step-1 && last != step {
				t.Errorf("metrics.jsonl ends at step %d; the run failed at step %d", last, step)
			}
		})
	}
}
