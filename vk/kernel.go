package vk

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"

	vkapi "github.com/vulkan-go/vulkan"

	"github.com/vktrain/vktrain/shaders"
)

// gcOff serialises withoutGC, which changes a process-wide setting.
var gcOff sync.Mutex

// withoutGC runs call with the garbage collector off. vulkan-go frees its C copies of a call's
// struct arguments from a finalizer that a collection may run while the call is still in the
// driver; compiling a pipeline takes long enough for that to happen (the tuner, compiling
// hundreds among large allocations, crashed lavapipe that way about one run in two), and so
// did a descriptor-set update once in the test suite. Every call that passes a slice of
// structs (vulkan-go's unpackArgS helpers put a finalizer on the C copy as soon as it is made)
// goes through here.
// SetGCPercent(-1) waits for a running cycle to end, and objects allocated since it began are
// live for that cycle.
func withoutGC(call func() vkapi.Result) vkapi.Result {
	gcOff.Lock()
	defer gcOff.Unlock()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	return call()
}

// withoutGCDo is withoutGC for a call without a result.
func withoutGCDo(call func()) {
	withoutGC(func() vkapi.Result {
		call()
		return vkapi.Success
	})
}

// Kernel is a compute pipeline: an embedded SPIR-V shader with its specialization constants,
// given as the shader's spec struct (shaders.Contracts).
type Kernel struct {
	Shader    string
	Spec      any // the spec struct it was made with
	ctx       *Context
	pipeline  vkapi.Pipeline
	push      reflect.Type // the shader's push struct; nil: none
	name      string       // String
	Workgroup [3]uint32
}

type kernelKey string

// Kernel returns the pipeline for shader with the specialization constants spec, a value of the
// shader's spec type in shaders.Contracts (its embedded shaders.Workgroup is the workgroup size),
// creating it the first time (through the persistent pipeline cache).
func (c *Context) Kernel(shader string, spec any) (*Kernel, error) {
	con, err := contract(shader)
	if err != nil {
		if _, missing := shaders.SPIRV(shader); missing != nil {
			return nil, missing
		}
		return nil, err
	}
	if t := reflect.TypeOf(spec); t != con.Spec {
		return nil, fmt.Errorf("kernel %s: specialization constants of type %v, the shader's contract is %v", shader, t, con.Spec)
	}
	layout, err := specLayoutOf(con.Spec)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", shader, err)
	}
	sv := reflect.ValueOf(spec)
	ids, values, text := layout.values(sv)
	key := kernelKey(shader + text)
	if k, ok := c.kernels[key]; ok {
		return k, nil
	}
	wg := layout.workgroupOf(sv)
	inv := uint64(wg[0]) * uint64(wg[1]) * uint64(wg[2])
	if inv == 0 || inv > uint64(c.Info.MaxInvocations) {
		return nil, fmt.Errorf("kernel %s: workgroup %dx%dx%d has %d invocations, device allows 1..%d",
			shader, wg[0], wg[1], wg[2], inv, c.Info.MaxInvocations)
	}
	for i := 0; i < 3; i++ {
		if wg[i] > c.Info.MaxWorkgroupSize[i] {
			return nil, fmt.Errorf("kernel %s: workgroup size %d in dimension %d exceeds the device's %d", shader, wg[i], i, c.Info.MaxWorkgroupSize[i])
		}
	}
	code, err := shaders.SPIRV(shader)
	if err != nil {
		return nil, err
	}
	words := make([]uint32, len(code)/4)
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(code[4*i:])
	}
	var module vkapi.ShaderModule
	if err := check("vkCreateShaderModule", vkapi.CreateShaderModule(c.device, &vkapi.ShaderModuleCreateInfo{
		SType:    vkapi.StructureTypeShaderModuleCreateInfo,
		CodeSize: uint(len(code)),
		PCode:    words,
	}, nil, &module)); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", shader, err)
	}
	defer vkapi.DestroyShaderModule(c.device, module, nil)

	// The constants in id order, 4 bytes each.
	entries := make([]vkapi.SpecializationMapEntry, len(values))
	data := make([]byte, 4*len(values))
	for i, v := range values {
		entries[i] = vkapi.SpecializationMapEntry{ConstantID: ids[i], Offset: uint32(4 * i), Size: 4}
		binary.LittleEndian.PutUint32(data[4*i:], v)
	}
	cdata := cBytes(data)
	defer cFree(cdata)
	info := []vkapi.ComputePipelineCreateInfo{{
		SType: vkapi.StructureTypeComputePipelineCreateInfo,
		Stage: vkapi.PipelineShaderStageCreateInfo{
			SType:  vkapi.StructureTypePipelineShaderStageCreateInfo,
			Stage:  vkapi.ShaderStageComputeBit,
			Module: module,
			PName:  "main\x00",
			PSpecializationInfo: []vkapi.SpecializationInfo{{
				MapEntryCount: uint32(len(entries)),
				PMapEntries:   entries,
				DataSize:      uint(len(data)),
				PData:         cdata,
			}},
		},
		Layout: c.layouts.pipeline,
	}}
	pipelines := make([]vkapi.Pipeline, 1)
	created := withoutGC(func() vkapi.Result {
		return vkapi.CreateComputePipelines(c.device, c.cache.handle, 1, info, nil, pipelines)
	})
	if err := check("vkCreateComputePipelines", created); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", shader, err)
	}
	k := &Kernel{Shader: shader, Spec: spec, ctx: c, pipeline: pipelines[0], push: con.Push,
		name: shader + text, Workgroup: wg}
	if err := c.Check(); err != nil {
		k.destroy()
		return nil, fmt.Errorf("kernel %s: %w", shader, err)
	}
	c.kernels[key] = k
	return k, nil
}

func (k *Kernel) destroy() { vkapi.DestroyPipeline(k.ctx.device, k.pipeline, nil) }

// String names the shader and its constants in id order, e.g. "matmul[8,1,1,16,16]".
func (k *Kernel) String() string { return k.name }

// Groups returns how many workgroups of size wg cover n items, at least 1.
func Groups(n, wg int) uint32 {
	if n <= 0 {
		return 1
	}
	return uint32((n + wg - 1) / wg)
}
