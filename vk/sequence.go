package vk

import (
	"fmt"
	"reflect"

	vkapi "github.com/vulkan-go/vulkan"
)

// Access says how a dispatch uses a bound tensor.
type Access uint8

// Tensor access modes.
const (
	Read Access = 1 << iota
	Write
	ReadWrite = Read | Write
)

// Arg binds a tensor to the next binding of a dispatch.
type Arg struct {
	T      *Tensor
	Access Access
	Texels bool // read through a vec4 texel view (see InTexels)
}

// In, Out and InOut bind a tensor that the dispatch reads, writes, or both.
func In(t *Tensor) Arg    { return Arg{T: t, Access: Read} }
func Out(t *Tensor) Arg   { return Arg{T: t, Access: Write} }
func InOut(t *Tensor) Arg { return Arg{T: t, Access: ReadWrite} }

// InTexels binds a tensor that the dispatch reads through an RGBA32F uniform texel buffer view:
// the arg in position i goes to binding MaxBindings+i (a `uniform samplerBuffer`, texel j holding
// elements 4j..4j+3), and to storage binding i as well (for the elements of a partial last
// texel). lavapipe fetches a texel with one vector load per lane, where a storage-buffer load
// loops over the lanes with a bounds check per component. Only the first MaxTexelBindings args
// can be texel views, of tensors whose texel count fits Info.MaxTexelElements (FitsTexels).
func InTexels(t *Tensor) Arg { return Arg{T: t, Access: Read, Texels: true} }

// InOutTexels is InTexels for a tensor that the dispatch also writes, through storage binding i.
// A texel view may be cached apart from the storage buffer, so an invocation must read an element
// through the view only before any invocation writes it (an in-place elementwise update).
func InOutTexels(t *Tensor) Arg { return Arg{T: t, Access: ReadWrite, Texels: true} }

// FitsTexels reports whether the device can view t as texels (InTexels).
func (c *Context) FitsTexels(t *Tensor) bool {
	return texels(t.Bytes()) <= uint64(c.Info.MaxTexelElements)
}

// Sequence is a command buffer of many dispatches, recorded once and run (submitted and waited
// for) as often as wanted. A barrier is recorded only before a dispatch that touches a range an
// earlier dispatch wrote, or writes a range an earlier one read, since the last barrier.
type Sequence struct {
	ctx        *Context
	cmd        vkapi.CommandBuffer
	recording  bool
	dispatches int
	barriers   int
	reads      []bindingKey // ranges read since the last barrier
	writes     []bindingKey // ranges written since the last barrier
	filled     bool         // a Fill (a transfer write) is among the writes
	dummy      *Tensor      // bound to unused bindings
	flops      float64      // floating-point operations recorded, as the ops count them

	timed   bool
	queries vkapi.QueryPool
	capac   int
	labels  []string
}

// DispatchTime is the GPU time of one dispatch of a timed sequence.
type DispatchTime struct {
	Label string
	Ms    float64
}

// NewSequence allocates a command buffer and starts recording.
func (c *Context) NewSequence() (*Sequence, error) {
	s := &Sequence{ctx: c}
	cmds := make([]vkapi.CommandBuffer, 1)
	if err := check("vkAllocateCommandBuffers", vkapi.AllocateCommandBuffers(c.device, &vkapi.CommandBufferAllocateInfo{
		SType:              vkapi.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        c.pool,
		Level:              vkapi.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}, cmds)); err != nil {
		return nil, err
	}
	s.cmd = cmds[0]
	return s, s.Reset()
}

// NewTimedSequence is a sequence that records a GPU timestamp around each of up to max dispatches.
func (c *Context) NewTimedSequence(max int) (*Sequence, error) {
	if !c.TimestampsSupported() {
		return nil, fmt.Errorf("device %q cannot time dispatches (no timestamp support on its compute queue)", c.Info.Name)
	}
	var pool vkapi.QueryPool
	if err := check("vkCreateQueryPool", vkapi.CreateQueryPool(c.device, &vkapi.QueryPoolCreateInfo{
		SType:      vkapi.StructureTypeQueryPoolCreateInfo,
		QueryType:  vkapi.QueryTypeTimestamp,
		QueryCount: uint32(2 * max),
	}, nil, &pool)); err != nil {
		return nil, err
	}
	s := &Sequence{ctx: c, timed: true, queries: pool, capac: max}
	cmds := make([]vkapi.CommandBuffer, 1)
	if err := check("vkAllocateCommandBuffers", vkapi.AllocateCommandBuffers(c.device, &vkapi.CommandBufferAllocateInfo{
		SType:              vkapi.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        c.pool,
		Level:              vkapi.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}, cmds)); err != nil {
		vkapi.DestroyQueryPool(c.device, pool, nil)
		return nil, err
	}
	s.cmd = cmds[0]
	return s, s.Reset()
}

