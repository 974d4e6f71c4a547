package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for vktrain itself, so tests can run it as a
// subprocess with an environment of their own (e.g. with no Vulkan driver).
func TestMain(m *testing.M) {
	if os.Getenv("VKTRAIN_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func vktrain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestDevicesJSON(t *testing.T) {
	out, errs, code := vktrain(t, "devices", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var devs []map[string]any
	if err := json.Unmarshal([]byte(out), &devs); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	selected := 0
	for _, d := range devs {
		for _, key := range []string{"name", "type", "vendor_id", "driver", "subgroup_size", "selected", "tuning"} {
			if _, ok := d[key]; !ok {
				t.Errorf("device %v has no %q", d["name"], key)
			}
		}
		if d["selected"] == true {
			selected++
		}
	}
	if selected != 1 {
		t.Errorf("%d devices selected, want 1", selected)
	}
}

func TestDevicesText(t *testing.T) {
	out, errs, code := vktrain(t, "devices", "-device", "llvmpipe")
	if code != 0 {
		t.Skipf("no lavapipe: %s", errs)
	}
	for _, want := range []string{"* ", "llvmpipe", "subgroup size", "shared memory", "max storage buffer", "heap 0", "op matmul"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchMatmulJSON(t *testing.T) {
	out, errs, code := vktrain(t, "bench", "matmul", "-m", "33", "-n", "17", "-k", "65", "-runs", "1", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r matmulResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r.Op != "matmul" || r.M != 33 || r.N != 17 || r.K != 65 || !(r.Ms > 0) || !(r.GFLOPS > 0) || r.Device == "" || r.Variant == "" {
		t.Fatalf("bad result %+v", r)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("-json must print one line, got %d more", n)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"bench"}, 2, "name a benchmark"},
		{[]string{"bench", "conv"}, 2, "unknown benchmark"},
		{[]string{"bench", "matmul", "-m", "0"}, 2, "positive"},
		{[]string{"devices", "-nope"}, 2, "flag provided but not defined"},
		{[]string{"devices", "-device", "no-such-gpu"}, 1, "the devices are"},
		{[]string{"bench", "matmul", "-profile", "/no/such/file.toml"}, 1, "file.toml"},
	} {
		_, errs, code := vktrain(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("vktrain %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	if out, _, code := vktrain(t, "devices", "-h"); code != 0 {
		t.Errorf("-h exits %d: %s", code, out)
	}
}

func TestConfigShow(t *testing.T) {
	out, errs, code := vktrain(t, "config", "show", "gpt-tiny")
	if code != 0 || !strings.Contains(out, "[model]") || !strings.Contains(out, "width = 64") {
		t.Fatalf("config show: %d %q %q", code, out, errs)
	}
	out, _, code = vktrain(t, "config", "list")
	if code != 0 || !strings.Contains(out, "gpt-small:") {
		t.Fatalf("config list: %d %q", code, out)
	}
	// Each description is whole: a sentence, even when the preset's comment runs over lines.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(line, ".") {
			t.Errorf("config list cuts a description: %q", line)
		}
	}
	if _, errs, code := vktrain(t, "config", "show", "nope"); code != 1 || !strings.Contains(errs, "gpt-tiny") {
		t.Fatalf("unknown preset: %d %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := vktrain(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vktrain ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// With no Vulkan loader, or no driver, every GPU command must fail with a message that says
// what to install.
func TestNoVulkanNamesPackages(t *testing.T) {
	envs := map[string][]string{
		"no driver": {"VK_ICD_FILENAMES=/nonexistent.json", "VK_DRIVER_FILES=/nonexistent.json"},
		"no loader": {"VKTRAIN_VULKAN_LOADER=/nonexistent/libvulkan.so.1"},
	}
	for name, env := range envs {
		for _, args := range [][]string{{"devices"}, {"bench", "matmul", "-m", "8", "-n", "8", "-k", "8"}} {
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(append(os.Environ(), "VKTRAIN_TEST_AS_MAIN=1", "VKTRAIN_VALIDATE=0"), env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s: vktrain %v succeeded:\n%s", name, args, out)
			}
			if !strings.Contains(string(out), "mesa-vulkan-drivers") || !strings.Contains(string(out), "libvulkan1") {
				t.Errorf("%s: vktrain %v: the error does not name the packages:\n%s", name, args, out)
			}
		}
	}
}
