// Package profile reads tuning profiles: TOML files that give, per device, the kernel
// variant and integer parameters (workgroup sizes, tiles) of each compute op.
//
// Profiles are embedded from profiles/*.toml (the shipped vendor profiles and the generic
// default); a device's tuned profile (written by vktrain tune to the user cache) and an
// override file may be given as well. See Load for the order and Parse for the file checks.
package profile

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/vktrain/vktrain/internal/tomlkeys"

	"github.com/BurntSushi/toml"
)

// Limits are the device limits a profile entry is checked against.
type Limits struct {
	SharedMemory     uint32    // maxComputeSharedMemorySize, bytes
	MaxInvocations   uint32    // maxComputeWorkGroupInvocations
	MaxWorkgroupSize [3]uint32 // maxComputeWorkGroupSize
	SubgroupSize     uint32    // 0 if unknown
}

// Device identifies a device for matching.
type Device struct {
	VendorID, DeviceID uint32
	Driver             string // driver name, e.g. "llvmpipe", "NVIDIA"
	DriverVersion      uint32 // as the driver reports it (vendor-specific encoding)
	SubgroupSize       uint32 // lavapipe's follows LP_NATIVE_VECTOR_WIDTH: 4, 8 or 16
	Name               string // device name
}

// Entry is one op's setting in force: the variant, its integer parameters, and where it
// came from.
type Entry struct {
	Op      string         `json:"op"`
	Variant string         `json:"variant"`
	Params  map[string]int `json:"params"`
	Source  string         `json:"source,omitempty"` // the file, then the profile name in parentheses
	Origin  string         `json:"origin,omitempty"` // the step of Load's order it won at (the From* constants)
}

// Get returns the value of parameter name, or 0 if the entry has no such parameter.
// Validated entries have every parameter of their variant.
func (e Entry) Get(name string) int { return e.Params[name] }

// Match holds the [match] fields of a profile; nil or empty fields are not given.
type Match struct {
	VendorID      *uint32
	DeviceID      *uint32     // only given together with VendorID
	DeviceIDs     [][2]uint32 // inclusive ranges of device IDs; only with VendorID, not with DeviceID
	Driver        string      // case-insensitive substring of Device.Driver
	DriverVersion *uint32     // exact, as tuned profiles record it
	SubgroupSize  *uint32     // exact
}

// Profile is one parsed profile file.
type Profile struct {
	Name        string
	Description string
	Kernels     string // the kernel-set hash a tuned profile was measured with; "" for hand-written ones
	Match       Match
	Entries     map[string]Entry // by op
	Source      string           // the file name given to Parse

	opLines map[string]int // line of each op's table, for error messages
}

// Matches reports whether every [match] field the profile gives matches dev, and if so
// its specificity: the number of fields given. A profile without fields matches every
// device with specificity 0.
func (p *Profile) Matches(dev Device) (specificity int, ok bool) {
	m := p.Match
	equal := func(want *uint32, got uint32) bool { return want != nil && *want == got }
	for _, field := range []struct{ given, matches bool }{
		{m.VendorID != nil, equal(m.VendorID, dev.VendorID)},
		{m.DeviceID != nil, equal(m.DeviceID, dev.DeviceID)},
		{m.DeviceIDs != nil, slices.ContainsFunc(m.DeviceIDs, func(r [2]uint32) bool { return r[0] <= dev.DeviceID && dev.DeviceID <= r[1] })},
		{m.Driver != "", strings.Contains(strings.ToLower(dev.Driver), strings.ToLower(m.Driver))},
		{m.DriverVersion != nil, equal(m.DriverVersion, dev.DriverVersion)},
		{m.SubgroupSize != nil, equal(m.SubgroupSize, dev.SubgroupSize)},
	} {
		if !field.given {
			continue
		}
		if !field.matches {
			return 0, false
		}
		specificity++
	}
	return specificity, true
}

