package vk

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
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
// did a descriptor-set update once in the test suite.
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

// Kernel is a compute pipeline: an embedded SPIR-V shader with its specialization constants.
// Constants 0, 1 and 2 are always the workgroup size x, y, z; op-specific ones follow.
type Kernel struct {
	Shader    string
	Spec      []uint32
	ctx       *Context
	pipeline  vkapi.Pipeline
	Workgroup [3]uint32
}

type kernelKey string

// Kernel returns the pipeline for shader with these specialization constants, creating it the
// first time (through the persistent pipeline cache). spec must hold at least the workgroup x, y, z.
func (c *Context) Kernel(shader string, spec ...uint32) (*Kernel, error) {
	if len(spec) < 3 {
		return nil, fmt.Errorf("kernel %s: specialization constants must start with the workgroup size x, y, z", shader)
	}
	key := kernelKey(fmt.Sprint(shader, spec))
	if k, ok := c.kernels[key]; ok {
		return k, nil
	}
	inv := spec[0] * spec[1] * spec[2]
	if inv == 0 || inv > c.Info.MaxInvocations {
		return nil, fmt.Errorf("kernel %s: workgroup %dx%dx%d has %d invocations, device allows 1..%d",
			shader, spec[0], spec[1], spec[2], inv, c.Info.MaxInvocations)
	}
	for i := 0; i < 3; i++ {
		if spec[i] > c.Info.MaxWorkgroupSize[i] {
			return nil, fmt.Errorf("kernel %s: workgroup size %d in dimension %d exceeds the device's %d", shader, spec[i], i, c.Info.MaxWorkgroupSize[i])
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

	entries := make([]vkapi.SpecializationMapEntry, len(spec))
	data := make([]byte, 4*len(spec))
	for i, v := range spec {
		entries[i] = vkapi.SpecializationMapEntry{ConstantID: uint32(i), Offset: uint32(4 * i), Size: 4}
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
	k := &Kernel{Shader: shader, Spec: append([]uint32(nil), spec...), ctx: c, pipeline: pipelines[0],
		Workgroup: [3]uint32{spec[0], spec[1], spec[2]}}
	if err := c.Check(); err != nil {
		k.destroy()
		return nil, fmt.Errorf("kernel %s: %w", shader, err)
	}
	c.kernels[key] = k
	return k, nil
}

func (k *Kernel) destroy() { vkapi.DestroyPipeline(k.ctx.device, k.pipeline, nil) }

// String names the shader and its constants, e.g. "matmul[8 1 1 16 16]".
func (k *Kernel) String() string { return strings.ReplaceAll(fmt.Sprint(k.Shader, k.Spec), " ", ",") }

// Push encodes push constants in order: each value is 4 bytes (int, int32, uint32 or float32).
func Push(values ...any) []byte {
	b := make([]byte, 0, 4*len(values))
	for _, v := range values {
		var w uint32
		switch x := v.(type) {
		case int:
			w = uint32(int32(x))
		case int32:
			w = uint32(x)
		case uint32:
			w = x
		case float32:
			w = math.Float32bits(x)
		default:
			panic(fmt.Sprintf("vk.Push: unsupported %T", v))
		}
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// Groups returns how many workgroups of size wg cover n items, at least 1.
func Groups(n, wg int) uint32 {
	if n <= 0 {
		return 1
	}
	return uint32((n + wg - 1) / wg)
}
