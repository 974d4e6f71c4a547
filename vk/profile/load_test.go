package profile

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const kernelsNow = "1111111111111111111111111111111111111111111111111111111111111111"

// tunedFor is a tuned profile for dev measured with kernels, defining matmul and add.
func tunedFor(dev Device, kernels string) *Profile {
	vendor, driverVersion, subgroup := dev.VendorID, dev.DriverVersion, dev.SubgroupSize
	return &Profile{Name: "tuned", Kernels: kernels,
		Match: Match{VendorID: &vendor, Driver: dev.Driver, DriverVersion: &driverVersion, SubgroupSize: &subgroup},
		Entries: map[string]Entry{
			"matmul": {Op: "matmul", Variant: "regblock", Params: map[string]int{"wg_x": 8, "wg_y": 2, "tm": 16, "tn": 8}},
			"add":    {Op: "add", Variant: "default", Params: map[string]int{"wg_x": 256}},
		}}
}

func writeProfile(t *testing.T, name string, p *Profile) string {
	t.Helper()
	return writeFile(t, name, string(p.Format("written by a test", map[string]string{"add": "a note\non two lines"})))
}

func TestFormatRoundTrip(t *testing.T) {
	dev := llvmpipeDev
	dev.DriverVersion = 7
	p := tunedFor(dev, kernelsNow)
	p.Description = `quotes " and \ and a tab	too`
	id := uint32(0x1234)
	for _, m := range []Match{p.Match, {VendorID: &id, DeviceIDs: [][2]uint32{{1, 2}, {0x6600, 0x66af}}}, {VendorID: &id, DeviceID: &id}, {}} {
		p.Match = m
		text := p.Format("header line", map[string]string{"matmul": "measured"})
		back, err := Parse("x.toml", text)
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		back.Source, back.opLines = "", nil
		for op, e := range back.Entries {
			e.Source = ""
			back.Entries[op] = e
		}
		if !reflect.DeepEqual(back, p) {
			t.Errorf("read back\n%+v\nwant\n%+v\nfrom\n%s", back, p, text)
		}
	}
}

