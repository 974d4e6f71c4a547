package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// SPIR-V numbers used by the convention check (SPIR-V specification, unified).
const (
	spvMagic = 0x07230203

	opEntryPoint              = 15
	opTypeBool                = 20
	opTypeInt                 = 21
	opTypeFloat               = 22
	opTypeVector              = 23
	opTypeMatrix              = 24
	opTypeImage               = 25
	opTypeSampledImage        = 27
	opTypeArray               = 28
	opTypeStruct              = 30
	opTypePointer             = 32
	opConstant                = 43
	opSpecConstantTrue        = 48
	opSpecConstantFalse       = 49
	opSpecConstant            = 50
	opSpecConstantComposite   = 51
	opVariable                = 59
	opDecorate                = 71
	opMemberDecorate          = 72
	execModelGLCompute        = 5
	storageUniformConstant    = 0
	storageUniform            = 2
	storagePushConstant       = 9
	storageStorageBuffer      = 12
	decorationSpecID          = 1
	decorationBufferBlock     = 3
	decorationArrayStride     = 6
	decorationMatrixStride    = 7
	decorationBuiltIn         = 11
	decorationBinding         = 33
	decorationDescriptorSet   = 34
	decorationOffset          = 35
	builtInWorkgroupSize      = 25
	maxBindings               = 8 // storage buffers 0..7
	maxTexelBindings          = 4 // then texel buffers 8..11
	dimBuffer                 = 5
	maxPushConstantBlockBytes = 128
)

// module is what the convention check needs from a SPIR-V module.
type module struct {
	entryModels []uint32
	decor       map[uint32]map[uint32][]uint32 // id -> decoration -> literals (first one wins)
	memberOff   map[uint32]map[uint32]uint32   // struct -> member -> Offset
	types       map[uint32][]uint32            // type id -> its instruction (opcode first)
	constants   map[uint32]uint32              // 32-bit OpConstant values
	specComp    map[uint32][]uint32            // OpSpecConstantComposite -> constituents
	specConst   map[uint32]uint32              // OpSpecConstant{,True,False} results -> their type
	variables   []variable
}

type variable struct{ id, ptrType, storage uint32 }

func parse(spv []byte) (*module, error) {
	if len(spv)%4 != 0 || len(spv) < 20 {
		return nil, fmt.Errorf("%d bytes is not a SPIR-V module", len(spv))
	}
	w := make([]uint32, len(spv)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(spv[4*i:])
	}
	if w[0] != spvMagic {
		return nil, fmt.Errorf("magic %#08x, want %#08x (little-endian)", w[0], spvMagic)
	}
	m := &module{
		decor:     map[uint32]map[uint32][]uint32{},
		memberOff: map[uint32]map[uint32]uint32{},
		types:     map[uint32][]uint32{},
		constants: map[uint32]uint32{},
		specComp:  map[uint32][]uint32{},
		specConst: map[uint32]uint32{},
	}
	for i := 5; i < len(w); {
		op, n := w[i]&0xffff, int(w[i]>>16)
		if n == 0 || i+n > len(w) {
			return nil, fmt.Errorf("malformed instruction at word %d", i)
		}
		ins := w[i : i+n]
		i += n
		switch op {
		case opEntryPoint:
			if n >= 2 {
				m.entryModels = append(m.entryModels, ins[1])
			}
		case opDecorate:
			if n >= 3 {
				d := m.decor[ins[1]]
				if d == nil {
					d = map[uint32][]uint32{}
					m.decor[ins[1]] = d
				}
				if _, ok := d[ins[2]]; !ok {
					d[ins[2]] = ins[3:]
				}
			}
		case opMemberDecorate:
			if n >= 5 && ins[3] == decorationOffset {
				if m.memberOff[ins[1]] == nil {
					m.memberOff[ins[1]] = map[uint32]uint32{}
				}
				m.memberOff[ins[1]][ins[2]] = ins[4]
			}
		case opTypeBool, opTypeInt, opTypeFloat, opTypeVector, opTypeMatrix, opTypeImage, opTypeSampledImage, opTypeArray, opTypeStruct, opTypePointer:
			if n >= 2 {
				m.types[ins[1]] = append([]uint32{op}, ins[2:]...)
			}
		case opConstant:
			if n == 4 {
				m.constants[ins[2]] = ins[3]
			}
		case opSpecConstant, opSpecConstantTrue, opSpecConstantFalse:
			if n >= 3 {
				m.specConst[ins[2]] = ins[1]
			}
		case opSpecConstantComposite:
			if n >= 3 {
				m.specComp[ins[2]] = ins[3:]
			}
		case opVariable:
			if n >= 4 {
				m.variables = append(m.variables, variable{id: ins[2], ptrType: ins[1], storage: ins[3]})
			}
		}
	}
	return m, nil
}