// Reset drops everything recorded and starts recording again.
func (s *Sequence) Reset() error {
	if s.recording {
		vkapi.EndCommandBuffer(s.cmd)
	}
	if err := check("vkResetCommandBuffer", vkapi.ResetCommandBuffer(s.cmd, 0)); err != nil {
		return err
	}
	if err := check("vkBeginCommandBuffer", vkapi.BeginCommandBuffer(s.cmd, &vkapi.CommandBufferBeginInfo{
		SType: vkapi.StructureTypeCommandBufferBeginInfo,
	})); err != nil {
		return err
	}
	s.recording = true
	s.dispatches, s.barriers, s.flops = 0, 0, 0
	s.reads, s.writes, s.labels, s.filled = s.reads[:0], s.writes[:0], s.labels[:0], false
	if s.timed {
		vkapi.CmdResetQueryPool(s.cmd, s.queries, 0, uint32(2*s.capac))
	}
	// Order this submission after everything earlier on the queue (and host writes).
	s.memoryBarrier(vkapi.PipelineStageAllCommandsBit, vkapi.PipelineStageAllCommandsBit,
		vkapi.AccessMemoryWriteBit|vkapi.AccessHostWriteBit, vkapi.AccessMemoryReadBit|vkapi.AccessMemoryWriteBit)
	return nil
}

func (s *Sequence) memoryBarrier(src, dst vkapi.PipelineStageFlagBits, srcAccess, dstAccess vkapi.AccessFlagBits) {
	withoutGCDo(func() {
		vkapi.CmdPipelineBarrier(s.cmd, vkapi.PipelineStageFlags(src), vkapi.PipelineStageFlags(dst), 0,
			1, []vkapi.MemoryBarrier{{
				SType:         vkapi.StructureTypeMemoryBarrier,
				SrcAccessMask: vkapi.AccessFlags(srcAccess),
				DstAccessMask: vkapi.AccessFlags(dstAccess),
			}}, 0, nil, 0, nil)
	})
}

// Dispatch records kernel k over groups workgroups with push constants push, a value of the push
// type of k's shader in shaders.Contracts (nil for a shader without push constants), binding
// args to bindings 0, 1, ... in order.
func (s *Sequence) Dispatch(k *Kernel, groups [3]uint32, push any, args ...Arg) error {
	return s.DispatchLabeled("", k, groups, push, args...)
}

// DispatchLabeled is Dispatch with a label for timings ("" = the kernel's name).
func (s *Sequence) DispatchLabeled(label string, k *Kernel, groups [3]uint32, push any, args ...Arg) error {
	c := s.ctx
	if !s.recording {
		return fmt.Errorf("sequence: dispatch of %s after Run without Reset", k)
	}
	if len(args) > MaxBindings {
		return fmt.Errorf("dispatch of %s: %d tensors, at most %d", k, len(args), MaxBindings)
	}
	if t := reflect.TypeOf(push); t != k.push {
		if k.push == nil {
			return fmt.Errorf("dispatch of %s: push constants of type %v, the shader has none", k, t)
		}
		return fmt.Errorf("dispatch of %s: push constants of type %v, the shader's contract is %v", k, t, k.push)
	}
	var pushed []byte
	if push != nil {
		if err := checkPushType(k.push); err != nil {
			return fmt.Errorf("dispatch of %s: %w", k, err)
		}
		pushed = encodePush(make([]byte, 0, PushConstantSize), reflect.ValueOf(push))
		if len(pushed) > PushConstantSize {
			return fmt.Errorf("dispatch of %s: %d bytes of push constants, at most %d", k, len(pushed), PushConstantSize)
		}
	}
	for i, g := range groups {
		if g == 0 || g > c.Info.MaxWorkgroupCount[i] {
			return fmt.Errorf("dispatch of %s: %d workgroups in dimension %d, device allows 1..%d", k, g, i, c.Info.MaxWorkgroupCount[i])
		}
	}
	if s.timed && s.dispatches >= s.capac {
		return fmt.Errorf("timed sequence holds at most %d dispatches", s.capac)
	}
	if s.dummy == nil {
		d, err := c.dummyTensor()
		if err != nil {
			return err
		}
		s.dummy = d
	}
	var key [allBindings]bindingKey
	for i := range key {
		key[i] = s.dummy.binding()
	}
	for i, a := range args {
		if a.T != nil && a.T.Chunked() {
			return fmt.Errorf("dispatch of %s: tensor %q is held in %d row chunks, which bind one at a time", k, a.T.Name, len(a.T.chunks))
		}
		if a.T == nil || a.T.arena == nil {
			return fmt.Errorf("dispatch of %s: binding %d has no tensor", k, i)
		}
		key[i] = a.T.binding()
		if !a.Texels {
			continue
		}
		if i >= MaxTexelBindings {
			return fmt.Errorf("dispatch of %s: arg %d: only the first %d args can be texel views", k, i, MaxTexelBindings)
		}
		if a.Access&Read == 0 {
			return fmt.Errorf("dispatch of %s: arg %d: a texel view is for reading (InTexels, InOutTexels), not write-only", k, i)
		}
		if !c.FitsTexels(a.T) {
			return fmt.Errorf("dispatch of %s: tensor %q has %d texels, the device's maxTexelBufferElements is %d",
				k, a.T.Name, texels(a.T.Bytes()), c.Info.MaxTexelElements)
		}
		key[MaxBindings+i] = a.T.binding()
	}
	set, err := c.layouts.descriptorSet(c.device, key)
	if err != nil {
		return err
	}
	if s.hazard(args) {
		s.barrier(vkapi.PipelineStageComputeShaderBit, vkapi.AccessShaderReadBit|vkapi.AccessShaderWriteBit)
	}
	for _, a := range args {
		if a.Access&Read != 0 {
			s.reads = append(s.reads, a.T.binding())
		}
		if a.Access&Write != 0 {
			s.writes = append(s.writes, a.T.binding())
		}
	}
	s.timeStart()
	vkapi.CmdBindPipeline(s.cmd, vkapi.PipelineBindPointCompute, k.pipeline)
	vkapi.CmdBindDescriptorSets(s.cmd, vkapi.PipelineBindPointCompute, c.layouts.pipeline, 0, 1, []vkapi.DescriptorSet{set}, 0, nil)
	if len(pushed) > 0 {
		vkapi.CmdPushConstants(s.cmd, c.layouts.pipeline, vkapi.ShaderStageFlags(vkapi.ShaderStageComputeBit), 0, uint32(len(pushed)), cBytesPtr(pushed))
	}
	vkapi.CmdDispatch(s.cmd, groups[0], groups[1], groups[2])
	if label == "" {
		label = k.String()
	}
	s.timeEnd(label)
	return nil
}

