package vk

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	vkapi "github.com/vulkan-go/vulkan"
)

// defaultArenaSize is the size of one device allocation; tensors are sub-allocated from arenas.
const defaultArenaSize = 256 << 20

// memory owns the device's arenas and the staging buffer used where device memory is not mappable.
type memory struct {
	c           *Context
	props       vkapi.PhysicalDeviceMemoryProperties
	deviceType  uint32 // memory type for tensors
	mappable    bool   // tensors' memory is host-visible and coherent: no staging needed
	align       uint64
	heapUsed    []uint64
	arenas      []*arena
	staging     *arena // host-visible, grown on demand; nil when mappable
	stagingType uint32
	live        uint64 // bytes held by tensors
	// hostAvailable is the host's available memory when the context opened (the capacity of a
	// CPU device's heap).
	hostAvailable uint64
}

// arena is one VkDeviceMemory with one VkBuffer over all of it, and its free spans.
type arena struct {
	mem    vkapi.DeviceMemory
	buf    vkapi.Buffer
	size   uint64
	heap   int
	mapped unsafe.Pointer // nil unless host-visible
	free   []span         // sorted by offset, never adjacent
}

type span struct{ off, size uint64 }

const (
	deviceLocal  = vkapi.MemoryPropertyFlags(vkapi.MemoryPropertyDeviceLocalBit)
	hostVisible  = vkapi.MemoryPropertyFlags(vkapi.MemoryPropertyHostVisibleBit)
	hostCoherent = vkapi.MemoryPropertyFlags(vkapi.MemoryPropertyHostCoherentBit)
	hostCached   = vkapi.MemoryPropertyFlags(vkapi.MemoryPropertyHostCachedBit)
)

// storageUsage is how arena buffers are used: as storage buffers, as vec4 texel views (InTexels)
// and in copies.
const storageUsage = vkapi.BufferUsageFlags(vkapi.BufferUsageStorageBufferBit |
	vkapi.BufferUsageUniformTexelBufferBit | vkapi.BufferUsageTransferSrcBit | vkapi.BufferUsageTransferDstBit)

func newMemory(c *Context) (*memory, error) {
	m := &memory{c: c, align: 256, hostAvailable: hostAvailable()}
	m.align = max(m.align, c.Info.MinStorageAlignment, c.Info.MinTexelAlignment)
	vkapi.GetPhysicalDeviceMemoryProperties(c.physical, &m.props)
	m.props.Deref()
	for i := range m.props.MemoryTypes[:m.props.MemoryTypeCount] {
		m.props.MemoryTypes[i].Deref()
	}
	for i := range m.props.MemoryHeaps[:m.props.MemoryHeapCount] {
		m.props.MemoryHeaps[i].Deref()
	}
	m.heapUsed = make([]uint64, m.props.MemoryHeapCount)
	// Probe which memory types a storage buffer accepts.
	buf, req, err := m.createBuffer(4096)
	if err != nil {
		return nil, err
	}
	vkapi.DestroyBuffer(c.device, buf, nil)
	// Tensors: the device-local type on the largest heap; host-visible+coherent breaks ties.
	best := -1
	for i := 0; i < int(m.props.MemoryTypeCount); i++ {
		if req.MemoryTypeBits&(1<<i) == 0 || m.props.MemoryTypes[i].PropertyFlags&deviceLocal == 0 {
			continue
		}
		if best < 0 || m.better(i, best) {
			best = i
		}
	}
	if best < 0 { // no device-local type at all: take any allowed type
		for i := 0; i < int(m.props.MemoryTypeCount) && best < 0; i++ {
			if req.MemoryTypeBits&(1<<i) != 0 {
				best = i
			}
		}
	}
	if best < 0 {
		return nil, errors.New("no memory type can hold a storage buffer")
	}
	m.deviceType = uint32(best)
	flags := m.props.MemoryTypes[best].PropertyFlags
	m.mappable = flags&hostVisible != 0 && flags&hostCoherent != 0
	if !m.mappable {
		m.stagingType = ^uint32(0)
		for i := 0; i < int(m.props.MemoryTypeCount); i++ {
			f := m.props.MemoryTypes[i].PropertyFlags
			if req.MemoryTypeBits&(1<<i) == 0 || f&(hostVisible|hostCoherent) != hostVisible|hostCoherent {
				continue
			}
			if m.stagingType == ^uint32(0) || f&hostCached != 0 {
				m.stagingType = uint32(i)
			}
		}
		if m.stagingType == ^uint32(0) {
			return nil, errors.New("no host-visible coherent memory type for staging")
		}
	}
	return m, nil
}

