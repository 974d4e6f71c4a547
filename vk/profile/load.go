package profile

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed profiles/*.toml
var embedded embed.FS

// Set is the resolved set of entries for one device: for each op, the entry in force.
type Set struct {
	entries map[string]Entry
	notes   []string
}

// Notes are the profiles Load ignored and why, one sentence each.
func (s *Set) Notes() []string { return slices.Clone(s.notes) }

// With returns a copy of the set with e in force for e.Op. e is not validated.
func (s *Set) With(e Entry) *Set {
	c := &Set{entries: maps.Clone(s.entries), notes: s.notes}
	e.Params = maps.Clone(e.Params)
	c.entries[e.Op] = e
	return c
}

// Entry returns the entry in force for op, or an error if no profile defines op.
func (s *Set) Entry(op string) (Entry, error) {
	e, ok := s.entries[op]
	if !ok {
		return Entry{}, fmt.Errorf("no tuning profile defines op %q", op)
	}
	e.Params = maps.Clone(e.Params)
	return e, nil
}

// Entries returns every entry in force, sorted by op name.
func (s *Set) Entries() []Entry {
	var out []Entry
	for _, op := range slices.Sorted(maps.Keys(s.entries)) {
		e, _ := s.Entry(op)
		out = append(out, e)
	}
	return out
}

// Embedded parses the embedded profiles (profiles/*.toml), in file name order. Their
// sources are named "embedded:FILE".
func Embedded() ([]*Profile, error) {
	files, err := fs.Glob(embedded, "profiles/*.toml")
	if err != nil {
		return nil, fmt.Errorf("list embedded profiles: %w", err)
	}
	slices.Sort(files)
	var out []*Profile
	for _, path := range files {
		data, err := embedded.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read embedded profile: %w", err)
		}
		p, err := Parse("embedded:"+path[len("profiles/"):], data)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Where an entry in force came from (Entry.Origin), in Load's order of precedence.
const (
	FromOverride = "override" // the -profile file
	FromTuned    = "tuned"    // this device's profile written by vktrain tune
	FromVendor   = "vendor"   // a shipped profile whose [match] names the device
	FromDefault  = "default"  // a shipped profile without [match] (the generic default)
)

// Sources are the profile files Load reads besides the embedded ones.
type Sources struct {
	Override string // wins for every op it defines, whatever its [match]; "" for none
	Tuned    string // this device's tuned profile (TunedPath); a missing file is no error; "" for none
	Kernels  string // the kernel-set hash of the running shaders; "" checks none
}

// Load resolves the profile set for a device. For each op the first of these that defines
// it wins: the override file, the tuned profile, the matching embedded profile of highest
// specificity (ties go to the first file name; a profile with no [match] is the generic
// default). Only the winning entries are validated against lim, so a shadowed entry may be
// invalid for this device.
//
// A profile that records a kernel-set hash other than src.Kernels was measured with other
// shaders: it is ignored, and the set's Notes say so. A tuned profile that cannot be used
// (unreadable, another device's, an entry the device refuses) is ignored with a note too. Any
// other problem is an error naming the file and line: a syntax error or unknown key in any
// file, an unreadable override, an invalid entry in force.
func Load(dev Device, lim Limits, src Sources) (*Set, error) {
	profiles, err := Embedded()
	if err != nil {
		return nil, err
	}
	var notes []string
	var override, tuned *Profile
	if src.Override != "" {
		data, err := os.ReadFile(src.Override)
		if err != nil {
			return nil, fmt.Errorf("read tuning profile override: %w", err)
		}
		if override, err = Parse(src.Override, data); err != nil {
			return nil, err
		}
		if note := stale(override, src.Kernels); note != "" {
			override, notes = nil, append(notes, note)
		}
	}
	if src.Tuned != "" {
		var note string
		tuned, note = loadTuned(src.Tuned, src.Kernels, dev, lim)
		if note != "" {
			notes = append(notes, note)
		}
	}
	set, err := resolve(profiles, override, tuned, dev, lim)
	if err != nil {
		return nil, err
	}
	set.notes = notes
	return set, nil
}

// stale returns why p cannot be used with the kernel set kernels, or "" if it can.
func stale(p *Profile, kernels string) string {
	if p.Kernels == "" || kernels == "" || p.Kernels == kernels {
		return ""
	}
	return fmt.Sprintf("tuning profile %s ignored: it was measured with kernel set %.12s, these shaders are %.12s (run vktrain tune again)",
		p.Source, p.Kernels, kernels)
}

// loadTuned reads the tuned profile at path, or returns why it is not used ("" when the file
// does not exist).
func loadTuned(path, kernels string, dev Device, lim Limits) (*Profile, string) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	ignored := func(format string, args ...any) (*Profile, string) {
		return nil, "tuned profile ignored: " + fmt.Sprintf(format, args...)
	}
	if err != nil {
		return ignored("%v", err)
	}
	p, err := Parse(path, data)
	if err != nil {
		return ignored("%v", err)
	}
	if note := stale(p, kernels); note != "" {
		return nil, note
	}
	if _, ok := p.Matches(dev); !ok {
		return ignored("%s was tuned for another device or driver", path)
	}
	for _, op := range slices.Sorted(maps.Keys(p.Entries)) {
		if err := Validate(p.Entries[op], lim); err != nil {
			return ignored("%s:%d: ops.%s: %v", path, p.opLines[op], op, err)
		}
	}
	return p, ""
}

// resolve picks, for each op, the winning entry among override, tuned (either may be nil) and
// profiles (in tie-breaking order), and validates the winners against lim.
func resolve(profiles []*Profile, override, tuned *Profile, dev Device, lim Limits) (*Set, error) {
	type pick struct {
		p           *Profile
		specificity int
		origin      string
	}
	best := map[string]pick{}
	for _, p := range profiles {
		specificity, ok := p.Matches(dev)
		if !ok {
			continue
		}
		origin := FromVendor
		if specificity == 0 {
			origin = FromDefault
		}
		for op := range p.Entries {
			if b, seen := best[op]; !seen || specificity > b.specificity {
				best[op] = pick{p, specificity, origin}
			}
		}
	}
	for i, p := range []*Profile{tuned, override} {
		if p == nil {
			continue
		}
		for op := range p.Entries {
			best[op] = pick{p, math.MaxInt - 1 + i, []string{FromTuned, FromOverride}[i]}
		}
	}

	set := &Set{entries: map[string]Entry{}}
	for _, op := range slices.Sorted(maps.Keys(best)) {
		b := best[op]
		e := b.p.Entries[op]
		if err := Validate(e, lim); err != nil {
			return nil, fmt.Errorf("%s:%d: ops.%s: %w", b.p.Source, b.p.opLines[op], op, err)
		}
		e.Origin = b.origin
		set.entries[op] = e
	}
	return set, nil
}

// TunedPath is where vktrain tune writes dev's profile in the cache folder dir ("" if dir is
// ""): one file per vendor, device, driver, driver version and subgroup size (lavapipe's
// changes with LP_NATIVE_VECTOR_WIDTH, and with it the best tiles).
func TunedPath(dir string, dev Device) string {
	if dir == "" {
		return ""
	}
	driver := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(dev.Driver))
	return filepath.Join(dir, fmt.Sprintf("tuned-%04x-%04x-%s-%d-sg%d.toml", dev.VendorID, dev.DeviceID, driver, dev.DriverVersion, dev.SubgroupSize))
}