// checkConventions enforces the machine-checkable rules of shaders/common.glsl: one GLCompute
// entry point; the workgroup size is the specialization constants 0, 1, 2; resources are storage
// buffers in set 0, bindings 0..7, or texel buffers (samplerBuffer) at bindings 8..11; the
// push-constant block fits in 128 bytes.
func checkConventions(spv []byte) error {
	m, err := parse(spv)
	if err != nil {
		return err
	}
	var errs []error
	if len(m.entryModels) != 1 || m.entryModels[0] != execModelGLCompute {
		errs = append(errs, fmt.Errorf("want exactly one compute entry point, have execution models %v", m.entryModels))
	}
	errs = append(errs, m.checkWorkgroup())
	errs = append(errs, m.checkResources()...)
	return errors.Join(errs...)
}

func (m *module) checkWorkgroup() error {
	const want = "the workgroup size must come from layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;"
	var ids []uint32
	for id, d := range m.decor {
		if b, ok := d[decorationBuiltIn]; ok && len(b) > 0 && b[0] == builtInWorkgroupSize {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		return errors.New(want)
	}
	parts, ok := m.specComp[ids[0]]
	if !ok || len(parts) != 3 {
		return errors.New(want)
	}
	for i, p := range parts {
		s, ok := m.decor[p][decorationSpecID]
		if _, spec := m.specConst[p]; !ok || !spec || len(s) == 0 || s[0] != uint32(i) {
			return errors.New(want)
		}
	}
	return nil
}

func (m *module) checkResources() []error {
	var errs []error
	sort.Slice(m.variables, func(i, j int) bool { return m.variables[i].id < m.variables[j].id })
	for _, v := range m.variables {
		d := m.decor[v.id]
		set, hasSet := d[decorationDescriptorSet]
		binding, hasBinding := d[decorationBinding]
		if hasSet || hasBinding {
			switch {
			case !hasSet || !hasBinding || len(set) == 0 || len(binding) == 0:
				errs = append(errs, fmt.Errorf("resource %%%d lacks a set or binding", v.id))
			case set[0] != 0:
				errs = append(errs, fmt.Errorf("resource at set %d binding %d: only descriptor set 0 is used", set[0], binding[0]))
			case binding[0] >= maxBindings+maxTexelBindings:
				errs = append(errs, fmt.Errorf("binding %d: bindings are 0..%d", binding[0], maxBindings+maxTexelBindings-1))
			case binding[0] < maxBindings && !m.isStorageBuffer(v):
				errs = append(errs, fmt.Errorf("binding %d is not a storage buffer (std430 buffer block)", binding[0]))
			case binding[0] >= maxBindings && !m.isTexelBuffer(v):
				errs = append(errs, fmt.Errorf("binding %d is not a texel buffer (uniform samplerBuffer)", binding[0]))
			}
		}
		if v.storage == storagePushConstant {
			size, err := m.size(m.pointee(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("push-constant block: %v", err))
			} else if size > maxPushConstantBlockBytes {
				errs = append(errs, fmt.Errorf("push-constant block is %d bytes, at most %d", size, maxPushConstantBlockBytes))
			}
		}
	}
	return errs
}

func (m *module) pointee(v variable) uint32 {
	if t := m.types[v.ptrType]; len(t) == 3 && t[0] == opTypePointer {
		return t[2]
	}
	return 0
}

func (m *module) isStorageBuffer(v variable) bool {
	switch v.storage {
	case storageStorageBuffer:
		return true
	case storageUniform: // SPIR-V before 1.3: a BufferBlock struct in the Uniform class
		_, ok := m.decor[m.pointee(v)][decorationBufferBlock]
		return ok
	}
	return false
}

// isTexelBuffer reports whether v is a `uniform samplerBuffer`: a sampled image of dimension Buffer.
func (m *module) isTexelBuffer(v variable) bool {
	if v.storage != storageUniformConstant {
		return false
	}
	s := m.types[m.pointee(v)]
	if len(s) != 2 || s[0] != opTypeSampledImage {
		return false
	}
	img := m.types[s[1]]
	return len(img) >= 3 && img[0] == opTypeImage && img[2] == dimBuffer
}

// size is the byte size of a type in an explicitly laid-out block (struct end = last member's
// offset plus its size).
func (m *module) size(id uint32) (uint32, error) {
	t := m.types[id]
	if len(t) == 0 {
		return 0, fmt.Errorf("type %%%d is not a sizable type", id)
	}
	switch t[0] {
	case opTypeInt, opTypeFloat:
		return t[1] / 8, nil
	case opTypeVector:
		s, err := m.size(t[1])
		return s * t[2], err
	case opTypeMatrix:
		if ms, ok := m.decor[id][decorationMatrixStride]; ok && len(ms) > 0 {
			return ms[0] * t[2], nil
		}
		s, err := m.size(t[1])
		return s * t[2], err
	case opTypeArray:
		n, ok := m.constants[t[2]]
		st, hasStride := m.decor[id][decorationArrayStride]
		if !ok || !hasStride || len(st) == 0 {
			return 0, fmt.Errorf("array %%%d has no constant length or stride", id)
		}
		return n * st[0], nil
	case opTypeStruct:
		var end uint32
		for i, member := range t[1:] {
			s, err := m.size(member)
			if err != nil {
				return 0, err
			}
			end = max(end, m.memberOff[id][uint32(i)]+s)
		}
		return end, nil
	}
	return 0, fmt.Errorf("type %%%d is not sizable", id)
}
