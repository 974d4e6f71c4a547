package vk

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	vkapi "github.com/vulkan-go/vulkan"
)

// Tensor is a range of device memory holding n 4-byte elements (float32, int32 or uint32),
// sub-allocated from an arena. Kernels bind it whole. A row-chunked tensor (NewRowTensor) is
// instead held in pieces, each a Tensor of its own: kernels bind its Chunks one at a time, while
// the host reads and writes it as one.
type Tensor struct {
	Name   string
	ctx    *Context
	arena  *arena
	off    uint64  // bytes into the arena
	n      int     // elements
	chunks []Chunk // a row-chunked tensor's pieces (arena is nil); nil for a plain tensor
}

// Chunk is one piece of a tensor: T holds the elements from Off of the whole.
type Chunk struct {
	T   *Tensor
	Off int
}

// NewTensor allocates n elements (contents undefined until written).
func (c *Context) NewTensor(name string, n int) (*Tensor, error) {
	if n <= 0 {
		return nil, fmt.Errorf("tensor %q: %d elements", name, n)
	}
	a, off, err := c.mem.alloc(uint64(n) * 4)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return &Tensor{Name: name, ctx: c, arena: a, off: off, n: n}, nil
}

// chunkRows is the number of rows of cols elements in each chunk of a row-chunked tensor of
// rows rows: all of them when the tensor fits limit bytes, else the most that do, rounded down
// to a multiple of rowAlign.
func chunkRows(limit uint64, rows, cols, rowAlign int) (int, error) {
	if rows <= 0 || cols <= 0 || rowAlign <= 0 {
		return 0, fmt.Errorf("%d x %d elements in chunks of %d rows", rows, cols, rowAlign)
	}
	row := uint64(cols) * 4
	if uint64(rows)*row <= limit {
		return rows, nil
	}
	r := int(limit/row) / rowAlign * rowAlign
	if r == 0 {
		return 0, fmt.Errorf("%d rows of %s do not fit the chunk limit of %s", rowAlign, FormatBytes(row), FormatBytes(limit))
	}
	return r, nil
}

// NewRowTensor allocates a rows x cols row-major tensor: a plain tensor when it fits the
// device's binding and allocation limits (and Config.ChunkBytes), else row chunks of as many
// rows as fit, a multiple of rowAlign (the last may hold fewer).
func (c *Context) NewRowTensor(name string, rows, cols, rowAlign int) (*Tensor, error) {
	return newRowTensor(c, c.NewTensor, c.chunk, name, rows, cols, rowAlign)
}

// newRowTensor makes a row tensor of ctx (nil: a planned one) from newTensor's tensors.
func newRowTensor(ctx *Context, newTensor func(string, int) (*Tensor, error), limit uint64, name string, rows, cols, rowAlign int) (*Tensor, error) {
	per, err := chunkRows(limit, rows, cols, rowAlign)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if per == rows {
		return newTensor(name, rows*cols)
	}
	t := &Tensor{Name: name, ctx: ctx, n: rows * cols}
	for r := 0; r < rows; r += per {
		p, err := newTensor(fmt.Sprintf("%s rows %d-%d", name, r, min(r+per, rows)-1), min(per, rows-r)*cols)
		if err != nil {
			t.Free()
			return nil, err
		}
		t.chunks = append(t.chunks, Chunk{T: p, Off: r * cols})
	}
	return t, nil
}

// Chunks are the pieces kernels bind, in order: the tensor itself unless it is row-chunked.
func (t *Tensor) Chunks() []Chunk {
	if t.chunks == nil {
		return []Chunk{{T: t}}
	}
	return t.chunks
}

// Chunked reports whether the tensor is held in row chunks.
func (t *Tensor) Chunked() bool { return t != nil && t.chunks != nil }

// Len is the number of elements.
func (t *Tensor) Len() int { return t.n }

