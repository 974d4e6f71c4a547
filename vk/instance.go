package vk

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/hex"
	"fmt"
	"io"
	"runtime/cgo"
	"strings"
	"unsafe"

	vkapi "github.com/vulkan-go/vulkan"
)

const validationLayer = "VK_LAYER_KHRONOS_validation"

// Instance is a Vulkan instance and the de-duplicated list of its devices.
type Instance struct {
	handle    vkapi.Instance
	valid     *validator
	vhandle   cgo.Handle
	messenger C.uint64_t
	physical  []vkapi.PhysicalDevice
	devices   []DeviceInfo
}

// NewInstance loads Vulkan and creates an instance; with validate, the Khronos validation layer
// runs with synchronization validation, its errors are collected (see Context.Check) and each
// kind of its warnings is written to log once (nil discards them).
func NewInstance(validate bool, log io.Writer) (*Instance, error) {
	if err := loadVulkan(); err != nil {
		return nil, err
	}
	in := &Instance{}
	app := &vkapi.ApplicationInfo{
		SType:            vkapi.StructureTypeApplicationInfo,
		PApplicationName: "vktrain\x00",
		PEngineName:      "vktrain\x00",
		ApiVersion:       vkapi.MakeVersion(1, 2, 0),
	}
	info := vkapi.InstanceCreateInfo{SType: vkapi.StructureTypeInstanceCreateInfo, PApplicationInfo: app}
	if validate {
		if !hasInstanceLayer(validationLayer) {
			return nil, fmt.Errorf("VKTRAIN_VALIDATE is set but the layer %s is missing; on Debian/Ubuntu: sudo apt-get install -y vulkan-validationlayers", validationLayer)
		}
		in.valid = &validator{warnings: map[string]bool{}, log: log}
		in.vhandle = cgo.NewHandle(in.valid)
		chain := C.vkt_validation_chain(C.uintptr_t(in.vhandle))
		defer C.vkt_free_chain(chain)
		info.PNext = chain
		info.PpEnabledLayerNames = []string{validationLayer + "\x00"}
		info.EnabledLayerCount = 1
		info.PpEnabledExtensionNames = []string{"VK_EXT_debug_utils\x00"}
		info.EnabledExtensionCount = 1
	}
	var handle vkapi.Instance
	err := check("vkCreateInstance", withoutGC(func() vkapi.Result { return vkapi.CreateInstance(&info, nil, &handle) }))
	in.handle = handle
	if err != nil {
		in.release()
		if strings.Contains(err.Error(), "incompatible driver") {
			return nil, fmt.Errorf("%v: no Vulkan driver found; %s", err, InstallHint)
		}
		return nil, err
	}
	if err := vkapi.InitInstance(in.handle); err != nil {
		in.Close()
		return nil, fmt.Errorf("loading instance functions: %w", err)
	}
	if validate {
		in.messenger = C.vkt_create_messenger(unsafe.Pointer(in.handle), C.uintptr_t(in.vhandle))
	}
	if err := in.enumerate(); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

func hasInstanceLayer(name string) bool {
	var n uint32
	if vkapi.EnumerateInstanceLayerProperties(&n, nil) != vkapi.Success {
		return false
	}
	layers := make([]vkapi.LayerProperties, n)
	// vulkan-go passes the slice as a C copy that a finalizer frees, possibly while the loader
	// still writes into it: see withoutGC. (Heap corruption from this call is the likely cause
	// of a rare crash in the vkCreateInstance that follows it, seen in long test processes.)
	withoutGC(func() vkapi.Result { return vkapi.EnumerateInstanceLayerProperties(&n, layers) })
	for _, l := range layers[:n] {
		l.Deref()
		if vkapi.ToString(l.LayerName[:]) == name {
			return true
		}
	}
	return false
}

// Devices lists the instance's devices, each physical device once.
func (in *Instance) Devices() []DeviceInfo { return append([]DeviceInfo(nil), in.devices...) }

// enumerate fills the device list, dropping a device seen twice (same UUID: e.g. two ICD files).
func (in *Instance) enumerate() error {
	var n uint32
	if err := check("vkEnumeratePhysicalDevices", vkapi.EnumeratePhysicalDevices(in.handle, &n, nil)); err != nil {
		return err
	}
	all := make([]vkapi.PhysicalDevice, n)
	if err := check("vkEnumeratePhysicalDevices", vkapi.EnumeratePhysicalDevices(in.handle, &n, all)); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, pd := range all[:n] {
		info, err := describe(in.handle, pd)
		if err != nil {
			return err
		}
		if seen[info.UUID] {
			continue
		}
		seen[info.UUID] = true
		info.Index = len(in.devices)
		in.devices = append(in.devices, info)
		in.physical = append(in.physical, pd)
	}
	if len(in.devices) == 0 {
		return fmt.Errorf("no Vulkan device found; %s", InstallHint)
	}
	return nil
}

// describe reads a physical device's identity, limits and heaps.
func describe(inst vkapi.Instance, pd vkapi.PhysicalDevice) (DeviceInfo, error) {
	var p vkapi.PhysicalDeviceProperties
	vkapi.GetPhysicalDeviceProperties(pd, &p)
	p.Deref()
	p.Limits.Deref()
	l := p.Limits
	var mem vkapi.PhysicalDeviceMemoryProperties
	vkapi.GetPhysicalDeviceMemoryProperties(pd, &mem)
	mem.Deref()
	d := DeviceInfo{
		Name:                vkapi.ToString(p.DeviceName[:]),
		Type:                deviceType(p.DeviceType),
		VendorID:            p.VendorID,
		DeviceID:            p.DeviceID,
		DriverVersion:       p.DriverVersion,
		APIVersion:          versionString(p.ApiVersion),
		SharedMemory:        l.MaxComputeSharedMemorySize,
		MaxInvocations:      l.MaxComputeWorkGroupInvocations,
		MaxWorkgroupSize:    l.MaxComputeWorkGroupSize,
		MaxWorkgroupCount:   l.MaxComputeWorkGroupCount,
		MaxStorageBuffer:    uint64(l.MaxStorageBufferRange),
		MaxPushConstants:    l.MaxPushConstantsSize,
		MinStorageAlignment: uint64(l.MinStorageBufferOffsetAlignment),
		MaxTexelElements:    l.MaxTexelBufferElements,
		MinTexelAlignment:   uint64(l.MinTexelBufferOffsetAlignment),
		TimestampPeriodNs:   l.TimestampPeriod,
		MaxAllocation:       1 << 30, // the Vulkan 1.1 minimum, replaced below when the device reports more
		pipelineCacheUUID:   p.PipelineCacheUUID,
	}
	for i := uint32(0); i < mem.MemoryHeapCount; i++ {
		h := mem.MemoryHeaps[i]
		h.Deref()
		d.Heaps = append(d.Heaps, Heap{Size: uint64(h.Size), DeviceLocal: h.Flags&vkapi.MemoryHeapFlags(vkapi.MemoryHeapDeviceLocalBit) != 0})
	}
	apiMinor := (p.ApiVersion >> 12) & 0x3ff
	var extra C.vkt_device_extra
	if C.vkt_query_extra(unsafe.Pointer(inst), unsafe.Pointer(pd), boolInt(apiMinor >= 2), &extra) != 0 {
		return d, fmt.Errorf("device %q: vkGetPhysicalDeviceProperties2 is missing (Vulkan 1.1 is required)", d.Name)
	}
	d.SubgroupSize = uint32(extra.subgroup_size)
	if extra.subgroup_stages&computeStage != 0 {
		d.SubgroupOps = SubgroupOps(extra.subgroup_operations)
	}
	uuid := C.GoBytes(unsafe.Pointer(&extra.device_uuid[0]), 16)
	d.UUID = hex.EncodeToString(uuid)
	if extra.has_driver != 0 {
		d.Driver = C.GoString(&extra.driver_name[0])
		d.DriverInfo = C.GoString(&extra.driver_info[0])
	}
	if d.Driver == "" {
		d.Driver = fmt.Sprintf("vendor 0x%x driver %d", d.VendorID, d.DriverVersion)
	}
	if extra.max_allocation > 0 {
		d.MaxAllocation = uint64(extra.max_allocation)
	}
	return d, nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func deviceType(t vkapi.PhysicalDeviceType) DeviceType {
	switch t {
	case vkapi.PhysicalDeviceTypeDiscreteGpu:
		return Discrete
	case vkapi.PhysicalDeviceTypeIntegratedGpu:
		return Integrated
	case vkapi.PhysicalDeviceTypeVirtualGpu:
		return Virtual
	case vkapi.PhysicalDeviceTypeCpu:
		return CPU
	}
	return Other
}

func versionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v>>22, (v>>12)&0x3ff, v&0xfff)
}

// Close destroys the instance.
func (in *Instance) Close() {
	if in.handle != nil {
		if in.messenger != 0 {
			C.vkt_destroy_messenger(unsafe.Pointer(in.handle), in.messenger)
		}
		vkapi.DestroyInstance(in.handle, nil)
		in.handle = nil
	}
	in.release()
}

func (in *Instance) release() {
	if in.vhandle != 0 {
		in.vhandle.Delete()
		in.vhandle = 0
	}
}
