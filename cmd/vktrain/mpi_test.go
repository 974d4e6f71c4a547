package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vktrain/vktrain/internal/mpi/mpitest"
	"github.com/vktrain/vktrain/train"
)

// The data-parallel tests build vktrain with -tags mpi and run it under mpirun, 2 ranks on
// lavapipe, against the default build (this test binary) in one process.

// mpiRun runs `mpirun args...` (-np N and the vktrain binary among them) in a folder of its own
// and returns its output and exit status.
func mpiRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := mpitest.Command(t, 3*time.Minute, args...)
	cmd.Dir = t.TempDir()
	return runVktrain(t, cmd)
}

// mpiTrainOK trains with vktrain bin in np ranks and fails the test unless it succeeds.
func mpiTrainOK(t *testing.T, bin string, np int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := mpiRun(t, append([]string{"-np", strconv.Itoa(np), bin, "train"}, args...)...)
	if code != 0 {
		t.Fatalf("%d ranks: vktrain train %v: exit %d\n%s", np, args, code, stderr)
	}
	return stdout, stderr
}

// closeCurve fails unless got logs the same steps and tokens as want with training and
// validation losses and gradient norms within rel of want's.
func closeCurve(t *testing.T, want, got []train.Metrics, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d metrics lines, want %d", len(got), len(want))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= rel*math.Abs(b) }
	for i, w := range want {
		g := got[i]
		valOK := (g.ValLoss == nil) == (w.ValLoss == nil) && (g.ValLoss == nil || near(*g.ValLoss, *w.ValLoss))
		if g.Step != w.Step || g.Tokens != w.Tokens || !near(g.Loss, w.Loss) || !near(g.GradNorm, w.GradNorm) || !valOK {
			t.Fatalf("line %d: step %d tokens %d loss %v grad norm %v; want step %d tokens %d loss %v grad norm %v (within %g)",
				i+1, g.Step, g.Tokens, g.Loss, g.GradNorm, w.Step, w.Tokens, w.Loss, w.GradNorm, rel)
		}
	}
}

// rankPID is the process id of rank rank among mpirun's children, 0 until it has started.
func rankPID(mpirun, rank int) int {
	kids, _ := os.ReadFile("/proc/" + strconv.Itoa(mpirun) + "/task/" + strconv.Itoa(mpirun) + "/children")
	for _, f := range strings.Fields(string(kids)) {
		env, _ := os.ReadFile("/proc/" + f + "/environ")
		if bytes.Contains(env, []byte("\x00OMPI_COMM_WORLD_RANK="+strconv.Itoa(rank)+"\x00")) {
			pid, _ := strconv.Atoi(f)
			return pid
		}
	}
	return 0
}

// waitSteps waits until the run in out has logged steps steps, failing after two minutes.
func waitSteps(t *testing.T, out string, steps int, stderr *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ms, err := train.ReadMetrics(filepath.Join(out, "metrics.jsonl")); err == nil && len(ms) >= steps {
			return
		}
	}
	t.Fatalf("no step %d after two minutes:\n%s", steps, stderr.String())
}

