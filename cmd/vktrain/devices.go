package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/profile"
)

// deviceReport is one device as `devices -json` prints it: its info plus the tuning in force.
type deviceReport struct {
	vk.DeviceInfo
	Tuning      []tuningEntry `json:"tuning,omitempty"`
	TuningError string        `json:"tuning_error,omitempty"`
}

type tuningEntry struct {
	Op      string         `json:"op"`
	Variant string         `json:"variant"`
	Params  map[string]int `json:"params"`
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
	inst, err := vk.NewInstance(vk.ValidateFromEnv())
	if err != nil {
		return err
	}
	defer inst.Close()
	devs := inst.Devices()
	sel, err := vk.SelectDevice(devs, df.device)
	if err != nil {
		return err
	}
	reports := make([]deviceReport, len(devs))
	for i, d := range devs {
		d.Selected = i == sel
		reports[i].DeviceInfo = d
		set, err := profile.Load(ops.DeviceOf(d), ops.LimitsOf(d), df.profile)
		if err != nil {
			reports[i].TuningError = err.Error()
			continue
		}
		for _, e := range set.Entries() {
			reports[i].Tuning = append(reports[i].Tuning, tuningEntry{e.Op, e.Variant, e.Params, e.Source})
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
	for _, e := range r.Tuning {
		keys := make([]string, 0, len(e.Params))
		for k := range e.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ps []string
		for _, k := range keys {
			ps = append(ps, fmt.Sprintf("%s=%d", k, e.Params[k]))
		}
		row("op "+e.Op, "%s %s (%s)", e.Variant, strings.Join(ps, " "), e.Source)
	}
}

func mib(n uint64) string { return fmt.Sprintf("%d MiB", n>>20) }
