package profile

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var (
	llvmpipeDev = Device{VendorID: 0x10005, Driver: "llvmpipe", SubgroupSize: 8, Name: "llvmpipe (LLVM 15.0.7, 256 bits)"}
	nvidiaDev   = Device{VendorID: 0x10de, DeviceID: 0x2330, Driver: "NVIDIA", Name: "NVIDIA H100 80GB HBM3"}

	llvmpipeLimits = Limits{SharedMemory: 32768, MaxInvocations: 1024, MaxWorkgroupSize: [3]uint32{1024, 1024, 1024}, SubgroupSize: 8}
	nvidiaLimits   = Limits{SharedMemory: 49152, MaxInvocations: 1024, MaxWorkgroupSize: [3]uint32{1024, 1024, 64}, SubgroupSize: 32}
	amdLimits      = Limits{SharedMemory: 65536, MaxInvocations: 1024, MaxWorkgroupSize: [3]uint32{1024, 1024, 1024}, SubgroupSize: 64}
	intelLimits    = Limits{SharedMemory: 32768, MaxInvocations: 512, MaxWorkgroupSize: [3]uint32{512, 512, 512}, SubgroupSize: 32}

	amdWave32Limits       = Limits{SharedMemory: 65536, MaxInvocations: 1024, MaxWorkgroupSize: [3]uint32{1024, 1024, 1024}, SubgroupSize: 32}
	intelSubgroup16Limits = Limits{SharedMemory: 65536, MaxInvocations: 1024, MaxWorkgroupSize: [3]uint32{1024, 1024, 64}, SubgroupSize: 16}
)

// writeFile writes body to a file name in a fresh temporary directory and returns its path.
func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, name, body string) *Profile {
	t.Helper()
	p, err := Parse(name, []byte(body))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return p
}

const goodProfile = `# a test profile
name = "test"
description = "for tests"

[match]
vendor_id = 0x10de
device_id = 0x2330
driver = "nvidia"

[ops.gelu]
variant = "default"
wg_x = 128

[ops.matmul]
variant = "tiled"
wg_x = 8
wg_y = 16
bm = 64
bn = 32
bk = 8
tm = 4
tn = 4
`

