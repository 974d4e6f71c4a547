package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/profile"
)

// deviceReport is one device as `devices -json` prints it: its info plus the tuning in force.
type deviceReport struct {
	vk.DeviceInfo
	Tuning      []tuningEntry `json:"tuning,omitempty"`
	TuningNotes []string      `json:"tuning_notes,omitempty"` // profiles ignored, and why
	TuningError string        `json:"tuning_error,omitempty"`
}

// tuningEntry is one op's parameters in force; origin is the step of the loading order it
// came from (override, tuned, vendor, default), source the file and profile name.
type tuningEntry struct {
	Op      string         `json:"op"`
	Variant string         `json:"variant"`
	Params  map[string]int `json:"params"`
	Origin  string         `json:"origin"`
	Source  string         `json:"source"`
}

func runDevices(args []string, stdout io.Writer) error {
	fs := newFlags("devices", "devices [-json] [-device SEL] [-profile FILE]")
	asJSON := fs.Bool("json", false, "print a JSON list")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	inst, err := vk.NewInstance(vk.ValidateFromEnv(), os.Stderr)
	if err != nil {
		return err
	}
	defer inst.Close()
	devs := inst.Devices()
	sel, err := vk.SelectDevice(devs, df.device, 0)
	if err != nil {
		return err
	}
	reports := make([]deviceReport, len(devs))
	for i, d := range devs {
		d.Selected = i == sel
		reports[i].DeviceInfo = d
		set, err := profile.Load(ops.DeviceOf(d), ops.LimitsOf(d), ops.SourcesOf(d, df.profile))
		if err != nil {
			reports[i].TuningError = err.Error()
			continue
		}
		reports[i].TuningNotes = set.Notes()
		for _, e := range set.Entries() {
			reports[i].Tuning = append(reports[i].Tuning, tuningEntry{e.Op, e.Variant, e.Params, e.Origin, e.Source})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	for _, r := range reports {
		printDevice(stdout, r)
	}
	return nil
}

func printDevice(w io.Writer, r deviceReport) {
	d := r.DeviceInfo
	mark := " "
	if d.Selected {
		mark = "*"
	}
	fmt.Fprintf(w, "%s %d: %s\n", mark, d.Index, d.Name)
	row := func(k, format string, v ...any) { fmt.Fprintf(w, "    %-22s "+format+"\n", append([]any{k}, v...)...) }
	row("type", "%s", d.Type)
	row("vendor / device id", "0x%04x / 0x%04x", d.VendorID, d.DeviceID)
	row("driver", "%s (%s), version %d", d.Driver, d.DriverInfo, d.DriverVersion)
	row("Vulkan API", "%s", d.APIVersion)
	row("subgroup size", "%d", d.SubgroupSize)
	row("shared memory", "%d bytes", d.SharedMemory)
	row("max invocations", "%d (workgroup %v)", d.MaxInvocations, d.MaxWorkgroupSize)
	row("max storage buffer", "%s", mib(d.MaxStorageBuffer))
	row("max allocation", "%s", mib(d.MaxAllocation))
	for i, h := range d.Heaps {
		kind := "host"
		if h.DeviceLocal {
			kind = "device-local"
		}
		row(fmt.Sprintf("heap %d", i), "%s %s", mib(h.Size), kind)
	}
	if r.TuningError != "" {
		row("tuning", "ERROR %s", r.TuningError)
	}
	for _, n := range r.TuningNotes {
		row("tuning", "%s", n)
	}
	for _, e := range r.Tuning {
		row("op "+e.Op, "%-8s %-32s %-8s %s", e.Variant, paramString(e.Params), e.Origin, e.Source)
	}
}

func mib(n uint64) string { return fmt.Sprintf("%d MiB", n>>20) }