// better reports whether memory type i is preferable to type j for tensors.
func (m *memory) better(i, j int) bool {
	hi, hj := m.props.MemoryTypes[i].HeapIndex, m.props.MemoryTypes[j].HeapIndex
	si, sj := m.props.MemoryHeaps[hi].Size, m.props.MemoryHeaps[hj].Size
	if si != sj {
		return si > sj
	}
	mapI := m.props.MemoryTypes[i].PropertyFlags&(hostVisible|hostCoherent) == hostVisible|hostCoherent
	mapJ := m.props.MemoryTypes[j].PropertyFlags&(hostVisible|hostCoherent) == hostVisible|hostCoherent
	return mapI && !mapJ
}

func (m *memory) createBuffer(size uint64) (vkapi.Buffer, vkapi.MemoryRequirements, error) {
	var buf vkapi.Buffer
	var req vkapi.MemoryRequirements
	if err := check("vkCreateBuffer", vkapi.CreateBuffer(m.c.device, &vkapi.BufferCreateInfo{
		SType:       vkapi.StructureTypeBufferCreateInfo,
		Size:        vkapi.DeviceSize(size),
		Usage:       storageUsage,
		SharingMode: vkapi.SharingModeExclusive,
	}, nil, &buf)); err != nil {
		return nil, req, err
	}
	vkapi.GetBufferMemoryRequirements(m.c.device, buf, &req)
	req.Deref()
	return buf, req, nil
}

// newArena allocates size bytes of the given memory type, bound to one buffer, and maps it when
// the host is to access it directly.
func (m *memory) newArena(size uint64, typ uint32, mapped bool) (*arena, error) {
	heap := int(m.props.MemoryTypes[typ].HeapIndex)
	if m.heapUsed[heap]+size > m.heapCapacity(heap) {
		return nil, m.outOfMemory(size, heap, nil)
	}
	buf, req, err := m.createBuffer(size)
	if err != nil {
		return nil, err
	}
	var mem vkapi.DeviceMemory
	r := vkapi.AllocateMemory(m.c.device, &vkapi.MemoryAllocateInfo{
		SType:           vkapi.StructureTypeMemoryAllocateInfo,
		AllocationSize:  req.Size,
		MemoryTypeIndex: typ,
	}, nil, &mem)
	if r != vkapi.Success {
		vkapi.DestroyBuffer(m.c.device, buf, nil)
		if r == vkapi.ErrorOutOfDeviceMemory || r == vkapi.ErrorOutOfHostMemory {
			return nil, m.outOfMemory(size, heap, check("vkAllocateMemory", r))
		}
		return nil, check("vkAllocateMemory", r)
	}
	a := &arena{mem: mem, buf: buf, size: size, heap: heap, free: []span{{0, size}}}
	if err := check("vkBindBufferMemory", vkapi.BindBufferMemory(m.c.device, buf, mem, 0)); err != nil {
		a.destroy(m.c.device)
		return nil, err
	}
	if mapped {
		var p unsafe.Pointer
		if err := check("vkMapMemory", vkapi.MapMemory(m.c.device, mem, 0, vkapi.DeviceSize(vkapi.WholeSize), 0, &p)); err != nil {
			a.destroy(m.c.device)
			return nil, err
		}
		a.mapped = p
		if m.c.Info.Type == CPU {
			adviseHugePages(p, size)
		}
	}
	m.heapUsed[heap] += size
	return a, nil
}

// heapCapacity is how much of a heap vktrain may use: its size, or on a CPU device (lavapipe,
// whose heap is host memory whatever size it reports) the host memory available when the
// context was opened.
func (m *memory) heapCapacity(heap int) uint64 {
	if m.c.Info.Type == CPU && m.hostAvailable > 0 {
		return m.hostAvailable
	}
	return uint64(m.props.MemoryHeaps[heap].Size)
}

// Capacity is the memory vktrain may use for tensors on this device, bytes (see heapCapacity).
func (c *Context) Capacity() uint64 {
	return c.mem.heapCapacity(int(c.mem.props.MemoryTypes[c.mem.deviceType].HeapIndex))
}

// hostAvailable reads MemAvailable from /proc/meminfo (0 where there is none).
func hostAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kib, err := strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				return kib << 10
			}
		}
	}
	return 0
}