func TestParseGood(t *testing.T) {
	p := mustParse(t, "good.toml", goodProfile)
	if p.Name != "test" || p.Description != "for tests" || p.Source != "good.toml" {
		t.Errorf("got name %q description %q source %q", p.Name, p.Description, p.Source)
	}
	if p.Match.VendorID == nil || *p.Match.VendorID != 0x10de || p.Match.DeviceID == nil || *p.Match.DeviceID != 0x2330 || p.Match.Driver != "nvidia" {
		t.Errorf("got match %+v", p.Match)
	}
	mm := p.Entries["matmul"]
	want := map[string]int{"wg_x": 8, "wg_y": 16, "bm": 64, "bn": 32, "bk": 8, "tm": 4, "tn": 4}
	if mm.Op != "matmul" || mm.Variant != "tiled" || len(mm.Params) != len(want) {
		t.Fatalf("got matmul entry %+v", mm)
	}
	for k, v := range want {
		if mm.Get(k) != v {
			t.Errorf("matmul %s = %d, want %d", k, mm.Get(k), v)
		}
	}
	if got := p.Entries["gelu"].Get("wg_x"); got != 128 {
		t.Errorf("gelu wg_x = %d, want 128", got)
	}
	if _, ok := p.Entries["axpy"]; ok {
		t.Errorf("axpy entry present, file defines none")
	}
	if err := Validate(mm, nvidiaLimits); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // expected error, after "bad.toml:"
	}{
		{"unknown top-level key", "name = \"x\"\n\ncolour = 1\n", `3: unknown key "colour"`},
		{"unknown match key", "name = \"x\"\n[match]\nvendor_id = 1\nvendor = 2\n", `4: unknown key "match.vendor"`},
		{"unknown param", "name = \"x\"\n[ops.matmul]\nvariant = \"regblock\"\nwg_x = 8\nwg_y = 1\n# comment\ntm = 16\ntn = 16\nfoo = 3\n",
			`9: unknown key "ops.matmul.foo" (variant regblock takes wg_x, wg_y, tm, tn)`},
		{"param of other variant", "name = \"x\"\n[ops.matmul]\nvariant = \"regblock\"\nwg_x = 8\nwg_y = 1\ntm = 16\ntn = 16\nbk = 8\n",
			`8: unknown key "ops.matmul.bk"`},
		{"dotted unknown key", "name = \"x\"\nops.gelu.variant = \"default\"\nops.gelu.wg_x = 64\nops.gelu.wg_y = 1\n",
			`4: unknown key "ops.gelu.wg_y"`},
		{"inline table unknown key", "name = \"x\"\n[ops]\ngelu = { variant = \"default\", wg_x = 64, extra = 1 }\n",
			`3: unknown key "ops.gelu.extra"`},
		{"nested too deep", "name = \"x\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = 64\n[ops.gelu.sub]\na = 1\n", `5: unknown key "ops.gelu.sub"`},
		{"unknown key after multi-line string", "name = \"x\"\ndescription = \"\"\"\nfoo = 1\n[ops.gelu]\n\"\"\"\nfoo = 2\n", `6: unknown key "foo"`},
		{"unknown op", "name = \"x\"\n\n[ops.conv]\nvariant = \"default\"\n", `3: unknown op "conv" (known: adamw, add, `},
		{"unknown variant", "name = \"x\"\n[ops.matmul]\n\nvariant = \"naive\"\n", `4: unknown variant "naive" for op matmul (known: regblock, texel, tiled)`},
		{"missing variant", "name = \"x\"\n[ops.gelu]\nwg_x = 64\n", `2: ops.gelu has no variant`},
		{"missing param", "name = \"x\"\n[ops.gelu]\nvariant = \"default\"\n", `2: ops.gelu: variant default needs param "wg_x"`},
		{"float param", "name = \"x\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = 64.0\n", `4: ops.gelu.wg_x must be an integer, not Float`},
		{"string param", "name = \"x\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = \"64\"\n", `4: ops.gelu.wg_x must be an integer, not String`},
		{"huge param", "name = \"x\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = 99999999999\n", `4: ops.gelu.wg_x = 99999999999 is out of range`},
		{"vendor id not integer", "name = \"x\"\n[match]\nvendor_id = \"nvidia\"\n", `3: match.vendor_id must be an integer, not String`},
		{"device id without vendor id", "name = \"x\"\n[match]\ndevice_id = 5\n", `3: match.device_id needs match.vendor_id`},
		{"syntax error", "name = \"x\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = = 64\n", `4: expected value`},
		{"duplicate key", "name = \"x\"\nname = \"y\"\n", `2: Key 'name' has already been defined`},
		{"missing name", "description = \"x\"\n", ` missing required key "name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.toml", []byte(tt.body))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if want := "bad.toml:" + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q\nwant prefix %q", err, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tiled := func(wgX, wgY, bm, bn, bk, tm, tn int) Entry {
		return Entry{Op: "matmul", Variant: "tiled", Params: map[string]int{
			"wg_x": wgX, "wg_y": wgY, "bm": bm, "bn": bn, "bk": bk, "tm": tm, "tn": tn}}
	}
	regblock := func(wgX, wgY, tm, tn int) Entry {
		return Entry{Op: "matmul", Variant: "regblock", Params: map[string]int{"wg_x": wgX, "wg_y": wgY, "tm": tm, "tn": tn}}
	}
	gelu := func(wgX int) Entry { return Entry{Op: "gelu", Variant: "default", Params: map[string]int{"wg_x": wgX}} }
	sub4 := llvmpipeLimits
	sub4.SubgroupSize = 4
	noSubgroup := nvidiaLimits
	noSubgroup.SubgroupSize = 0
	tests := []struct {
		name string
		e    Entry
		lim  Limits
		want string // substring of the error; "" for valid
	}{
		{"tiled ok", tiled(16, 16, 64, 64, 16, 4, 4), nvidiaLimits, ""},
		{"tiled shared memory exactly fits", tiled(16, 16, 128, 128, 32, 8, 8), llvmpipeLimits, ""},
		{"tiled shared memory too big", tiled(16, 16, 128, 128, 64, 8, 8), llvmpipeLimits,
			"tile needs 65536 bytes of shared memory, device has 32768"},
		{"tiled bm mismatch", tiled(16, 16, 60, 64, 16, 4, 4), nvidiaLimits, "bm = 60 is not wg_y*tm = 64"},
		{"tiled bn mismatch", tiled(16, 16, 64, 32, 16, 4, 4), nvidiaLimits, "bn = 32 is not wg_x*tn = 64"},
		{"tiled bk not multiple of 4", tiled(16, 16, 64, 64, 6, 4, 4), nvidiaLimits, "bk = 6 is not a multiple of 4"},
		{"tiled bk zero", tiled(16, 16, 64, 64, 0, 4, 4), nvidiaLimits, "bk = 0 is out of range [1, 65536]"},
		{"tiled missing param", Entry{Op: "matmul", Variant: "tiled", Params: map[string]int{"wg_x": 16}}, nvidiaLimits,
			`variant tiled needs param "wg_y"`},
		{"regblock ok subgroup 8", regblock(8, 1, 16, 16), llvmpipeLimits, ""},
		{"regblock ok subgroup 4", regblock(4, 1, 16, 16), sub4, ""},
		{"not a subgroup multiple", regblock(6, 1, 16, 16), llvmpipeLimits,
			"workgroup of 6 invocations is not a multiple of the subgroup size 8"},
		{"2d not a subgroup multiple", regblock(4, 3, 16, 16), llvmpipeLimits,
			"workgroup of 12 invocations is not a multiple of the subgroup size 8"},
		{"unknown subgroup size", gelu(48), noSubgroup, ""},
		{"regblock tn not vec4", regblock(8, 1, 16, 6), llvmpipeLimits, "tn = 6 is not a multiple of 4"},
		{"regblock tm not vec4", regblock(8, 1, 6, 8), llvmpipeLimits, "tm = 6 is not a multiple of 4"},
		{"regblock too many accumulators", regblock(8, 1, 64, 32), llvmpipeLimits, "tm*tn = 2048 exceeds 1024"},
		{"regblock extra param", Entry{Op: "matmul", Variant: "regblock", Params: map[string]int{
			"wg_x": 8, "wg_y": 1, "tm": 4, "tn": 4, "bk": 4}}, llvmpipeLimits, `variant regblock has no param "bk"`},
		{"too many invocations", regblock(64, 32, 4, 4), nvidiaLimits, "workgroup of 2048 invocations exceeds the device's maximum of 1024"},
		{"wg_x above max", gelu(2048), nvidiaLimits, "wg_x = 2048 exceeds the device's maximum workgroup size 1024 along x"},
		{"wg_y above max", regblock(1, 1024, 4, 4), intelLimits, "wg_y = 1024 exceeds the device's maximum workgroup size 512 along y"},
		{"gelu ok", gelu(64), amdLimits, ""},
		{"gelu zero", gelu(0), amdLimits, "wg_x = 0 is out of range"},
		{"unknown op", Entry{Op: "conv", Variant: "default"}, amdLimits, `unknown op "conv"`},
		{"unknown variant", Entry{Op: "axpy", Variant: "vec4"}, amdLimits, `unknown variant "vec4" for op axpy`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.e, tt.lim)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadRefusesInvalidOverride(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // expected error after "FILE:"
	}{
		{"tile too big for shared memory", `name = "big"
[ops.matmul]
variant = "tiled"
wg_x = 16
wg_y = 16
bm = 128
bn = 128
bk = 64
tm = 8
tn = 8
`, "2: ops.matmul: tile needs 65536 bytes of shared memory, device has 32768"},
		{"not a subgroup multiple", `name = "odd"

[ops.gelu]
variant = "default"
wg_x = 60
`, "3: ops.gelu: workgroup of 60 invocations is not a multiple of the subgroup size 8"},
		{"bm is not wg_y*tm", `name = "bm"
[ops.matmul]
variant = "tiled"
wg_x = 8
wg_y = 8
bm = 16
bn = 32
bk = 8
tm = 4
tn = 4
`, "2: ops.matmul: bm = 16 is not wg_y*tm = 32"},
		{"unknown key", "name = \"u\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = 64\nwgx = 64\n", `5: unknown key "ops.gelu.wgx"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "override.toml", tt.body)
			_, err := Load(llvmpipeDev, llvmpipeLimits, Sources{Override: path})
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if want := path + ":" + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q\nwant prefix %q", err, want)
			}
		})
	}
}

