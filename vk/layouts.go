package vk

import (
	vkapi "github.com/vulkan-go/vulkan"
)

// MaxBindings is the number of storage buffers a kernel can bind (set 0, bindings 0..7).
const MaxBindings = 8

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
	sets     map[[MaxBindings]bindingKey]vkapi.DescriptorSet
}

// bindingKey is one buffer range bound to one binding.
type bindingKey struct {
	buffer       vkapi.Buffer
	offset, size uint64
}

func newLayouts(dev vkapi.Device) (*layouts, error) {
	l := &layouts{sets: map[[MaxBindings]bindingKey]vkapi.DescriptorSet{}}
	bindings := make([]vkapi.DescriptorSetLayoutBinding, MaxBindings)
	for i := range bindings {
		bindings[i] = vkapi.DescriptorSetLayoutBinding{
			Binding:         uint32(i),
			DescriptorType:  vkapi.DescriptorTypeStorageBuffer,
			DescriptorCount: 1,
			StageFlags:      vkapi.ShaderStageFlags(vkapi.ShaderStageComputeBit),
		}
	}
	var set vkapi.DescriptorSetLayout
	if err := check("vkCreateDescriptorSetLayout", vkapi.CreateDescriptorSetLayout(dev, &vkapi.DescriptorSetLayoutCreateInfo{
		SType:        vkapi.StructureTypeDescriptorSetLayoutCreateInfo,
		BindingCount: MaxBindings,
		PBindings:    bindings,
	}, nil, &set)); err != nil {
		return nil, err
	}
	l.set = set
	var pl vkapi.PipelineLayout
	if err := check("vkCreatePipelineLayout", vkapi.CreatePipelineLayout(dev, &vkapi.PipelineLayoutCreateInfo{
		SType:                  vkapi.StructureTypePipelineLayoutCreateInfo,
		SetLayoutCount:         1,
		PSetLayouts:            []vkapi.DescriptorSetLayout{set},
		PushConstantRangeCount: 1,
		PPushConstantRanges: []vkapi.PushConstantRange{{
			StageFlags: vkapi.ShaderStageFlags(vkapi.ShaderStageComputeBit),
			Size:       PushConstantSize,
		}},
	}, nil, &pl)); err != nil {
		vkapi.DestroyDescriptorSetLayout(dev, set, nil)
		return nil, err
	}
	l.pipeline = pl
	return l, nil
}

// descriptorSet returns the set binding these ranges, writing a new one the first time. Sets are
// never freed before the context: arena buffers outlive every tensor, so a cached set stays valid.
func (l *layouts) descriptorSet(dev vkapi.Device, key [MaxBindings]bindingKey) (vkapi.DescriptorSet, error) {
	if s, ok := l.sets[key]; ok {
		return s, nil
	}
	if l.left == 0 {
		var pool vkapi.DescriptorPool
		if err := check("vkCreateDescriptorPool", vkapi.CreateDescriptorPool(dev, &vkapi.DescriptorPoolCreateInfo{
			SType:         vkapi.StructureTypeDescriptorPoolCreateInfo,
			MaxSets:       setsPerPool,
			PoolSizeCount: 1,
			PPoolSizes: []vkapi.DescriptorPoolSize{{
				Type:            vkapi.DescriptorTypeStorageBuffer,
				DescriptorCount: setsPerPool * MaxBindings,
			}},
		}, nil, &pool)); err != nil {
			return nil, err
		}
		l.pools = append(l.pools, pool)
		l.left = setsPerPool
	}
	var set vkapi.DescriptorSet
	if err := check("vkAllocateDescriptorSets", vkapi.AllocateDescriptorSets(dev, &vkapi.DescriptorSetAllocateInfo{
		SType:              vkapi.StructureTypeDescriptorSetAllocateInfo,
		DescriptorPool:     l.pools[len(l.pools)-1],
		DescriptorSetCount: 1,
		PSetLayouts:        []vkapi.DescriptorSetLayout{l.set},
	}, &set)); err != nil {
		return nil, err
	}
	l.left--
	writes := make([]vkapi.WriteDescriptorSet, MaxBindings)
	for i, b := range key {
		writes[i] = vkapi.WriteDescriptorSet{
			SType:           vkapi.StructureTypeWriteDescriptorSet,
			DstSet:          set,
			DstBinding:      uint32(i),
			DescriptorCount: 1,
			DescriptorType:  vkapi.DescriptorTypeStorageBuffer,
			PBufferInfo:     []vkapi.DescriptorBufferInfo{{Buffer: b.buffer, Offset: vkapi.DeviceSize(b.offset), Range: vkapi.DeviceSize(b.size)}},
		}
	}
	vkapi.UpdateDescriptorSets(dev, MaxBindings, writes, 0, nil)
	l.sets[key] = set
	return set, nil
}

func (l *layouts) destroy(dev vkapi.Device) {
	for _, p := range l.pools {
		vkapi.DestroyDescriptorPool(dev, p, nil)
	}
	vkapi.DestroyPipelineLayout(dev, l.pipeline, nil)
	vkapi.DestroyDescriptorSetLayout(dev, l.set, nil)
}