// Parse parses one profile file's bytes; name is the file name used in errors and
// sources. It checks the schema (unknown keys, unknown op or variant, missing or
// non-integer parameters) but neither matches a device nor checks limits. Errors
// start with "name:line: ".
func Parse(name string, data []byte) (*Profile, error) {
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &file{name: name, raw: raw, md: md, lines: tomlkeys.Lines(string(data))}
	for _, k := range md.Keys() {
		if err := f.checkKey(k); err != nil {
			return nil, err
		}
	}
	return f.profile()
}

// file is a decoded profile file under check.
type file struct {
	name  string
	raw   map[string]any
	md    toml.MetaData
	lines map[string]int
}

// errorf returns an error that names the file and the line of key (or of its nearest
// parent found).
func (f *file) errorf(key toml.Key, format string, args ...any) error {
	for i := len(key); i > 0; i-- {
		if line, ok := f.lines[key[:i].String()]; ok {
			return fmt.Errorf("%s:%d: %s", f.name, line, fmt.Sprintf(format, args...))
		}
	}
	return fmt.Errorf("%s: %s", f.name, fmt.Sprintf(format, args...))
}

// checkKey refuses a key the schema does not know.
func (f *file) checkKey(k toml.Key) error {
	known := false
	switch {
	case len(k) == 1:
		known = slices.Contains([]string{"name", "description", "kernels", "match", "ops"}, k[0])
	case k[0] == "match":
		known = len(k) == 2 && slices.Contains([]string{"vendor_id", "device_id", "device_ids", "driver", "driver_version", "subgroup_size"}, k[1])
	case k[0] == "ops" && len(k) <= 3:
		if _, err := lookupOp(k[1]); err != nil {
			return f.errorf(k[:2], "%v", err)
		}
		if len(k) == 2 || k[2] == "variant" {
			return nil
		}
		spec, err := f.variant(k[1])
		if err != nil {
			return err
		}
		if !spec.Has(k[2]) {
			return f.errorf(k, "unknown key %q (variant %s takes %s)", k.String(), spec.Name, strings.Join(spec.Params, ", "))
		}
		return nil
	}
	if !known {
		return f.errorf(k, "unknown key %q", k.String())
	}
	return nil
}

// table returns the table at key, which must be one if present.
func (f *file) table(key ...string) (map[string]any, error) {
	var v any = f.raw
	for _, k := range key {
		v = v.(map[string]any)[k]
		if v == nil {
			return nil, nil
		}
		if _, ok := v.(map[string]any); !ok {
			return nil, f.errorf(key, "%s must be a table, not %s", toml.Key(key), f.md.Type(key...))
		}
	}
	return v.(map[string]any), nil
}

// str returns the string at key in t, which must be a string if present.
func (f *file) str(t map[string]any, key ...string) (string, bool, error) {
	v, ok := t[key[len(key)-1]]
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, f.errorf(key, "%s must be a string, not %s", toml.Key(key), f.md.Type(key...))
	}
	return s, true, nil
}

// integer returns the integer at key in t, which must lie in [lo, hi] if present.
func (f *file) integer(t map[string]any, lo, hi int64, key ...string) (int64, bool, error) {
	v, ok := t[key[len(key)-1]]
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, false, f.errorf(key, "%s must be an integer, not %s", toml.Key(key), f.md.Type(key...))
	}
	if n < lo || n > hi {
		return 0, false, f.errorf(key, "%s = %d is out of range [%d, %d]", toml.Key(key), n, lo, hi)
	}
	return n, true, nil
}

// variant returns the spec of op's variant as the file gives it.
func (f *file) variant(op string) (VariantSpec, error) {
	t, err := f.table("ops", op)
	if err != nil {
		return VariantSpec{}, err
	}
	key := toml.Key{"ops", op, "variant"}
	name, ok, err := f.str(t, key...)
	if err != nil {
		return VariantSpec{}, err
	}
	if !ok {
		return VariantSpec{}, f.errorf(key[:2], "%s has no variant", key[:2])
	}
	spec, err := lookup(op, name)
	if err != nil {
		return VariantSpec{}, f.errorf(key, "%v", err)
	}
	return spec, nil
}