func TestLoadMissingOverride(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	if _, err := Load(nvidiaDev, nvidiaLimits, Sources{Override: path}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got error %v, want one naming %s", err, path)
	}
}

func TestLoadSpecificity(t *testing.T) {
	tests := []struct {
		name        string
		dev         Device
		lim         Limits
		wantVariant string
		wantSource  string
	}{
		{"llvmpipe", llvmpipeDev, llvmpipeLimits, "texel", "embedded:llvmpipe.toml (llvmpipe)"},
		{"llvmpipe driver in other case", Device{VendorID: 0x10005, Driver: "LLVMpipe"}, llvmpipeLimits, "texel", "embedded:llvmpipe.toml (llvmpipe)"},
		{"llvmpipe, 512-bit vectors", Device{VendorID: 0x10005, Driver: "llvmpipe", SubgroupSize: 16}, targets["embedded:llvmpipe-sg16.toml"][0], "texel", "embedded:llvmpipe-sg16.toml (llvmpipe-sg16)"},
		{"nvidia", nvidiaDev, nvidiaLimits, "tiled", "embedded:nvidia.toml (nvidia)"},
		{"amd gcn (polaris 10)", Device{VendorID: 0x1002, DeviceID: 0x67df, Driver: "radv"}, amdLimits, "tiled", "embedded:amd-gcn.toml (amd-gcn)"},
		{"amd cdna (mi300x)", Device{VendorID: 0x1002, DeviceID: 0x74a1}, amdLimits, "tiled", "embedded:amd-gcn.toml (amd-gcn)"},
		{"amd rdna 2 (navi 21)", Device{VendorID: 0x1002, DeviceID: 0x73bf, Driver: "radv"}, amdLimits, "tiled", "embedded:amd-rdna.toml (amd-rdna)"},
		{"amd, unknown chip", Device{VendorID: 0x1002, DeviceID: 0xffff}, amdLimits, "tiled", "embedded:amd-rdna.toml (amd-rdna)"},
		{"intel", Device{VendorID: 0x8086, DeviceID: 0x56a0, Driver: "Intel open-source Mesa driver"}, intelLimits, "tiled", "embedded:intel.toml (intel)"},
		{"unknown vendor", Device{VendorID: 0x1234}, amdLimits, "tiled", "embedded:default.toml (default)"},
		{"llvmpipe driver, other vendor", Device{VendorID: 0x1234, Driver: "llvmpipe"}, amdLimits, "tiled", "embedded:default.toml (default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Load(tt.dev, tt.lim, Sources{})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []string{"gelu", "axpy", "matmul"} {
				e, err := set.Entry(op)
				if err != nil {
					t.Fatal(err)
				}
				if e.Source != tt.wantSource {
					t.Errorf("%s from %q, want %q", op, e.Source, tt.wantSource)
				}
			}
			if e, _ := set.Entry("matmul"); e.Variant != tt.wantVariant {
				t.Errorf("matmul variant %q, want %q", e.Variant, tt.wantVariant)
			}
			if _, err := set.Entry("conv"); err == nil {
				t.Errorf("Entry(conv): no error")
			}
		})
	}
}

