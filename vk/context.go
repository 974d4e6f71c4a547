package vk

import (
	"fmt"
	"io"
	"os"
	"strconv"

	vkapi "github.com/vulkan-go/vulkan"
)

// Config chooses the device and the checks of a Context.
type Config struct {
	Device   string // index or name substring; "" means VKTRAIN_DEVICE, then the best device
	Rank     int    // the process's local rank in an MPI job: with no selector, ranks take turns among the best devices
	Validate bool   // run under the Khronos validation layer (synchronization validation on)
	CacheDir string // pipeline-cache folder; "" means the user cache folder, "-" turns the disk cache off
	// Log receives warnings: the validation layer's, and a pipeline cache that could not be
	// saved. nil discards them.
	Log io.Writer
	// ChunkBytes, when not 0, lowers the largest chunk of a row-chunked tensor (NewRowTensor)
	// below the device's binding and allocation limits, so that tests run the chunked paths on
	// small models.
	ChunkBytes uint64
}

// ConfigFromEnv is the default configuration: validation from VKTRAIN_VALIDATE, the chunk limit
// from VKTRAIN_CHUNK_BYTES, the rest automatic.
func ConfigFromEnv() (Config, error) {
	cfg := Config{Validate: ValidateFromEnv()}
	if s := os.Getenv("VKTRAIN_CHUNK_BYTES"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n < 16 {
			return cfg, fmt.Errorf("VKTRAIN_CHUNK_BYTES=%q: want a number of bytes, at least 16", s)
		}
		cfg.ChunkBytes = n
	}
	return cfg, nil
}

// Context is one logical device with one compute queue: it owns memory, kernels and sequences.
type Context struct {
	Info     DeviceInfo
	inst     *Instance
	physical vkapi.PhysicalDevice
	device   vkapi.Device
	queue    vkapi.Queue
	family   uint32
	pool     vkapi.CommandPool
	fence    vkapi.Fence

	timestampBits uint32

	layouts   *layouts
	log       io.Writer // Config.Log
	cache     *pipelineCache
	kernels   map[kernelKey]*Kernel
	mem       *memory
	transfers *Sequence // reusable one-shot sequence for staging copies
	dummy     *Tensor   // bound to the bindings a dispatch leaves unused
	chunk     uint64    // the largest chunk of a row-chunked tensor, bytes
}

// dummyTensor is a one-element tensor for unused bindings (every binding of the shared layout
// must hold a valid buffer).
func (c *Context) dummyTensor() (*Tensor, error) {
	if c.dummy == nil {
		t, err := c.NewTensor("unused binding", 1)
		if err != nil {
			return nil, err
		}
		c.dummy = t
	}
	return c.dummy, nil
}

// Open creates a Context on the device cfg selects.
func Open(cfg Config) (*Context, error) {
	inst, err := NewInstance(cfg.Validate, cfg.Log)
	if err != nil {
		return nil, err
	}
	idx, err := SelectDevice(inst.devices, cfg.Device, cfg.Rank)
	if err != nil {
		inst.Close()
		return nil, err
	}
	c := &Context{inst: inst, physical: inst.physical[idx], kernels: map[kernelKey]*Kernel{}, log: cfg.Log}
	c.Info = inst.devices[idx]
	c.Info.Selected = true
	c.chunk = min(c.Info.MaxStorageBuffer, c.Info.MaxAllocation)
	if cfg.ChunkBytes > 0 {
		c.chunk = min(c.chunk, cfg.ChunkBytes)
	}
	if err := c.init(cfg); err != nil {
		c.Close()
		return nil, fmt.Errorf("device %q: %w", c.Info.Name, err)
	}
	return c, nil
}

func (c *Context) init(cfg Config) error {
	if err := c.createDevice(); err != nil {
		return err
	}
	var err error
	if c.layouts, err = newLayouts(c.device); err != nil {
		return err
	}
	if c.cache, err = openPipelineCache(c.device, c.Info.pipelineCacheUUID, cfg.CacheDir); err != nil {
		return err
	}
	if c.mem, err = newMemory(c); err != nil {
		return err
	}
	return c.Check()
}