// TestDataParallel: 2 ranks hold bitwise the same weights after every step and give the losses
// of one process with grad_accum 2 (within 1e-6: see docs/scaling.md for why not bitwise); the
// MPI build with one rank gives bitwise the default build's run; a rank killed mid-run ends the
// job within seconds, and the run resumes, bitwise, with 2 ranks or, keeping the global batch,
// with 1; SIGUSR1 stops every rank at the same step with a checkpoint; ranks with different
// configurations are refused; a V-cycle trains under 2 ranks.
func TestDataParallel(t *testing.T) {
	bin := mpitest.Build(t, "github.com/vktrain/vktrain/cmd/vktrain", false)
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, "tiny", "dropout = 0.1", "steps = 16", "warmup = 2", "eval_every = 5")

	two := filepath.Join(dir, "two")
	mpiTrainOK(t, bin, 2, "-config", cfg, "-out", two, "-check-ranks")
	want := metrics(t, two)
	if n := len(want); n != 16 || want[n-1].Tokens != 16*2*4*24 {
		t.Fatalf("2 ranks logged %d steps, the last with %d tokens", n, want[n-1].Tokens)
	}

	t.Run("one process with grad_accum 2", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "accum")
		runTrainOK(t, "-config", cfg, "-set", "train.grad_accum=2", "-out", out)
		closeCurve(t, metrics(t, out), want, 1e-6)
	})

	t.Run("MPI build with one rank", func(t *testing.T) {
		one, mpiOne := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "mpi-one")
		runTrainOK(t, "-config", cfg, "-out", one)
		mpiTrainOK(t, bin, 1, "-config", cfg, "-out", mpiOne)
		sameCurve(t, metrics(t, one), metrics(t, mpiOne))
		a, b := snapshot(t, train.CheckpointsDir(one)), snapshot(t, train.CheckpointsDir(mpiOne))
		for _, f := range []string{"step-0000016/model.safetensors", "step-0000016/optimizer.safetensors"} {
			if a[f] == "" || a[f] != b[f] {
				t.Errorf("%s: %s in one process, %s with one MPI rank", f, a[f], b[f])
			}
		}
	})

	t.Run("kill a rank, then resume", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "killed")
		cmd := mpitest.Command(t, 3*time.Minute, "-np", "2", bin, "train", "-config", cfg, "-out", out)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitSteps(t, out, 6, &errb)
		pid := rankPID(cmd.Process.Pid, 1)
		if pid == 0 {
			t.Fatal("no rank 1 among mpirun's children")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		err := cmd.Wait()
		if took := time.Since(killed); err == nil || took > 20*time.Second {
			t.Fatalf("after rank 1 was killed the job ended after %v with %v:\n%s", took, err, errb.String())
		}
		t.Logf("the job ended %v after rank 1 was killed: %v", time.Since(killed).Round(time.Millisecond), err)
		if latest(t, out) >= 16 {
			t.Fatalf("the run finished before rank 1 was killed")
		}
		other, refused := filepath.Join(t.TempDir(), "one-rank"), filepath.Join(t.TempDir(), "three-ranks")
		copyRun(t, out, other)
		copyRun(t, out, refused)

		mpiTrainOK(t, bin, 2, "-resume", out)
		sameCurve(t, want, metrics(t, out))

		_, stderr := mpiTrainOK(t, bin, 1, "-resume", other)
		if !strings.Contains(stderr, "train.grad_accum 1 -> 2") {
			t.Errorf("resuming with 1 rank says nothing of grad_accum:\n%s", stderr)
		}
		closeCurve(t, want, metrics(t, other), 1e-6)

		_, stderr, code := mpiRun(t, "-np", "3", bin, "train", "-resume", refused)
		if code == 0 || !strings.Contains(stderr, "3 ranks cannot share evenly") {
			t.Errorf("resuming 2 micro-batches per step with 3 ranks: exit %d\n%s", code, stderr)
		}
	})

	t.Run("SIGUSR1 to mpirun stops every rank at one step", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "stopped")
		cmd := mpitest.Command(t, 3*time.Minute, "-np", "2", bin, "train", "-config", cfg, "-steps", "2000", "-out", out)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitSteps(t, out, 6, &errb)
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(errb.String(), "interrupted at step") {
			t.Fatalf("after SIGUSR1: %v\n%s", err, errb.String())
		}
		ms := metrics(t, out)
		if last := ms[len(ms)-1].Step; latest(t, out) != last || last >= 2000 {
			t.Errorf("stopped with the checkpoint at step %d, the metrics at %d", latest(t, out), last)
		}
	})

	t.Run("ranks with different configurations", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "mixed")
		_, stderr, code := mpiRun(t, "-np", "1", bin, "train", "-config", cfg, "-out", out, ":",
			"-np", "1", bin, "train", "-config", cfg, "-out", out, "-seed", "2")
		if code == 0 || !strings.Contains(stderr, "differ in their configuration, training data or checkpoint") {
			t.Errorf("ranks with different seeds: exit %d\n%s", code, stderr)
		}
	})

	t.Run("bench train", func(t *testing.T) {
		stdout, stderr, code := mpiRun(t, "-np", "2", bin, "bench", "train", "-config", cfg, "-steps", "2", "-json")
		var res trainResult
		if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || strings.Count(stdout, "\n") != 1 {
			t.Fatalf("exit %d, %v; want one JSON line from rank 0:\n%s\n%s", code, err, stdout, stderr)
		}
		if res.Ranks != 2 || res.TokensPerS <= 0 || res.FLOPsStep <= 0 || res.ReduceMsPerStep <= 0 ||
			res.ExposedMsStep <= 0 || res.Hidden < 0 || res.Hidden >= 1 {
			t.Errorf("bench train under 2 ranks: %+v", res)
		}
	})

	t.Run("V-cycle", func(t *testing.T) {
		vcfg := tinyVCycleConfig(t, t.TempDir())
		two, accum := filepath.Join(t.TempDir(), "two"), filepath.Join(t.TempDir(), "accum")
		mpiTrainOK(t, bin, 2, "-config", vcfg, "-out", two, "-check-ranks")
		runTrainOK(t, "-config", vcfg, "-set", "train.grad_accum=2", "-out", accum)
		ms := metrics(t, two)
		if levels := ms[len(ms)-1].Level; len(ms) != 30 || levels != 1 || ms[10].Level != 2 {
			t.Errorf("the 2-rank V-cycle logged %d steps, levels %d ... %d", len(ms), ms[10].Level, levels)
		}
		closeCurve(t, metrics(t, accum), ms, 1e-6)
	})
}