func (m *memory) outOfMemory(size uint64, heap int, cause error) error {
	err := fmt.Errorf("out of device memory: cannot allocate %s on heap %d (%s usable, %s already used by vktrain)",
		FormatBytes(size), heap, FormatBytes(m.heapCapacity(heap)), FormatBytes(m.heapUsed[heap]))
	if cause != nil {
		err = fmt.Errorf("%w: %v", err, cause)
	}
	return err
}

// alloc finds size bytes (aligned) in an arena, making a new arena when none has room.
func (m *memory) alloc(size uint64) (*arena, uint64, error) {
	info := m.c.Info
	if size > info.MaxStorageBuffer {
		return nil, 0, fmt.Errorf("tensor of %s exceeds the device's maxStorageBufferRange of %s", FormatBytes(size), FormatBytes(info.MaxStorageBuffer))
	}
	if size > info.MaxAllocation {
		return nil, 0, fmt.Errorf("tensor of %s exceeds the device's maxMemoryAllocationSize of %s", FormatBytes(size), FormatBytes(info.MaxAllocation))
	}
	need := roundUp(size, m.align)
	for _, a := range m.arenas {
		if off, ok := a.take(need); ok {
			m.live += need
			return a, off, nil
		}
	}
	arenaSize := uint64(defaultArenaSize)
	if arenaSize > info.MaxAllocation {
		arenaSize = info.MaxAllocation
	}
	if need > arenaSize {
		arenaSize = need
	}
	a, err := m.newArena(arenaSize, m.deviceType, m.mappable)
	if err != nil && arenaSize > need { // a smaller arena may still fit
		a, err = m.newArena(need, m.deviceType, m.mappable)
	}
	if err != nil {
		return nil, 0, err
	}
	m.arenas = append(m.arenas, a)
	off, _ := a.take(need)
	m.live += need
	return a, off, nil
}

// take carves size bytes from the first free span that fits.
func (a *arena) take(size uint64) (uint64, bool) {
	for i, s := range a.free {
		if s.size < size {
			continue
		}
		if s.size == size {
			a.free = append(a.free[:i], a.free[i+1:]...)
		} else {
			a.free[i] = span{s.off + size, s.size - size}
		}
		return s.off, true
	}
	return 0, false
}

// give returns a span, merging it with its free neighbours.
func (a *arena) give(off, size uint64) {
	i := sort.Search(len(a.free), func(i int) bool { return a.free[i].off > off })
	a.free = append(a.free, span{})
	copy(a.free[i+1:], a.free[i:])
	a.free[i] = span{off, size}
	if i+1 < len(a.free) && a.free[i].off+a.free[i].size == a.free[i+1].off {
		a.free[i].size += a.free[i+1].size
		a.free = append(a.free[:i+1], a.free[i+2:]...)
	}
	if i > 0 && a.free[i-1].off+a.free[i-1].size == a.free[i].off {
		a.free[i-1].size += a.free[i].size
		a.free = append(a.free[:i], a.free[i+1:]...)
	}
}

func (a *arena) destroy(dev vkapi.Device) {
	if a.mapped != nil {
		vkapi.UnmapMemory(dev, a.mem)
	}
	vkapi.DestroyBuffer(dev, a.buf, nil)
	vkapi.FreeMemory(dev, a.mem, nil)
}

// stagingArena returns a host-visible arena of at least size bytes.
func (m *memory) stagingArena(size uint64) (*arena, error) {
	if m.staging != nil && m.staging.size >= size {
		return m.staging, nil
	}
	if m.staging != nil {
		m.heapUsed[m.staging.heap] -= m.staging.size
		m.staging.destroy(m.c.device)
		m.staging = nil
	}
	a, err := m.newArena(roundUp(size, 1<<20), m.stagingType, true)
	if err != nil {
		return nil, fmt.Errorf("staging buffer: %w", err)
	}
	m.staging = a
	return a, nil
}

func (m *memory) destroy() {
	for _, a := range m.arenas {
		a.destroy(m.c.device)
	}
	if m.staging != nil {
		m.staging.destroy(m.c.device)
	}
}

func roundUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// FormatBytes is n bytes in B, KiB, MiB or GiB.
func FormatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Mappable reports whether the host maps tensors' memory directly (no staging buffer).
func (c *Context) Mappable() bool { return c.mem.mappable }
