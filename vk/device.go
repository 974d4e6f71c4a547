package vk

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// DeviceType is the kind of physical device, in the order vktrain prefers them.
type DeviceType string

// Device types, as Vulkan names them.
const (
	Discrete   DeviceType = "discrete"
	Integrated DeviceType = "integrated"
	Virtual    DeviceType = "virtual"
	CPU        DeviceType = "cpu"
	Other      DeviceType = "other"
)

// rank orders device types for the default choice: lower is better.
func (t DeviceType) rank() int {
	switch t {
	case Discrete:
		return 0
	case Integrated:
		return 1
	case Virtual:
		return 2
	case CPU:
		return 3
	}
	return 4
}

// SubgroupOps are the subgroup operations a device's compute shaders may use
// (VkSubgroupFeatureFlags).
type SubgroupOps uint32

// Subgroup operation classes the kernels use.
const (
	SubgroupBasic      SubgroupOps = 0x1
	SubgroupArithmetic SubgroupOps = 0x4
	SubgroupShuffle    SubgroupOps = 0x10
)

// computeStage is VK_SHADER_STAGE_COMPUTE_BIT.
const computeStage = 0x20

// Has reports whether every operation class in want is supported.
func (s SubgroupOps) Has(want SubgroupOps) bool { return s&want == want }

// Heap is one memory heap of a device.
type Heap struct {
	Size        uint64 `json:"size"`
	DeviceLocal bool   `json:"device_local"`
}

// DeviceInfo is what vktrain knows about a physical device: identity and the limits its kernels respect.
type DeviceInfo struct {
	Index               int         `json:"index"`
	Name                string      `json:"name"`
	Type                DeviceType  `json:"type"`
	VendorID            uint32      `json:"vendor_id"`
	DeviceID            uint32      `json:"device_id"`
	Driver              string      `json:"driver"`
	DriverInfo          string      `json:"driver_info"`
	DriverVersion       uint32      `json:"driver_version"`
	APIVersion          string      `json:"api_version"`
	UUID                string      `json:"uuid"`
	SubgroupSize        uint32      `json:"subgroup_size"`
	SubgroupOps         SubgroupOps `json:"subgroup_operations"`
	SharedMemory        uint32      `json:"shared_memory"`
	MaxInvocations      uint32      `json:"max_invocations"`
	MaxWorkgroupSize    [3]uint32   `json:"max_workgroup_size"`
	MaxWorkgroupCount   [3]uint32   `json:"max_workgroup_count"`
	MaxStorageBuffer    uint64      `json:"max_storage_buffer_range"`
	MaxAllocation       uint64      `json:"max_memory_allocation_size"`
	MaxPushConstants    uint32      `json:"max_push_constants"`
	MinStorageAlignment uint64      `json:"min_storage_buffer_offset_alignment"`
	MaxTexelElements    uint32      `json:"max_texel_buffer_elements"`
	MinTexelAlignment   uint64      `json:"min_texel_buffer_offset_alignment"`
	TimestampPeriodNs   float32     `json:"timestamp_period_ns"`
	Heaps               []Heap      `json:"heaps"`
	Selected            bool        `json:"selected"`

	pipelineCacheUUID [16]byte
}

// String is a one-line description: index, name, type and driver.
func (d DeviceInfo) String() string {
	return fmt.Sprintf("%d: %s (%s, driver %s)", d.Index, d.Name, d.Type, d.Driver)
}

// bestDevice returns the index of the preferred device for the rank-th process of a host:
// the devices of the best kind (discrete > integrated > virtual > CPU) in the order listed, in
// turn (rank 0, a lone process, takes the first).
func bestDevice(devs []DeviceInfo, rank int) int {
	best := devs[0].Type.rank()
	for _, d := range devs {
		best = min(best, d.Type.rank())
	}
	var kind []int
	for i, d := range devs {
		if d.Type.rank() == best {
			kind = append(kind, i)
		}
	}
	return kind[rank%len(kind)]
}

// SelectDevice picks a device: by selector (an index, or a case-insensitive substring of the
// name) when sel is not empty, else VKTRAIN_DEVICE, else the best device for the process of
// local rank rank (0 without MPI; one device per rank where a host has several). An unknown
// selector is an error that lists the devices.
func SelectDevice(devs []DeviceInfo, sel string, rank int) (int, error) {
	if len(devs) == 0 {
		return 0, fmt.Errorf("no Vulkan device found; %s", InstallHint)
	}
	if sel == "" {
		sel = os.Getenv("VKTRAIN_DEVICE")
	}
	if sel == "" {
		return bestDevice(devs, rank), nil
	}
	if i, err := strconv.Atoi(sel); err == nil {
		if i >= 0 && i < len(devs) {
			return i, nil
		}
		return 0, fmt.Errorf("no device with index %d; the devices are:\n%s", i, listDevices(devs))
	}
	var found []int
	for i, d := range devs {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(sel)) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no device matches %q; the devices are:\n%s", sel, listDevices(devs))
	case 1:
		return found[0], nil
	}
	sort.Slice(found, func(a, b int) bool { return devs[found[a]].Type.rank() < devs[found[b]].Type.rank() })
	return found[0], nil
}

func listDevices(devs []DeviceInfo) string {
	var b strings.Builder
	for _, d := range devs {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}
