package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// vktrain plan prints the plan as JSON with every term; train -dry-run prints it too and trains
// nothing; a preset whose token table exceeds the binding limit is planned in chunks; a model
// that cannot fit exits 1 with the reason.
func TestPlan(t *testing.T) {
	out, errs, code := vktrain(t, "plan", "-preset", "gpt-tiny", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var plan struct {
		Terms []struct {
			Kind  string `json:"kind"`
			Bytes uint64 `json:"bytes"`
		} `json:"terms"`
		Total   uint64 `json:"device_bytes"`
		Fits    bool   `json:"fits"`
		Staging uint64 `json:"host_staging_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(plan.Terms) != 5 || plan.Total == 0 || !plan.Fits || plan.Staging == 0 {
		t.Errorf("plan: %s", out)
	}
	dir := t.TempDir()
	out, errs, code = vktrain(t, "train", "-preset", "gpt-tiny", "-dry-run", "-out", dir+"/run")
	if code != 0 || !strings.Contains(out, "AdamW moments") {
		t.Errorf("train -dry-run: exit %d: %s%s", code, out, errs)
	}
	t.Setenv("VKTRAIN_CHUNK_BYTES", "134217728") // lavapipe's binding limit, on any device
	out, errs, code = vktrain(t, "plan", "-preset", "gpt2-124m")
	if code != 0 || !strings.Contains(out, "wte.weight (2 chunks)") {
		t.Errorf("plan -preset gpt2-124m: exit %d: %s%s", code, out, errs)
	}
	_, errs, code = vktrain(t, "plan", "-preset", "gpt-tiny", "-set", "model.layers=10000000")
	if code != 1 || !strings.Contains(errs, "with gradients and AdamW moments") {
		t.Errorf("ten million layers: exit %d: %s", code, errs)
	}
}