// profile builds the Profile from a file whose keys all passed checkKey.
func (f *file) profile() (*Profile, error) {
	p := &Profile{Source: f.name, Entries: map[string]Entry{}, opLines: map[string]int{}}
	var ok bool
	var err error
	if p.Name, ok, err = f.str(f.raw, "name"); err != nil {
		return nil, err
	}
	if !ok || p.Name == "" {
		return nil, fmt.Errorf("%s: missing required key \"name\"", f.name)
	}
	if p.Description, _, err = f.str(f.raw, "description"); err != nil {
		return nil, err
	}
	if p.Kernels, _, err = f.str(f.raw, "kernels"); err != nil {
		return nil, err
	}
	if p.Match, err = f.match(); err != nil {
		return nil, err
	}

	ops, err := f.table("ops")
	if err != nil {
		return nil, err
	}
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		spec, err := f.variant(op)
		if err != nil {
			return nil, err
		}
		t, _ := f.table("ops", op) // a table: variant checked it
		e := Entry{Op: op, Variant: spec.Name, Params: map[string]int{},
			Source: fmt.Sprintf("%s (%s)", f.name, p.Name)}
		for _, param := range spec.Params {
			key := toml.Key{"ops", op, param}
			n, ok, err := f.integer(t, math.MinInt32, math.MaxInt32, key...)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, f.errorf(key[:2], "%s: variant %s needs param %q", key[:2], spec.Name, param)
			}
			e.Params[param] = int(n)
		}
		p.Entries[op] = e
		p.opLines[op] = f.lines[toml.Key{"ops", op}.String()]
	}
	return p, nil
}

// match reads the [match] table.
func (f *file) match() (Match, error) {
	var m Match
	t, err := f.table("match")
	if err != nil || t == nil {
		return m, err
	}
	for _, field := range []struct {
		key string
		dst **uint32
	}{{"vendor_id", &m.VendorID}, {"device_id", &m.DeviceID}, {"driver_version", &m.DriverVersion}, {"subgroup_size", &m.SubgroupSize}} {
		n, ok, err := f.integer(t, 0, math.MaxUint32, "match", field.key)
		if err != nil {
			return m, err
		}
		if ok {
			id := uint32(n)
			*field.dst = &id
		}
	}
	if m.DeviceID != nil && m.VendorID == nil {
		return m, f.errorf(toml.Key{"match", "device_id"}, "match.device_id needs match.vendor_id")
	}
	if m.DeviceIDs, err = f.ranges(t, "match", "device_ids"); err != nil {
		return m, err
	}
	if m.DeviceIDs != nil && (m.VendorID == nil || m.DeviceID != nil) {
		return m, f.errorf(toml.Key{"match", "device_ids"}, "match.device_ids needs match.vendor_id and excludes match.device_id")
	}
	driver, ok, err := f.str(t, "match", "driver")
	if err != nil {
		return m, err
	}
	if ok && driver == "" {
		return m, f.errorf(toml.Key{"match", "driver"}, "match.driver must not be empty")
	}
	m.Driver = driver
	return m, nil
}

// ranges reads an array of inclusive [first, last] ranges of uint32 at key in t; nil if absent.
func (f *file) ranges(t map[string]any, key ...string) ([][2]uint32, error) {
	v, ok := t[key[len(key)-1]]
	if !ok {
		return nil, nil
	}
	bad := f.errorf(key, "%s must be an array of [first, last] ranges of integers", toml.Key(key))
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, bad
	}
	out := make([][2]uint32, len(list))
	for i, item := range list {
		pair, ok := item.([]any)
		if !ok || len(pair) != 2 {
			return nil, bad
		}
		for j, x := range pair {
			n, ok := x.(int64)
			if !ok || n < 0 || n > math.MaxUint32 {
				return nil, bad
			}
			out[i][j] = uint32(n)
		}
		if out[i][0] > out[i][1] {
			return nil, f.errorf(key, "%s: range [%#x, %#x] is empty", toml.Key(key), out[i][0], out[i][1])
		}
	}
	return out, nil
}
