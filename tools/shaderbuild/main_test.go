package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/shaders"
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

// TestBuildAndCheck runs the whole tool on a copy of axpy.comp; it needs glslc and spirv-val.
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
	for _, f := range []string{"axpy.comp", "common.glsl"} {
		b, err := os.ReadFile(filepath.Join("../../shaders", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spvPath := func(n string) string { return filepath.Join(dir, "spv", n+".spv") }
	axpyOnly := map[string]shaders.Contract{"axpy": shaders.Contracts["axpy"]}
	if err := os.WriteFile(spvPath("orphan"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(dir, true, axpyOnly, &out); err == nil || !strings.Contains(out.String(), "axpy.spv (missing)") ||
		!strings.Contains(out.String(), "orphan.spv (stale") {
		t.Fatalf("check before build: err %v, output:\n%s", err, out.String())
	}
	out.Reset()
	if err := run(dir, false, axpyOnly, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(spvPath("orphan")); !os.IsNotExist(err) {
		t.Errorf("orphan.spv not removed (%v)", err)
	}
	first, err := os.ReadFile(spvPath("axpy"))
	if err != nil {
		t.Fatal(err)
	}
	if want, err := os.ReadFile("../../shaders/spv/axpy.spv"); err == nil && !bytes.Equal(first, want) {
		t.Error("axpy.spv built in another folder differs from the committed one")
	}
	if err := run(dir, true, axpyOnly, &out); err != nil {
		t.Fatalf("check after build: %v", err)
	}
	out.Reset()
	wrong := map[string]shaders.Contract{"axpy": {Push: reflect.TypeFor[shaders.DropoutPush](), Spec: reflect.TypeFor[shaders.Workgroup]()}, "ghost": {}}
	if err := run(dir, true, wrong, &out); err == nil || !strings.Contains(out.String(), `push constant 1 "alpha": Go field DropoutPush.Threshold has another name`) ||
		!strings.Contains(out.String(), `entry "ghost"`) {
		t.Fatalf("check against a wrong contract: err %v, output:\n%s", err, out.String())
	}
	out.Reset()
	if err := run(dir, true, nil, &out); err == nil || !strings.Contains(out.String(), "axpy.comp has no entry in shaders.Contracts") {
		t.Fatalf("check without a contract: err %v, output:\n%s", err, out.String())
	}
	if err := os.WriteFile(spvPath("axpy"), append(first, 0, 0, 0, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(dir, true, axpyOnly, &out); err == nil || !strings.Contains(out.String(), "axpy.spv (differs") {
		t.Fatalf("check of a modified .spv: err %v, output:\n%s", err, out.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.comp"), []byte("#version 450\nvoid main() { oops; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(dir, false, axpyOnly, &out)
	if err == nil || !strings.Contains(err.Error(), "bad.comp") || !strings.Contains(out.String(), "oops") {
		t.Fatalf("build with a broken shader: err %v, output:\n%s", err, out.String())
	}
	if again, _ := os.ReadFile(spvPath("axpy")); !bytes.Equal(again, first) {
		t.Error("the good shader was not rebuilt next to the broken one")
	}
}

// committed reads a shader's committed SPIR-V and its GLSL declarations.
func committed(t *testing.T, name string) (*module, glslDecls) {
	t.Helper()
	spv, err := os.ReadFile(filepath.Join("../../shaders/spv", name+".spv"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parse(spv)
	if err != nil {
		t.Fatal(err)
	}
	d, err := readDecls("../../shaders", name)
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

// TestContractsMatchCommittedSPIRV checks shaders.Contracts against every committed .spv and
// its GLSL, without needing glslc.
func TestContractsMatchCommittedSPIRV(t *testing.T) {
	sources, err := filepath.Glob("../../shaders/*.comp")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no shader sources found (%v)", err)
	}
	var names []string
	for _, s := range sources {
		names = append(names, strings.TrimSuffix(filepath.Base(s), ".comp"))
	}
	if err := checkRegistry(names, shaders.Contracts); err != nil {
		t.Error(err)
	}
	absent := map[string][]uint32{}
	for _, n := range names {
		m, d := committed(t, n)
		if _, ok, err := m.pushBlock(); !ok || err != nil || d.push == nil {
			t.Errorf("%s: no push-constant block read from the SPIR-V (%v) or the GLSL (%v)", n, err, d.push)
		}
		if len(d.spec) == 0 && shaders.Contracts[n].Spec != reflect.TypeFor[shaders.Workgroup]() {
			t.Errorf("%s: no constant_id read from the GLSL", n)
		}
		a, err := checkContract(n, m, d, shaders.Contracts[n])
		if err != nil {
			t.Error(err)
		}
		absent[n] = a
	}
	if err := checkOptionalMarks(shaders.Contracts, absent); err != nil {
		t.Error(err)
	}
	if got := absent["attention_bwd_rowdot"]; !reflect.DeepEqual(got, []uint32{4, 5, 6, 7}) {
		t.Errorf("attention_bwd_rowdot lacks the optional constants %v, want 4 5 6 7 (glslc keeps them now? drop their optional marks)", got)
	}
}

// fieldsOf lists the fields of the struct type t, ready for reflect.StructOf.
func fieldsOf(t reflect.Type) []reflect.StructField {
	f := make([]reflect.StructField, t.NumField())
	for i := range f {
		f[i] = t.Field(i)
		f[i].Offset, f[i].Index = 0, nil
	}
	return f
}

// structCopy is a reflect.StructOf copy of the struct type t, with edit applied to its fields.
func structCopy(t reflect.Type, edit func(f []reflect.StructField)) reflect.Type {
	f := fieldsOf(t)
	edit(f)
	return reflect.StructOf(f)
}

func field(t *testing.T, f []reflect.StructField, name string) *reflect.StructField {
	for i := range f {
		if f[i].Name == name {
			return &f[i]
		}
	}
	t.Fatalf("no field %s", name)
	return nil
}

// TestContractMismatches breaks one thing in a copy of a real contract type at a time and checks
// that the comparison names it.
func TestContractMismatches(t *testing.T) {
	matmul, matmulDecls := committed(t, "matmul")
	probs, probsDecls := committed(t, "attention_probs")
	push, spec := reflect.TypeFor[shaders.MatmulPush](), reflect.TypeFor[shaders.MatmulSpec]()
	attention := reflect.TypeFor[shaders.AttentionSpec]()
	swap := func(a, b string) func([]reflect.StructField) {
		return func(f []reflect.StructField) {
			x, y := field(t, f, a), field(t, f, b)
			*x, *y = *y, *x
		}
	}
	retype := func(name string, to reflect.Type) func([]reflect.StructField) {
		return func(f []reflect.StructField) { field(t, f, name).Type = to }
	}
	retag := func(name, tag string) func([]reflect.StructField) {
		return func(f []reflect.StructField) { field(t, f, name).Tag = reflect.StructTag(tag) }
	}
	u32, i32, f32 := reflect.TypeFor[uint32](), reflect.TypeFor[int32](), reflect.TypeFor[float32]()
	for _, c := range []struct {
		name   string
		shader string
		m      *module
		decls  glslDecls
		push   reflect.Type
		spec   reflect.Type
		want   []string
	}{
		{"float and uint swapped", "matmul", matmul, matmulDecls, structCopy(push, swap("Alpha", "HasBias")), spec,
			[]string{`push constant 13 "alpha": Go struct.HasBias at offset 52 uint32 (4 bytes), SPIR-V offset 52 float`,
				`push constant 15 "hasBias": Go struct.Alpha at offset 60 float32 (4 bytes), SPIR-V offset 60 uint`}},
		{"two uints swapped", "matmul", matmul, matmulDecls, structCopy(push, swap("M", "N")), spec,
			[]string{`push constant 0 "M": Go field struct.N has another name`, `push constant 1 "N": Go field struct.M has another name`}},
		{"float as uint", "matmul", matmul, matmulDecls, structCopy(push, retype("Beta", u32)), spec,
			[]string{`matmul.comp: push constant 14 "beta": Go struct.Beta at offset 56 uint32 (4 bytes), SPIR-V offset 56 float`}},
		{"a member missing", "matmul", matmul, matmulDecls, reflect.StructOf(fieldsOf(push)[:push.NumField()-1]), spec,
			[]string{"the push-constant block has 17 members, Go struct has 16 fields", `push constant 16 "rowsFast": no Go field (struct has 16)`,
				"the push-constant block is 68 bytes, Go struct 64"}},
		{"a member inserted", "matmul", matmul, matmulDecls, structCopy(push, func(f []reflect.StructField) {
			copy(f[1:], f[:len(f)-1])
			f[0] = reflect.StructField{Name: "Pad", Type: u32}
		}), spec, []string{`push constant 0 "M": Go field struct.Pad has another name`,
			`push constant 13 "alpha": Go struct.StrideC at offset 52 uint32 (4 bytes), SPIR-V offset 52 float (4 bytes)`}},
		{"a member too many", "matmul", matmul, matmulDecls, structCopy(push, func(f []reflect.StructField) {
			f[len(f)-1] = reflect.StructField{Name: "RowsFast", Type: reflect.ArrayOf(2, u32)}
		}), spec, []string{`push constant 16 "rowsFast": Go struct.RowsFast at offset 64 [2]uint32 (8 bytes), SPIR-V offset 64 uint (4 bytes)`,
			"the push-constant block is 68 bytes, Go struct 72"}},
		{"spec id changed", "matmul", matmul, matmulDecls, push, structCopy(spec, retag("TM", `spec:"12"`)),
			[]string{`spec constant 12: Go struct.TM, the GLSL declares no layout(constant_id = 12)`,
				`spec constant 3 "TM" (uint): no field of Go struct has spec:"3"`}},
		{"spec ids swapped", "matmul", matmul, matmulDecls, push, structCopy(spec, func(f []reflect.StructField) {
			field(t, f, "TM").Tag, field(t, f, "TN").Tag = `spec:"4"`, `spec:"3"`
		}), []string{`spec constant 4 "TN": Go field struct.TM has another name`}},
		{"spec id twice", "matmul", matmul, matmulDecls, push, structCopy(spec, retag("TN", `spec:"3"`)),
			[]string{`struct.TM and struct.TN both have spec:"3"`}},
		{"spec kind", "matmul", matmul, matmulDecls, push, structCopy(spec, retype("TransA", f32)),
			[]string{`spec constant 5 "TRANS_A": Go struct.TransA is float32, SPIR-V uint`}},
		{"spec tag missing", "matmul", matmul, matmulDecls, push, structCopy(spec, retag("SG", ``)),
			[]string{`field SG has no spec:"ID" tag`}},
		{"spec tag malformed", "matmul", matmul, matmulDecls, push, structCopy(spec, retag("SG", `spec:"7,maybe"`)),
			[]string{`field SG: tag spec:"7,maybe"`}},
		{"no workgroup", "matmul", matmul, matmulDecls, push, structCopy(spec, func(f []reflect.StructField) {
			f[0] = reflect.StructField{Name: "Group", Type: u32, Tag: `spec:"0"`}
		}), []string{"does not embed shaders.Workgroup"}},
		{"bool as int", "attention_probs", probs, probsDecls, reflect.TypeFor[shaders.AttentionPush](), structCopy(attention, retype("Causal", i32)),
			[]string{`spec constant 4 "CAUSAL": Go struct.Causal is int32, SPIR-V bool`}},
		{"eliminated, not optional", "attention_probs", probs, probsDecls, reflect.TypeFor[shaders.AttentionPush](), structCopy(attention, retag("CH", `spec:"6"`)),
			[]string{`spec constant 6 "CH": Go struct.CH, not in the SPIR-V`, `spec:"6,optional"`}},
	} {
		_, err := checkContract(c.shader, c.m, c.decls, shaders.Contract{Push: c.push, Spec: c.spec})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%v\nlacks %q", c.name, err, w)
			}
		}
	}
}

func TestOptionalMarksMustBeNeeded(t *testing.T) {
	fwd := map[string]shaders.Contract{"attention_fwd": shaders.Contracts["attention_fwd"]}
	err := checkOptionalMarks(fwd, map[string][]uint32{"attention_fwd": nil})
	if err == nil || !strings.Contains(err.Error(), `AttentionSpec.CH is tagged spec:"6,optional", but every shader of AttentionSpec (attention_fwd) keeps constant 6`) {
		t.Errorf("an optional mark no shader needs: %v", err)
	}
	if err := checkOptionalMarks(fwd, map[string][]uint32{"attention_fwd": {6}}); err != nil {
		t.Errorf("a needed optional mark: %v", err)
	}
	if err := checkOptionalMarks(fwd, map[string][]uint32{}); err != nil {
		t.Errorf("a type whose shaders were not checked: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	err := checkRegistry([]string{"axpy", "gelu"}, map[string]shaders.Contract{"axpy": shaders.Contracts["axpy"], "ghost": shaders.Contracts["axpy"]})
	for _, w := range []string{"gelu.comp has no entry in shaders.Contracts", `entry "ghost", there is no ghost.comp`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("registry error %v lacks %q", err, w)
		}
	}
}
