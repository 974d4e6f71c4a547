package vk

import (
	vkapi "github.com/vulkan-go/vulkan"
)

// MaxBindings is the number of storage buffers a kernel can bind (set 0, bindings 0..7).
const MaxBindings = 8

// MaxTexelBindings is the number of vec4 texel views a kernel can bind: the uniform texel buffers
// at bindings MaxBindings.., format R32G32B32A32_SFLOAT (see InTexels).
const MaxTexelBindings = 4

// allBindings is the length of the shared layout: storage buffers, then texel views.
const allBindings = MaxBindings + MaxTexelBindings

// texelBytes is the size of one RGBA32F texel.
const texelBytes = 16

// PushConstantSize is the size of every kernel's push-constant block: the Vulkan minimum.
const PushConstantSize = 128

// setsPerPool is how many descriptor sets each descriptor pool holds before another is made.
const setsPerPool = 256

// layouts is the one descriptor-set layout and pipeline layout that every kernel shares, and the
// descriptor sets made for it, cached by their bindings.
type layouts struct {
	set      vkapi.DescriptorSetLayout
	pipeline vkapi.PipelineLayout
	pools    []vkapi.DescriptorPool
	left     int // sets left in the last pool
	sets     map[[allBindings]bindingKey]vkapi.DescriptorSet
	views    map[bindingKey]vkapi.BufferView
}

// bindingKey is one buffer range bound to one binding.
type bindingKey struct {
	buffer       vkapi.Buffer
	offset, size uint64
}

func newLayouts(dev vkapi.Device) (*layouts, error) {
	l := &layouts{sets: map[[allBindings]bindingKey]vkapi.DescriptorSet{}, views: map[bindingKey]vkapi.BufferView{}}
	bindings := make([]vkapi.DescriptorSetLayoutBinding, allBindings)
	for i := range bindings {
		bindings[i] = vkapi.DescriptorSetLayoutBinding{
			Binding:         uint32(i),
			DescriptorType:  bindingType(i),
			DescriptorCount: 1,
			StageFlags:      vkapi.ShaderStageFlags(vkapi.ShaderStageComputeBit),
		}
	}
	var set vkapi.DescriptorSetLayout
	if err := check("vkCreateDescriptorSetLayout", withoutGC(func() vkapi.Result {
		return vkapi.CreateDescriptorSetLayout(dev, &vkapi.DescriptorSetLayoutCreateInfo{
			SType:        vkapi.StructureTypeDescriptorSetLayoutCreateInfo,
			BindingCount: allBindings,
			PBindings:    bindings,
		}, nil, &set)
	})); err != nil {
		return nil, err
	}
	l.set = set
	var pl vkapi.PipelineLayout
	if err := check("vkCreatePipelineLayout", withoutGC(func() vkapi.Result {
		return vkapi.CreatePipelineLayout(dev, &vkapi.PipelineLayoutCreateInfo{
			SType:                  vkapi.StructureTypePipelineLayoutCreateInfo,
			SetLayoutCount:         1,
			PSetLayouts:            []vkapi.DescriptorSetLayout{set},
			PushConstantRangeCount: 1,
			PPushConstantRanges: []vkapi.PushConstantRange{{
				StageFlags: vkapi.ShaderStageFlags(vkapi.ShaderStageComputeBit),
				Size:       PushConstantSize,
			}},
		}, nil, &pl)
	})); err != nil {
		vkapi.DestroyDescriptorSetLayout(dev, set, nil)
		return nil, err
	}
	l.pipeline = pl
	return l, nil
}

// bindingType is the descriptor type of binding i of the shared layout.
func bindingType(i int) vkapi.DescriptorType {
	if i < MaxBindings {
		return vkapi.DescriptorTypeStorageBuffer
	}
	return vkapi.DescriptorTypeUniformTexelBuffer
}