// createDevice makes the logical device with one queue from the first compute-capable family.
func (c *Context) createDevice() error {
	var n uint32
	vkapi.GetPhysicalDeviceQueueFamilyProperties(c.physical, &n, nil)
	fams := make([]vkapi.QueueFamilyProperties, n)
	withoutGCDo(func() { vkapi.GetPhysicalDeviceQueueFamilyProperties(c.physical, &n, fams) }) // a C copy freed by a finalizer: see withoutGC
	found := false
	for i := range fams[:n] {
		fams[i].Deref()
		if fams[i].QueueFlags&vkapi.QueueFlags(vkapi.QueueComputeBit) != 0 {
			c.family, found = uint32(i), true
			c.timestampBits = fams[i].TimestampValidBits
			break
		}
	}
	if !found {
		return fmt.Errorf("no compute queue")
	}
	info := vkapi.DeviceCreateInfo{
		SType:                vkapi.StructureTypeDeviceCreateInfo,
		QueueCreateInfoCount: 1,
		PQueueCreateInfos: []vkapi.DeviceQueueCreateInfo{{
			SType:            vkapi.StructureTypeDeviceQueueCreateInfo,
			QueueFamilyIndex: c.family,
			QueueCount:       1,
			PQueuePriorities: []float32{1},
		}},
	}
	var dev vkapi.Device
	if err := check("vkCreateDevice", withoutGC(func() vkapi.Result { return vkapi.CreateDevice(c.physical, &info, nil, &dev) })); err != nil {
		return err
	}
	c.device = dev
	var q vkapi.Queue
	vkapi.GetDeviceQueue(dev, c.family, 0, &q)
	c.queue = q
	var pool vkapi.CommandPool
	if err := check("vkCreateCommandPool", vkapi.CreateCommandPool(dev, &vkapi.CommandPoolCreateInfo{
		SType:            vkapi.StructureTypeCommandPoolCreateInfo,
		Flags:            vkapi.CommandPoolCreateFlags(vkapi.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: c.family,
	}, nil, &pool)); err != nil {
		return err
	}
	c.pool = pool
	var fence vkapi.Fence
	if err := check("vkCreateFence", vkapi.CreateFence(dev, &vkapi.FenceCreateInfo{SType: vkapi.StructureTypeFenceCreateInfo}, nil, &fence)); err != nil {
		return err
	}
	c.fence = fence
	return nil
}

// Check returns the validation errors reported since the last check (nil without validation).
func (c *Context) Check() error { return c.inst.valid.take() }

// TimestampsSupported reports whether the queue can time dispatches.
func (c *Context) TimestampsSupported() bool {
	return c.timestampBits > 0 && c.Info.TimestampPeriodNs > 0
}

// Close waits for the device, saves the pipeline cache and releases everything. It returns the
// validation errors reported while shutting down, if any.
func (c *Context) Close() error {
	if c.device != nil {
		vkapi.DeviceWaitIdle(c.device)
		if c.transfers != nil {
			c.transfers.Release()
		}
		for _, k := range c.kernels {
			k.destroy()
		}
		if c.cache != nil {
			if err := c.cache.save(); err != nil && c.log != nil {
				fmt.Fprintf(c.log, "vktrain: pipeline cache not saved: %v\n", err)
			}
			c.cache.destroy()
		}
		if c.mem != nil {
			c.mem.destroy()
		}
		if c.layouts != nil {
			c.layouts.destroy(c.device)
		}
		if c.fence != nil {
			vkapi.DestroyFence(c.device, c.fence, nil)
		}
		if c.pool != nil {
			vkapi.DestroyCommandPool(c.device, c.pool, nil)
		}
		vkapi.DestroyDevice(c.device, nil)
		c.device = nil
	}
	err := c.Check()
	c.inst.Close()
	return err
}