// Fill records setting the first n elements of t to the 32-bit pattern bits (math.Float32bits
// of a float) with vkCmdFillBuffer, a transfer command: drivers implement it as a memset (on
// lavapipe twice as fast as a fill kernel, whose stores llvmpipe issues lane by lane). It counts
// as a dispatch (Dispatches, Times) and is ordered against dispatches like one.
func (s *Sequence) Fill(t *Tensor, n int, bits uint32) error {
	if !s.recording {
		return fmt.Errorf("sequence: fill of %q after Run without Reset", t.Name)
	}
	if t.Chunked() {
		return fmt.Errorf("fill: tensor %q is held in %d row chunks, which fill one at a time", t.Name, len(t.chunks))
	}
	if t.arena == nil {
		return fmt.Errorf("fill: tensor %q has no memory", t.Name)
	}
	if n <= 0 || n > t.Len() {
		return fmt.Errorf("fill: %d elements of tensor %q, which holds %d", n, t.Name, t.Len())
	}
	if s.timed && s.dispatches >= s.capac {
		return fmt.Errorf("timed sequence holds at most %d dispatches", s.capac)
	}
	r := t.binding()
	r.size = uint64(n) * 4
	if overlapsAny(r, s.writes) || overlapsAny(r, s.reads) {
		s.barrier(vkapi.PipelineStageTransferBit, vkapi.AccessTransferWriteBit)
	}
	s.writes = append(s.writes, r)
	s.filled = true
	s.timeStart()
	vkapi.CmdFillBuffer(s.cmd, r.buffer, vkapi.DeviceSize(r.offset), vkapi.DeviceSize(r.size), bits)
	s.timeEnd("fill (vkCmdFillBuffer)")
	return nil
}

// barrier makes the writes since the last barrier (by dispatches, and by fills if any) visible
// to the commands of stage dst with accesses dstAccess, and starts a new list of ranges.
func (s *Sequence) barrier(dst vkapi.PipelineStageFlagBits, dstAccess vkapi.AccessFlagBits) {
	src, srcAccess := vkapi.PipelineStageFlagBits(vkapi.PipelineStageComputeShaderBit), vkapi.AccessFlagBits(vkapi.AccessShaderWriteBit)
	if s.filled {
		src, srcAccess = src|vkapi.PipelineStageTransferBit, srcAccess|vkapi.AccessTransferWriteBit
	}
	s.memoryBarrier(src, dst, srcAccess, dstAccess)
	s.barriers++
	s.reads, s.writes, s.filled = s.reads[:0], s.writes[:0], false
}

// timeStart and timeEnd bracket a command of a timed sequence with timestamps, and count it.
func (s *Sequence) timeStart() {
	if s.timed {
		vkapi.CmdWriteTimestamp(s.cmd, vkapi.PipelineStageTopOfPipeBit, s.queries, uint32(2*s.dispatches))
	}
}

