package profile

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
)

//go:embed profiles/*.toml
var embedded embed.FS

// Set is the resolved set of entries for one device: for each op, the entry from the
// most specific matching profile that defines it.
type Set struct {
	entries map[string]Entry
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

// Load resolves the profile set for a device from the embedded profiles and, if
// overridePath is not empty, that file, which takes precedence over every embedded
// profile for the ops it defines (its [match] is ignored).
//
// For each op, the matching embedded profile of highest specificity that defines the
// op wins; ties go to the first file name. Only the winning entries are validated
// against lim, so a shadowed entry may be invalid for this device; an invalid one is
// an error naming the file, line, op key and reason. Every file, matching or not, must
// parse: a syntax error or unknown key is an error naming the file and line.
func Load(dev Device, lim Limits, overridePath string) (*Set, error) {
	profiles, err := Embedded()
	if err != nil {
		return nil, err
	}
	var override *Profile
	if overridePath != "" {
		data, err := os.ReadFile(overridePath)
		if err != nil {
			return nil, fmt.Errorf("read tuning profile override: %w", err)
		}
		if override, err = Parse(overridePath, data); err != nil {
			return nil, err
		}
	}
	return resolve(profiles, override, dev, lim)
}

// resolve picks, for each op, the winning entry among profiles (in tie-breaking order)
// and override (nil if none), and validates the winners against lim.
func resolve(profiles []*Profile, override *Profile, dev Device, lim Limits) (*Set, error) {
	type pick struct {
		p           *Profile
		specificity int
	}
	best := map[string]pick{}
	for _, p := range profiles {
		specificity, ok := p.Matches(dev)
		if !ok {
			continue
		}
		for op := range p.Entries {
			if b, seen := best[op]; !seen || specificity > b.specificity {
				best[op] = pick{p, specificity}
			}
		}
	}
	if override != nil {
		for op := range override.Entries {
			best[op] = pick{override, math.MaxInt}
		}
	}

	set := &Set{entries: map[string]Entry{}}
	for _, op := range slices.Sorted(maps.Keys(best)) {
		p := best[op].p
		e := p.Entries[op]
		if err := Validate(e, lim); err != nil {
			return nil, fmt.Errorf("%s:%d: ops.%s: %w", p.Source, p.opLines[op], op, err)
		}
		set.entries[op] = e
	}
	return set, nil
}