// descriptorSet returns the set binding these ranges, writing a new one the first time. Sets are
// never freed before the context: arena buffers outlive every tensor, so a cached set stays valid.
func (l *layouts) descriptorSet(dev vkapi.Device, key [allBindings]bindingKey) (vkapi.DescriptorSet, error) {
	if s, ok := l.sets[key]; ok {
		return s, nil
	}
	if l.left == 0 {
		var pool vkapi.DescriptorPool
		if err := check("vkCreateDescriptorPool", withoutGC(func() vkapi.Result {
			return vkapi.CreateDescriptorPool(dev, &vkapi.DescriptorPoolCreateInfo{
				SType:         vkapi.StructureTypeDescriptorPoolCreateInfo,
				MaxSets:       setsPerPool,
				PoolSizeCount: 2,
				PPoolSizes: []vkapi.DescriptorPoolSize{
					{Type: vkapi.DescriptorTypeStorageBuffer, DescriptorCount: setsPerPool * MaxBindings},
					{Type: vkapi.DescriptorTypeUniformTexelBuffer, DescriptorCount: setsPerPool * MaxTexelBindings},
				},
			}, nil, &pool)
		})); err != nil {
			return nil, err
		}
		l.pools = append(l.pools, pool)
		l.left = setsPerPool
	}
	var set vkapi.DescriptorSet
	if err := check("vkAllocateDescriptorSets", withoutGC(func() vkapi.Result {
		return vkapi.AllocateDescriptorSets(dev, &vkapi.DescriptorSetAllocateInfo{
			SType:              vkapi.StructureTypeDescriptorSetAllocateInfo,
			DescriptorPool:     l.pools[len(l.pools)-1],
			DescriptorSetCount: 1,
			PSetLayouts:        []vkapi.DescriptorSetLayout{l.set},
		}, &set)
	})); err != nil {
		return nil, err
	}
	l.left--
	writes := make([]vkapi.WriteDescriptorSet, allBindings)
	for i, b := range key {
		writes[i] = vkapi.WriteDescriptorSet{
			SType:           vkapi.StructureTypeWriteDescriptorSet,
			DstSet:          set,
			DstBinding:      uint32(i),
			DescriptorCount: 1,
			DescriptorType:  bindingType(i),
		}
		if i < MaxBindings {
			writes[i].PBufferInfo = []vkapi.DescriptorBufferInfo{{Buffer: b.buffer, Offset: vkapi.DeviceSize(b.offset), Range: vkapi.DeviceSize(b.size)}}
			continue
		}
		view, err := l.texelView(dev, b)
		if err != nil {
			return nil, err
		}
		writes[i].PTexelBufferView = []vkapi.BufferView{view}
	}
	// vulkan-go frees its C copy of the writes from a finalizer that a collection may run
	// during the call (a test crashed lavapipe there): see withoutGC.
	withoutGCDo(func() {
		vkapi.UpdateDescriptorSets(dev, allBindings, writes, 0, nil)
	})
	l.sets[key] = set
	return set, nil
}

// texelView returns the RGBA32F view of a range, creating it the first time; like the sets, views
// live as long as the context. The view ends at the range's end rounded up to a whole texel,
// which stays inside the tensor's allocation (allocations are rounded to the arena alignment).
func (l *layouts) texelView(dev vkapi.Device, b bindingKey) (vkapi.BufferView, error) {
	if v, ok := l.views[b]; ok {
		return v, nil
	}
	var view vkapi.BufferView
	if err := check("vkCreateBufferView", vkapi.CreateBufferView(dev, &vkapi.BufferViewCreateInfo{
		SType:  vkapi.StructureTypeBufferViewCreateInfo,
		Buffer: b.buffer,
		Format: vkapi.FormatR32g32b32a32Sfloat,
		Offset: vkapi.DeviceSize(b.offset),
		Range:  vkapi.DeviceSize(texels(b.size) * texelBytes),
	}, nil, &view)); err != nil {
		return nil, err
	}
	l.views[b] = view
	return view, nil
}

// texels is the number of whole texels that cover size bytes.
func texels(size uint64) uint64 { return (size + texelBytes - 1) / texelBytes }

func (l *layouts) destroy(dev vkapi.Device) {
	for _, v := range l.views {
		vkapi.DestroyBufferView(dev, v, nil)
	}
	for _, p := range l.pools {
		vkapi.DestroyDescriptorPool(dev, p, nil)
	}
	vkapi.DestroyPipelineLayout(dev, l.pipeline, nil)
	vkapi.DestroyDescriptorSetLayout(dev, l.set, nil)
}