func TestMatchDeviceIDsAndDriverVersion(t *testing.T) {
	p := mustParse(t, "m.toml", "name = \"m\"\n[match]\nvendor_id = 0x1002\ndevice_ids = [[0x6600, 0x66af], [0x98e4, 0x98e4]]\ndriver_version = 9\n")
	for _, tt := range []struct {
		dev  Device
		spec int
		ok   bool
	}{
		{Device{VendorID: 0x1002, DeviceID: 0x6600, DriverVersion: 9}, 3, true},
		{Device{VendorID: 0x1002, DeviceID: 0x98e4, DriverVersion: 9}, 3, true},
		{Device{VendorID: 0x1002, DeviceID: 0x66b0, DriverVersion: 9}, 0, false},
		{Device{VendorID: 0x1002, DeviceID: 0x6600, DriverVersion: 8}, 0, false},
	} {
		if spec, ok := p.Matches(tt.dev); spec != tt.spec || ok != tt.ok {
			t.Errorf("%+v: Matches = %d, %v; want %d, %v", tt.dev, spec, ok, tt.spec, tt.ok)
		}
	}
	for body, want := range map[string]string{
		"[match]\ndevice_ids = [[1, 2]]\n":                               "match.device_ids needs match.vendor_id",
		"[match]\nvendor_id = 1\ndevice_id = 1\ndevice_ids = [[1, 2]]\n": "excludes match.device_id",
		"[match]\nvendor_id = 1\ndevice_ids = [1, 2]\n":                  "must be an array of [first, last] ranges",
		"[match]\nvendor_id = 1\ndevice_ids = [[3, 2]]\n":                "range [0x3, 0x2] is empty",
		"[match]\nvendor_id = 1\ndevice_ids = []\n":                      "must be an array",
		"[match]\nvendor_id = 1\ndriver_version = -1\n":                  "match.driver_version = -1 is out of range",
		"kernels = 5\n": "kernels must be a string",
		"[match]\nvendor_id = 1\ndevice_ids = [[1, 2]]\ndevice_idz = 3\n": `unknown key "match.device_idz"`,
	} {
		_, err := Parse("bad.toml", []byte("name = \"x\"\n"+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}

// origins maps each op in force to "origin source".
func origins(set *Set) map[string]string {
	out := map[string]string{}
	for _, e := range set.Entries() {
		out[e.Op] = e.Origin + " " + e.Source
	}
	return out
}

func TestLoadOrder(t *testing.T) {
	dev := llvmpipeDev
	tuned := writeProfile(t, "tuned.toml", tunedFor(dev, kernelsNow))
	override := writeFile(t, "mine.toml", "name = \"mine\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = 16\n")
	set, err := Load(dev, llvmpipeLimits, Sources{Override: override, Tuned: tuned, Kernels: kernelsNow})
	if err != nil {
		t.Fatal(err)
	}
	got := origins(set)
	for op, want := range map[string]string{
		"gelu":   FromOverride + " " + override + " (mine)",
		"matmul": FromTuned + " " + tuned + " (tuned)",
		"axpy":   FromVendor + " embedded:llvmpipe.toml (llvmpipe)",
	} {
		if got[op] != want {
			t.Errorf("%s from %q, want %q", op, got[op], want)
		}
	}
	if n := set.Notes(); len(n) != 0 {
		t.Errorf("notes %q, want none", n)
	}

	// The generic default comes last: a vendor profile that leaves an op out falls back to it.
	vendor := mustParse(t, "v.toml", "name = \"v\"\n[match]\nvendor_id = 0x10005\n[ops.gelu]\nvariant = \"default\"\nwg_x = 8\n")
	generic := mustParse(t, "g.toml", "name = \"g\"\n[ops.gelu]\nvariant = \"default\"\nwg_x = 64\n[ops.axpy]\nvariant = \"default\"\nwg_x = 64\n")
	set, err = resolve([]*Profile{generic, vendor}, nil, nil, dev, llvmpipeLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := origins(set), map[string]string{"gelu": "vendor v.toml (v)", "axpy": "default g.toml (g)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLoadIgnoresUnusableTunedProfile(t *testing.T) {
	dev := llvmpipeDev
	dev.DriverVersion = 3
	other := dev
	other.DriverVersion = 4
	wider := dev
	wider.SubgroupSize = 16
	invalid := tunedFor(dev, kernelsNow)
	invalid.Entries["gelu"] = Entry{Op: "gelu", Variant: "default", Params: map[string]int{"wg_x": 12}}
	tests := []struct {
		name, path, want string
	}{
		{"stale kernel set", writeProfile(t, "stale.toml", tunedFor(dev, strings.Repeat("2", 64))),
			"it was measured with kernel set 222222222222, these shaders are 111111111111 (run vktrain tune again)"},
		{"other driver version", writeProfile(t, "other.toml", tunedFor(other, kernelsNow)), "was tuned for another device or driver"},
		{"other subgroup size", writeProfile(t, "wider.toml", tunedFor(wider, kernelsNow)), "was tuned for another device or driver"},
		{"entry the device refuses", writeProfile(t, "invalid.toml", invalid), "ops.gelu: workgroup of 12 invocations is not a multiple of the subgroup size 8"},
		{"syntax error", writeFile(t, "broken.toml", "name = \n"), "broken.toml:1:"},
		{"missing file", filepath.Join(t.TempDir(), "none.toml"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Load(dev, llvmpipeLimits, Sources{Tuned: tt.path, Kernels: kernelsNow})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range set.Entries() {
				if e.Origin != FromVendor {
					t.Errorf("%s from %s %s, want the shipped profile", e.Op, e.Origin, e.Source)
				}
			}
			notes := set.Notes()
			if tt.want == "" {
				if len(notes) != 0 {
					t.Errorf("notes %q, want none", notes)
				}
				return
			}
			if len(notes) != 1 || !strings.Contains(notes[0], tt.want) || !strings.Contains(notes[0], tt.path) {
				t.Errorf("notes %q, want one naming %s and containing %q", notes, tt.path, tt.want)
			}
		})
	}
}

func TestLoadStaleOverride(t *testing.T) {
	path := writeProfile(t, "old.toml", tunedFor(llvmpipeDev, strings.Repeat("3", 64)))
	set, err := Load(llvmpipeDev, llvmpipeLimits, Sources{Override: path, Kernels: kernelsNow})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := set.Entry("matmul"); e.Origin != FromVendor {
		t.Errorf("matmul from %s %s, want the shipped profile", e.Origin, e.Source)
	}
	if n := set.Notes(); len(n) != 1 || !strings.Contains(n[0], path) || !strings.Contains(n[0], "ignored") {
		t.Errorf("notes %q, want one saying %s is ignored", n, path)
	}
}

func TestTunedPath(t *testing.T) {
	dev := Device{VendorID: 0x10de, DeviceID: 0x2330, Driver: "NVIDIA Proprietary/1", DriverVersion: 42, SubgroupSize: 32}
	if got, want := TunedPath("/c", dev), filepath.Join("/c", "tuned-10de-2330-nvidia-proprietary-1-42-sg32.toml"); got != want {
		t.Errorf("TunedPath = %q, want %q", got, want)
	}
	if got := TunedPath("", dev); got != "" {
		t.Errorf("TunedPath without a folder = %q, want \"\"", got)
	}
}

func TestSetWith(t *testing.T) {
	set, err := Load(llvmpipeDev, llvmpipeLimits, Sources{})
	if err != nil {
		t.Fatal(err)
	}
	shipped, _ := set.Entry("gelu")
	e := Entry{Op: "gelu", Variant: "default", Params: map[string]int{"wg_x": 2 * shipped.Get("wg_x")}}
	with := set.With(e)
	e.Params["wg_x"] = 1
	if got, _ := with.Entry("gelu"); got.Get("wg_x") != 2*shipped.Get("wg_x") {
		t.Errorf("With: gelu wg_x = %d, want %d", got.Get("wg_x"), 2*shipped.Get("wg_x"))
	}
	if got, _ := set.Entry("gelu"); got.Get("wg_x") != shipped.Get("wg_x") {
		t.Errorf("With changed the original set: gelu wg_x = %d", got.Get("wg_x"))
	}
}
