package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vktrain tune writes this device's tuned profile to the user cache, and devices then shows
// the tuned entries in force.
func TestTuneWritesTheUserCacheProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VKTRAIN_CACHE_DIR", dir)
	out, errs, code := vktrain(t, "tune", "-preset", "gpt-tiny", "-ops", "gelu,add", "-quick", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep tuneReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rep.Results) != 2 || filepath.Dir(rep.Out) != dir || !(rep.TunedMs > 0) || rep.TunedMs > rep.BaselineMs {
		t.Fatalf("bad report %+v", rep)
	}
	if _, err := os.Stat(rep.Out); err != nil {
		t.Fatal(err)
	}

	out, errs, code = vktrain(t, "devices", "-json")
	if code != 0 {
		t.Fatalf("devices: exit %d: %s", code, errs)
	}
	var devs []deviceReport
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		t.Fatal(err)
	}
	origins := map[string]string{}
	for _, d := range devs {
		if d.Selected {
			for _, e := range d.Tuning {
				origins[e.Op] = e.Origin + " " + e.Source
			}
		}
	}
	for op, want := range map[string]string{"gelu": "tuned " + rep.Out, "add": "tuned " + rep.Out, "matmul": "vendor embedded:"} {
		if !strings.HasPrefix(origins[op], want) {
			t.Errorf("devices: %s from %q, want %q", op, origins[op], want)
		}
	}

	// Tuning one op again keeps the other's tuned entry.
	if _, errs, code := vktrain(t, "tune", "-preset", "gpt-tiny", "-ops", "gelu", "-quick"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	data, err := os.ReadFile(rep.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "[ops.add]") || !strings.Contains(string(data), "Kept from the profile this one replaces: add.") {
		t.Errorf("retuning gelu lost add:\n%s", data)
	}
}

func TestTuneOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.toml")
	args := []string{"tune", "-preset", "gpt-tiny", "-ops", "gelu", "-quick", "-out", path}
	if _, errs, code := vktrain(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, errs, code := vktrain(t, args...); code != 2 || !strings.Contains(errs, "exists; pass -force") {
		t.Errorf("second run: exit %d, %q; want a refusal", code, errs)
	}
	if _, errs, code := vktrain(t, append(args, "-force")...); code != 0 {
		t.Errorf("-force: exit %d: %s", code, errs)
	}
	out, errs, code := vktrain(t, "devices", "-profile", path)
	if code != 0 || !strings.Contains(out, "override") {
		t.Errorf("devices -profile %s: exit %d, %s\n%s", path, code, errs, out)
	}
}

func TestTuneUsage(t *testing.T) {
	for _, args := range [][]string{
		{"tune", "-ops", "conv"},
		{"tune", "-preset", "gpt-tiny", "-config", "x.toml"},
	} {
		if _, errs, code := vktrain(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errs)
		}
	}
}