func (s *Sequence) timeEnd(label string) {
	if s.timed {
		vkapi.CmdWriteTimestamp(s.cmd, vkapi.PipelineStageBottomOfPipeBit, s.queries, uint32(2*s.dispatches+1))
		s.labels = append(s.labels, label)
	}
	s.dispatches++
}

// hazard reports whether a dispatch with these args must wait for the dispatches since the last barrier.
func (s *Sequence) hazard(args []Arg) bool {
	for _, a := range args {
		r := a.T.binding()
		if overlapsAny(r, s.writes) { // read-after-write or write-after-write
			return true
		}
		if a.Access&Write != 0 && overlapsAny(r, s.reads) { // write-after-read
			return true
		}
	}
	return false
}

func overlapsAny(r bindingKey, list []bindingKey) bool {
	for _, o := range list {
		if o.buffer == r.buffer && r.offset < o.offset+o.size && o.offset < r.offset+r.size {
			return true
		}
	}
	return false
}

// CountFLOPs adds the floating-point operations of a recorded dispatch; ops call it so that a
// run's FLOPs are those of the kernels actually dispatched.
func (s *Sequence) CountFLOPs(n float64) { s.flops += n }

// FLOPs is the floating-point work of one run of the sequence.
func (s *Sequence) FLOPs() float64 { return s.flops }

// Barriers is the number of barriers recorded between dispatches.
func (s *Sequence) Barriers() int { return s.barriers }

// Dispatches is the number of dispatches recorded.
func (s *Sequence) Dispatches() int { return s.dispatches }

// Run ends recording (the first time), submits the sequence and waits for it. It can be called
// again to replay the same commands. Validation errors raised by the run are returned.
func (s *Sequence) Run() error {
	c := s.ctx
	if s.recording {
		// Make the results visible to the host and to later submissions.
		s.memoryBarrier(vkapi.PipelineStageAllCommandsBit, vkapi.PipelineStageHostBit|vkapi.PipelineStageAllCommandsBit,
			vkapi.AccessMemoryWriteBit, vkapi.AccessHostReadBit|vkapi.AccessMemoryReadBit|vkapi.AccessMemoryWriteBit)
		if err := check("vkEndCommandBuffer", vkapi.EndCommandBuffer(s.cmd)); err != nil {
			return err
		}
		s.recording = false
	}
	if err := check("vkResetFences", vkapi.ResetFences(c.device, 1, []vkapi.Fence{c.fence})); err != nil {
		return err
	}
	submitted := withoutGC(func() vkapi.Result {
		return vkapi.QueueSubmit(c.queue, 1, []vkapi.SubmitInfo{{
			SType:              vkapi.StructureTypeSubmitInfo,
			CommandBufferCount: 1,
			PCommandBuffers:    []vkapi.CommandBuffer{s.cmd},
		}}, c.fence)
	})
	if err := check("vkQueueSubmit", submitted); err != nil {
		return err
	}
	if err := check("vkWaitForFences", vkapi.WaitForFences(c.device, 1, []vkapi.Fence{c.fence}, vkapi.True, ^uint64(0))); err != nil {
		return err
	}
	return c.Check()
}

// Times returns each dispatch's GPU time from the last Run of a timed sequence.
func (s *Sequence) Times() ([]DispatchTime, error) {
	if !s.timed {
		return nil, fmt.Errorf("sequence is not timed")
	}
	n := s.dispatches
	if n == 0 {
		return nil, nil
	}
	raw := make([]uint64, 2*n)
	if err := check("vkGetQueryPoolResults", vkapi.GetQueryPoolResults(s.ctx.device, s.queries, 0, uint32(2*n),
		uint(8*2*n), cBytesPtrU64(raw), 8, vkapi.QueryResultFlags(vkapi.QueryResult64Bit|vkapi.QueryResultWaitBit))); err != nil {
		return nil, err
	}
	mask := ^uint64(0)
	if b := s.ctx.timestampBits; b < 64 {
		mask = 1<<b - 1
	}
	out := make([]DispatchTime, n)
	for i := range out {
		ticks := (raw[2*i+1] - raw[2*i]) & mask
		out[i] = DispatchTime{Label: s.labels[i], Ms: float64(ticks) * float64(s.ctx.Info.TimestampPeriodNs) / 1e6}
	}
	return out, nil
}

// Release frees the command buffer (and the query pool of a timed sequence).
func (s *Sequence) Release() {
	c := s.ctx
	if s.cmd != nil {
		vkapi.FreeCommandBuffers(c.device, c.pool, 1, []vkapi.CommandBuffer{s.cmd})
		s.cmd = nil
	}
	if s.queries != nil {
		vkapi.DestroyQueryPool(c.device, s.queries, nil)
		s.queries = nil
	}
}