// Bytes is the size in bytes.
func (t *Tensor) Bytes() uint64 { return uint64(t.n) * 4 }

// Free returns the memory to its arena; the tensor must not be used after.
func (t *Tensor) Free() {
	for _, c := range t.chunks {
		c.T.Free()
	}
	t.chunks = nil
	if t.arena != nil {
		size := roundUp(t.Bytes(), t.ctx.mem.align)
		t.arena.give(t.off, size)
		t.ctx.mem.live -= size
		t.arena = nil
	}
}

// Allocated is the device memory held by live tensors, bytes (each rounded up to the
// allocation alignment).
func (c *Context) Allocated() uint64 { return c.mem.live }

func (t *Tensor) binding() bindingKey {
	return bindingKey{buffer: t.arena.buf, offset: t.off, size: t.Bytes()}
}

// WriteFloat32 copies data into the tensor starting at element at.
func (t *Tensor) WriteFloat32(at int, data []float32) error {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return t.WriteBytes(uint64(at)*4, b)
}

// WriteUint32 copies data into the tensor starting at element at.
func (t *Tensor) WriteUint32(at int, data []uint32) error {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return t.WriteBytes(uint64(at)*4, b)
}

// ReadFloat32 reads the whole tensor.
func (t *Tensor) ReadFloat32() ([]float32, error) {
	b := make([]byte, t.Bytes())
	if err := t.ReadBytes(0, b); err != nil {
		return nil, err
	}
	out := make([]float32, t.n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// WriteBytes copies b into the tensor at byte offset at: directly when the memory is mapped,
// else through the staging buffer and a copy on the queue.
func (t *Tensor) WriteBytes(at uint64, b []byte) error {
	if err := t.span(at, uint64(len(b))); err != nil || len(b) == 0 {
		return err
	}
	if t.chunks != nil {
		return t.eachChunk(at, b, (*Tensor).WriteBytes)
	}
	if t.arena.mapped != nil {
		copy(unsafe.Slice((*byte)(unsafe.Add(t.arena.mapped, t.off+at)), len(b)), b)
		return nil
	}
	st, err := t.ctx.mem.stagingArena(uint64(len(b)))
	if err != nil {
		return err
	}
	copy(unsafe.Slice((*byte)(st.mapped), len(b)), b)
	return t.ctx.copyBuffer(st.buf, 0, t.arena.buf, t.off+at, uint64(len(b)))
}

// ReadBytes fills b from the tensor at byte offset at.
func (t *Tensor) ReadBytes(at uint64, b []byte) error {
	if err := t.span(at, uint64(len(b))); err != nil || len(b) == 0 {
		return err
	}
	if t.chunks != nil {
		return t.eachChunk(at, b, (*Tensor).ReadBytes)
	}
	if t.arena.mapped != nil {
		copy(b, unsafe.Slice((*byte)(unsafe.Add(t.arena.mapped, t.off+at)), len(b)))
		return nil
	}
	st, err := t.ctx.mem.stagingArena(uint64(len(b)))
	if err != nil {
		return err
	}
	if err := t.ctx.copyBuffer(t.arena.buf, t.off+at, st.buf, 0, uint64(len(b))); err != nil {
		return err
	}
	copy(b, unsafe.Slice((*byte)(st.mapped), len(b)))
	return nil
}

// eachChunk applies a read or write of b at byte offset at to the chunks it covers.
func (t *Tensor) eachChunk(at uint64, b []byte, access func(*Tensor, uint64, []byte) error) error {
	for _, c := range t.chunks {
		lo, hi := uint64(c.Off)*4, uint64(c.Off)*4+c.T.Bytes()
		from, to := max(lo, at), min(hi, at+uint64(len(b)))
		if from >= to {
			continue
		}
		if err := access(c.T, from-lo, b[from-at:to-at]); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tensor) span(at, n uint64) error {
	if t.ctx == nil {
		return fmt.Errorf("tensor %q is only planned (vk.Plan), not allocated", t.Name)
	}
	if t.arena == nil && t.chunks == nil {
		return fmt.Errorf("tensor %q used after Free", t.Name)
	}
	if at+n > t.Bytes() {
		return fmt.Errorf("tensor %q: access of %d bytes at %d is outside its %d bytes", t.Name, n, at, t.Bytes())
	}
	return nil
}

// copyBuffer copies between two buffers on the queue and waits.
func (c *Context) copyBuffer(src vkapi.Buffer, srcOff uint64, dst vkapi.Buffer, dstOff uint64, n uint64) error {
	if c.transfers == nil {
		s, err := c.NewSequence()
		if err != nil {
			return err
		}
		c.transfers = s
	}
	s := c.transfers
	if err := s.Reset(); err != nil {
		return err
	}
	withoutGCDo(func() {
		vkapi.CmdCopyBuffer(s.cmd, src, dst, 1, []vkapi.BufferCopy{{
			SrcOffset: vkapi.DeviceSize(srcOff), DstOffset: vkapi.DeviceSize(dstOff), Size: vkapi.DeviceSize(n),
		}})
	})
	return s.Run()
}

// Allocator makes tensors: a Context allocates them, a Plan only sizes them.
type Allocator interface {
	NewTensor(name string, n int) (*Tensor, error)
	NewRowTensor(name string, rows, cols, rowAlign int) (*Tensor, error)
}

// Plan is an Allocator that allocates nothing: it returns tensors that know their size and
// chunks but hold no memory (kernels and the host refuse them), and adds up the device memory
// the same calls would take on its device, tensor by tensor, with the binding and allocation
// limits checked as the Context checks them.
type Plan struct {
	Info    DeviceInfo
	Kind    string // what the tensors recorded now are for, copied into each Planned
	align   uint64
	chunk   uint64
	Tensors []Planned
}

// Planned is one allocation a Plan recorded: a tensor, or one chunk of a row-chunked one.
type Planned struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Bytes uint64 `json:"bytes"` // rounded up to the allocation alignment
}

// NewPlan is a Plan for the context's device and chunk limit.
func (c *Context) NewPlan() *Plan {
	return &Plan{Info: c.Info, align: c.mem.align, chunk: c.chunk}
}

// NewTensor records a tensor of n elements.
func (p *Plan) NewTensor(name string, n int) (*Tensor, error) {
	if n <= 0 {
		return nil, fmt.Errorf("tensor %q: %d elements", name, n)
	}
	size := uint64(n) * 4
	if size > p.Info.MaxStorageBuffer {
		return nil, fmt.Errorf("tensor %q of %s exceeds the device's maxStorageBufferRange of %s", name, FormatBytes(size), FormatBytes(p.Info.MaxStorageBuffer))
	}
	if size > p.Info.MaxAllocation {
		return nil, fmt.Errorf("tensor %q of %s exceeds the device's maxMemoryAllocationSize of %s", name, FormatBytes(size), FormatBytes(p.Info.MaxAllocation))
	}
	p.Tensors = append(p.Tensors, Planned{Name: name, Kind: p.Kind, Bytes: roundUp(size, p.align)})
	return &Tensor{Name: name, n: n}, nil
}

// NewRowTensor records a rows x cols tensor, in row chunks as Context.NewRowTensor would hold it.
func (p *Plan) NewRowTensor(name string, rows, cols, rowAlign int) (*Tensor, error) {
	return newRowTensor(nil, p.NewTensor, p.chunk, name, rows, cols, rowAlign)
}

// Total is the device memory of every recorded allocation, bytes.
func (p *Plan) Total() uint64 {
	var n uint64
	for _, t := range p.Tensors {
		n += t.Bytes
	}
	return n
}

// ChunkLimit is the largest chunk of a row-chunked tensor, bytes.
func (p *Plan) ChunkLimit() uint64 { return p.chunk }