func TestMatches(t *testing.T) {
	p := mustParse(t, "m.toml", "name = \"m\"\n[match]\nvendor_id = 0x10de\ndevice_id = 0x2330\ndriver = \"NVIDIA\"\n")
	generic := mustParse(t, "g.toml", "name = \"g\"\n")
	tests := []struct {
		name     string
		p        *Profile
		dev      Device
		wantSpec int
		wantOK   bool
	}{
		{"all three fields", p, nvidiaDev, 3, true},
		{"driver substring, any case", p, Device{VendorID: 0x10de, DeviceID: 0x2330, Driver: "nvidia proprietary"}, 3, true},
		{"other device id", p, Device{VendorID: 0x10de, DeviceID: 0x2331, Driver: "NVIDIA"}, 0, false},
		{"same device id, other vendor", p, Device{VendorID: 0x1002, DeviceID: 0x2330, Driver: "NVIDIA"}, 0, false},
		{"other driver", p, Device{VendorID: 0x10de, DeviceID: 0x2330, Driver: "nouveau"}, 0, false},
		{"generic", generic, nvidiaDev, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, ok := tt.p.Matches(tt.dev)
			if spec != tt.wantSpec || ok != tt.wantOK {
				t.Errorf("Matches = %d, %v; want %d, %v", spec, ok, tt.wantSpec, tt.wantOK)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	generic := mustParse(t, "a-generic.toml", `name = "generic"
[ops.gelu]
variant = "default"
wg_x = 44   # not a multiple of the subgroup size: only an error where in force
[ops.axpy]
variant = "default"
wg_x = 64
`)
	vendor := mustParse(t, "b-vendor.toml", `name = "vendor"
[match]
vendor_id = 0x10005
[ops.gelu]
variant = "default"
wg_x = 32
`)
	vendorTie := mustParse(t, "c-vendor.toml", `name = "vendor2"
[match]
driver = "llvm"
[ops.gelu]
variant = "default"
wg_x = 16
[ops.axpy]
variant = "default"
wg_x = 16
`)
	tests := []struct {
		name     string
		profiles []*Profile
		dev      Device
		want     map[string]string // op -> source
		wantErr  string
	}{
		{"more specific wins, shadowed invalid entry is fine", []*Profile{generic, vendor}, llvmpipeDev,
			map[string]string{"gelu": "b-vendor.toml (vendor)", "axpy": "a-generic.toml (generic)"}, ""},
		{"tie goes to the first file", []*Profile{generic, vendor, vendorTie}, llvmpipeDev,
			map[string]string{"gelu": "b-vendor.toml (vendor)", "axpy": "c-vendor.toml (vendor2)"}, ""},
		{"invalid entry in force", []*Profile{generic, vendor}, nvidiaDev, nil,
			"a-generic.toml:2: ops.gelu: workgroup of 44 invocations is not a multiple of the subgroup size 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := resolve(tt.profiles, nil, nil, tt.dev, llvmpipeLimits)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			entries := set.Entries()
			if len(entries) != len(tt.want) {
				t.Fatalf("got %d entries, want %d", len(entries), len(tt.want))
			}
			for _, e := range entries {
				if e.Source != tt.want[e.Op] {
					t.Errorf("%s from %q, want %q", e.Op, e.Source, tt.want[e.Op])
				}
			}
		})
	}
}

func TestLoadOverride(t *testing.T) {
	path := writeFile(t, "mine.toml", `name = "mine"
[match]
vendor_id = 0xdead   # ignored for an override
[ops.matmul]
variant = "regblock"
wg_x = 16
wg_y = 2
tm = 8
tn = 8
`)
	for _, dev := range []Device{llvmpipeDev, nvidiaDev} {
		set, err := Load(dev, llvmpipeLimits, Sources{Override: path})
		if err != nil {
			t.Fatal(err)
		}
		entries := set.Entries()
		var ops []string
		for _, e := range entries {
			ops = append(ops, e.Op)
		}
		if want := strings.Join(slices.Sorted(maps.Keys(Variants())), ","); strings.Join(ops, ",") != want {
			t.Errorf("%s: entries for %s, want every op: %s", dev.Name, strings.Join(ops, ","), want)
		}
		mm, _ := set.Entry("matmul")
		if mm.Source != path+" (mine)" || mm.Variant != "regblock" || mm.Get("wg_x") != 16 || mm.Get("tm") != 8 {
			t.Errorf("%s: matmul = %+v, want the override's", dev.Name, mm)
		}
		gelu, _ := set.Entry("gelu")
		if !strings.HasPrefix(gelu.Source, "embedded:") {
			t.Errorf("%s: gelu from %q, want an embedded profile", dev.Name, gelu.Source)
		}
		mm.Params["wg_x"] = 1
		if again, _ := set.Entry("matmul"); again.Get("wg_x") != 16 {
			t.Errorf("changing a returned entry changed the set")
		}
	}
}

// targets lists, for each embedded profile, the limits of devices it is meant for.
var targets = map[string][]Limits{
	"embedded:default.toml":  {nvidiaLimits, amdLimits, intelLimits},
	"embedded:nvidia.toml":   {nvidiaLimits},
	"embedded:amd-gcn.toml":  {amdLimits, amdWave32Limits},
	"embedded:amd-rdna.toml": {amdLimits, amdWave32Limits},
	"embedded:intel.toml":    {intelLimits, intelSubgroup16Limits},
	"embedded:llvmpipe.toml": {llvmpipeLimits, func() Limits {
		l := llvmpipeLimits
		l.SubgroupSize = 4
		return l
	}()},
	"embedded:llvmpipe-sg16.toml": {func() Limits {
		l := llvmpipeLimits
		l.SubgroupSize = 16
		return l
	}()},
}

func TestEmbedded(t *testing.T) {
	profiles, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if len(profiles) != len(targets) {
		t.Errorf("%d embedded profiles, %d in targets: add the new ones to targets", len(profiles), len(targets))
	}
	for _, p := range profiles {
		lims, ok := targets[p.Source]
		if !ok {
			t.Errorf("%s: no target limits", p.Source)
		}
		if len(p.Entries) == 0 {
			t.Errorf("%s: no entries", p.Source)
		}
		for _, lim := range lims {
			for _, e := range p.Entries {
				if err := Validate(e, lim); err != nil {
					t.Errorf("%s: ops.%s under %+v: %v", p.Source, e.Op, lim, err)
				}
			}
		}
	}
	// The generic default must cover every known op, so Load always resolves them all.
	set, err := Load(Device{}, amdLimits, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	for op := range Variants() {
		if _, err := set.Entry(op); err != nil {
			t.Errorf("unknown device: %v", err)
		}
	}
}
