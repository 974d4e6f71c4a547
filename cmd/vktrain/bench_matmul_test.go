package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchMatmulTransposesBiasBeta(t *testing.T) {
	out, errs, code := vktrain(t, "bench", "matmul", "-m", "20", "-n", "12", "-k", "9", "-ta", "-tb", "-bias", "-beta", "1", "-runs", "1", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r matmulResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if !r.TA || !r.TB || !r.Bias || r.Beta != 1 || r.M != 20 || r.N != 12 || r.K != 9 || !(r.GFLOPS > 0) {
		t.Fatalf("bad result %+v", r)
	}
}

func TestBenchMatmulGPT(t *testing.T) {
	out, errs, code := vktrain(t, "bench", "matmul", "-gpt", "-runs", "1", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(gptShapes()) {
		t.Fatalf("%d lines, want one per GPT shape (%d):\n%s", len(lines), len(gptShapes()), out)
	}
	for _, line := range lines {
		var r matmulResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, line)
		}
		form := strings.Fields(r.Label)[0]
		if want := map[string][2]bool{"fwd": {false, false}, "dW": {true, false}, "dx": {false, true}}[form]; [2]bool{r.TA, r.TB} != want || !(r.GFLOPS > 0) {
			t.Errorf("%s: ta %v tb %v, %g GFLOP/s", r.Label, r.TA, r.TB, r.GFLOPS)
		}
	}
}
