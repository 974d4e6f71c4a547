package model

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
)

// MemoryPlan is the memory a model takes, computed before anything is allocated: the device
// memory of each kind of tensor (NewNet's own allocation calls, made against a vk.Plan), the
// host memory its initialisation stages through, and whether it fits beside what the device
// already holds.
type MemoryPlan struct {
	Device      string       `json:"device"`
	Capacity    uint64       `json:"capacity_bytes"` // what vktrain may use (vk.Context.Capacity)
	InUse       uint64       `json:"in_use_bytes"`   // already allocated on the device
	Terms       []MemoryTerm `json:"terms"`          // by kind, in the order of the Kind constants
	Total       uint64       `json:"device_bytes"`   // the sum of the terms
	HostStaging uint64       `json:"host_staging_bytes"`
	Largest     []vk.Planned `json:"largest"` // the largest allocations, largest first
	ChunkLimit  uint64       `json:"chunk_limit_bytes"`
	Chunked     []string     `json:"chunked"` // the tensors held in row chunks
	Fits        bool         `json:"fits"`
}

// MemoryTerm is the device memory of one kind of tensor.
type MemoryTerm struct {
	Kind    string `json:"kind"`
	Bytes   uint64 `json:"bytes"`
	Tensors int    `json:"allocations"` // chunks count one each
}

// PlanNet is the memory plan of NewNet(o, cfg, vocab, b, t, ...), allocating nothing.
func PlanNet(o *ops.Ops, cfg config.Model, vocab, b, t int) (*MemoryPlan, error) {
	n, err := newNet(o, cfg, vocab, b, t)
	if err != nil {
		return nil, err
	}
	return n.plan()
}

// plan runs the model's allocation against a vk.Plan.
func (n *Net) plan() (*MemoryPlan, error) {
	p := n.ctx.NewPlan()
	a := &alloc{mem: p}
	if err := (&Net{Cfg: n.Cfg, Vocab: n.Vocab, B: n.B, T: n.T, Specs: n.Specs, o: n.o, index: map[string]int{}}).allocate(a, 0); err != nil {
		return nil, err
	}
	mp := &MemoryPlan{Device: n.ctx.Info.Name, Capacity: n.ctx.Capacity(), InUse: n.ctx.Allocated(), Total: p.Total(),
		ChunkLimit: p.ChunkLimit()}
	for _, k := range []string{KindParams, KindGrads, KindMoments, KindActivations, KindWorkspace} {
		term := MemoryTerm{Kind: k}
		for _, t := range p.Tensors {
			if t.Kind == k {
				term.Bytes += t.Bytes
				term.Tensors++
			}
		}
		mp.Terms = append(mp.Terms, term)
	}
	for _, t := range a.all {
		if t.Chunked() {
			mp.Chunked = append(mp.Chunked, fmt.Sprintf("%s (%d chunks)", t.Name, len(t.Chunks())))
		}
	}
	mp.Largest = slices.SortedStableFunc(slices.Values(p.Tensors), func(x, y vk.Planned) int { return cmp.Compare(y.Bytes, x.Bytes) })
	mp.Largest = mp.Largest[:min(5, len(mp.Largest))]
	// initParams holds the largest tensor twice on the host while writing it (float32 values
	// and their bytes), and a device the host cannot map stages each allocation through a
	// buffer of its size.
	for _, t := range a.all {
		mp.HostStaging = max(mp.HostStaging, 2*t.Bytes())
	}
	if !n.ctx.Mappable() && len(mp.Largest) > 0 {
		mp.HostStaging += mp.Largest[0].Bytes
	}
	mp.Fits = mp.InUse+mp.Total <= mp.Capacity
	return mp, nil
}

// String is the plan as a table.
func (p *MemoryPlan) String() string {
	var b strings.Builder
	row := func(what string, bytes uint64, note string) {
		fmt.Fprintf(&b, "  %-22s %12s  %s\n", what, vk.FormatBytes(bytes), note)
	}
	fmt.Fprintf(&b, "memory plan on %s\n", p.Device)
	for _, t := range p.Terms {
		row(t.Kind, t.Bytes, fmt.Sprintf("%d allocations", t.Tensors))
	}
	row("device total", p.Total, "")
	if p.InUse > 0 {
		row("already in use", p.InUse, "")
	}
	row("device capacity", p.Capacity, "")
	row("host staging", p.HostStaging, "while initialising, on the host")
	fmt.Fprintf(&b, "  largest allocations:\n")
	for _, t := range p.Largest {
		fmt.Fprintf(&b, "    %-40s %12s  %s\n", t.Name, vk.FormatBytes(t.Bytes), t.Kind)
	}
	if len(p.Chunked) > 0 {
		fmt.Fprintf(&b, "  held in row chunks of at most %s: %s\n", vk.FormatBytes(p.ChunkLimit), strings.Join(p.Chunked, ", "))
	}
	if !p.Fits {
		fmt.Fprintf(&b, "  does not fit: %s needed, %s free\n", vk.FormatBytes(p.Total), vk.FormatBytes(p.Capacity-min(p.Capacity, p.InUse)))
	}
	return b.String()
}

// sizeGuard refuses a model whose weight matrices and token table alone, with their gradients
// and AdamW moments (16 bytes a parameter), exceed the device's capacity, or whose sizes do not
// fit the arithmetic, before anything is listed or allocated: an absurd layer count is refused
// with the numbers, not by running out of host memory.
func sizeGuard(m config.Model, vocab int, capacity uint64) error {
	d, f, l := float64(m.Width), float64(m.FFN), float64(m.Layers)
	params := l*(4*d*d+2*d*f) + float64(vocab)*d + float64(m.Context)*d
	const maxElems = 1 << 53 // exact in a float64, far beyond any int a tensor's size takes
	for _, x := range []float64{params, float64(vocab) * d, float64(m.Context) * d, d * f, 3 * d * d} {
		if x > maxElems {
			return fmt.Errorf("model: %d layers x width %d x FFN %d over %d tokens: %.3g parameters overflow the sizes vktrain computes",
				m.Layers, m.Width, m.FFN, vocab, params)
		}
	}
	if need := 16 * params; need > float64(capacity) {
		return fmt.Errorf("model: %d layers x width %d (FFN %d, vocabulary %d) is at least %.4g parameters, %s with gradients and AdamW moments; the device has %s",
			m.Layers, m.Width, m.FFN, vocab, params, vk.FormatBytes(uint64(need)), vk.FormatBytes(capacity))
	}
	return nil
}
