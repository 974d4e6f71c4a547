package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommittedSPIRVFollowsConventions checks every committed .spv without needing glslc.
func TestCommittedSPIRVFollowsConventions(t *testing.T) {
	files, err := filepath.Glob("../../shaders/spv/*.spv")
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed SPIR-V found (%v)", err)
	}
	for _, f := range files {
		spv, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkConventions(spv); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// patchDecoration rewrites the first literal of the first OpDecorate with this decoration and
// literal value.
func patchDecoration(t *testing.T, spv []byte, decoration, from, to uint32) []byte {
	t.Helper()
	out := bytes.Clone(spv)
	for i := 20; i+16 <= len(out); {
		w := binary.LittleEndian.Uint32(out[i:])
		n := int(w >> 16)
		if w&0xffff == opDecorate && n == 4 &&
			binary.LittleEndian.Uint32(out[i+8:]) == decoration && binary.LittleEndian.Uint32(out[i+12:]) == from {
			binary.LittleEndian.PutUint32(out[i+12:], to)
			return out
		}
		i += 4 * n
	}
	t.Fatalf("no OpDecorate %d %d", decoration, from)
	return nil
}

func TestConventionViolations(t *testing.T) {
	spv, err := os.ReadFile("../../shaders/spv/axpy.spv")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		spv  []byte
		want string
	}{
		{"set 1", patchDecoration(t, spv, decorationDescriptorSet, 0, 1), "only descriptor set 0"},
		{"binding 12", patchDecoration(t, spv, decorationBinding, 1, 12), "bindings are 0..11"},
		{"storage buffer at 8", patchDecoration(t, spv, decorationBinding, 1, 8), "binding 8 is not a texel buffer"},
		{"workgroup spec id", patchDecoration(t, spv, decorationSpecID, 0, 7), "local_size_x_id = 0"},
		{"not SPIR-V", []byte("#version 450\nvoid main() {}\n\n\n\n\n"), "magic"},
	} {
		err := checkConventions(c.spv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

// TestBuildAndCheck runs the whole tool on a copy of fill.comp; it needs glslc and spirv-val.
func TestBuildAndCheck(t *testing.T) {
	for _, tool := range []string{"glslc", "spirv-val"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := filepath.Join(t.TempDir(), "shaders")
	if err := os.MkdirAll(filepath.Join(dir, "spv"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"fill.comp", "common.glsl"} {
		b, err := os.ReadFile(filepath.Join("../../shaders", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spvPath := func(n string) string { return filepath.Join(dir, "spv", n+".spv") }
	if err := os.WriteFile(spvPath("orphan"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(dir, true, &out); err == nil || !strings.Contains(out.String(), "fill.spv (missing)") ||
		!strings.Contains(out.String(), "orphan.spv (stale") {
		t.Fatalf("check before build: err %v, output:\n%s", err, out.String())
	}
	out.Reset()
	if err := run(dir, false, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(spvPath("orphan")); !os.IsNotExist(err) {
		t.Errorf("orphan.spv not removed (%v)", err)
	}
	first, err := os.ReadFile(spvPath("fill"))
	if err != nil {
		t.Fatal(err)
	}
	if want, err := os.ReadFile("../../shaders/spv/fill.spv"); err == nil && !bytes.Equal(first, want) {
		t.Error("fill.spv built in another folder differs from the committed one")
	}
	if err := run(dir, true, &out); err != nil {
		t.Fatalf("check after build: %v", err)
	}
	if err := os.WriteFile(spvPath("fill"), append(first, 0, 0, 0, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(dir, true, &out); err == nil || !strings.Contains(out.String(), "fill.spv (differs") {
		t.Fatalf("check of a modified .spv: err %v, output:\n%s", err, out.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.comp"), []byte("#version 450\nvoid main() { oops; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(dir, false, &out)
	if err == nil || !strings.Contains(err.Error(), "bad.comp") || !strings.Contains(out.String(), "oops") {
		t.Fatalf("build with a broken shader: err %v, output:\n%s", err, out.String())
	}
	if again, _ := os.ReadFile(spvPath("fill")); !bytes.Equal(again, first) {
		t.Error("the good shader was not rebuilt next to the broken one")
	}
}
