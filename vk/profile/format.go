package profile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Format returns p as a profile file that Parse reads back to the same profile. header and
// notes[op] (either may be empty) become comment lines at the top and above the op's table.
func (p *Profile) Format(header string, notes map[string]string) []byte {
	var b strings.Builder
	comment := func(text string) {
		for line := range strings.Lines(text) {
			fmt.Fprintf(&b, "# %s\n", strings.TrimRight(line, "\n"))
		}
	}
	comment(header)
	fmt.Fprintf(&b, "name = %s\n", quote(p.Name))
	if p.Description != "" {
		fmt.Fprintf(&b, "description = %s\n", quote(p.Description))
	}
	if p.Kernels != "" {
		fmt.Fprintf(&b, "kernels = %s\n", quote(p.Kernels))
	}
	if m := p.Match; m.VendorID != nil || m.Driver != "" || m.DriverVersion != nil || m.SubgroupSize != nil {
		b.WriteString("\n[match]\n")
		if m.VendorID != nil {
			fmt.Fprintf(&b, "vendor_id = %#x\n", *m.VendorID)
		}
		if m.DeviceID != nil {
			fmt.Fprintf(&b, "device_id = %#x\n", *m.DeviceID)
		}
		if m.DeviceIDs != nil {
			var rs []string
			for _, r := range m.DeviceIDs {
				rs = append(rs, fmt.Sprintf("[%#x, %#x]", r[0], r[1]))
			}
			fmt.Fprintf(&b, "device_ids = [%s]\n", strings.Join(rs, ", "))
		}
		if m.Driver != "" {
			fmt.Fprintf(&b, "driver = %s\n", quote(m.Driver))
		}
		if m.DriverVersion != nil {
			fmt.Fprintf(&b, "driver_version = %d\n", *m.DriverVersion)
		}
		if m.SubgroupSize != nil {
			fmt.Fprintf(&b, "subgroup_size = %d\n", *m.SubgroupSize)
		}
	}
	for _, op := range slices.Sorted(maps.Keys(p.Entries)) {
		e := p.Entries[op]
		b.WriteString("\n")
		comment(notes[op])
		fmt.Fprintf(&b, "[ops.%s]\nvariant = %s\n", op, quote(e.Variant))
		params := slices.Sorted(maps.Keys(e.Params))
		if spec, err := lookup(op, e.Variant); err == nil {
			params = spec.Params
		}
		for _, name := range params {
			fmt.Fprintf(&b, "%s = %d\n", name, e.Params[name])
		}
	}
	return []byte(b.String())
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
