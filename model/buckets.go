package model

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/vktrain/vktrain/vk"
)

// Gradient buckets, for a data-parallel job to overlap summing gradients across ranks with the
// backward pass (as PyTorch DDP does): a micro-step can also be recorded as one sequence per
// bucket, cut after the head, after each block (last first) and after the embeddings; a
// bucket's gradients are final once its sequence has run in the last micro-step of a step,
// while the sequences of the earlier blocks are still to run.

// segments is where a backward pass records: one sequence (split false), or a new sequence
// for every bucket, with the parameters (indices into Specs) each bucket finishes.
type segments struct {
	n       *Net
	split   bool
	seqs    []*vk.Sequence
	buckets [][]int
	taken   map[int]bool
}

// cur is the sequence being recorded.
func (g *segments) cur() *vk.Sequence { return g.seqs[len(g.seqs)-1] }

// cut ends a bucket (when split) with the parameters whose names start with one of prefixes,
// and starts the next sequence.
func (g *segments) cut(prefixes ...string) error {
	if !g.split {
		return nil
	}
	var b []int
	for i, p := range g.n.Specs {
		for _, pre := range prefixes {
			if !g.taken[i] && strings.HasPrefix(p.Name, pre) {
				b = append(b, i)
				g.taken[i] = true
			}
		}
	}
	g.buckets = append(g.buckets, b)
	s, err := g.n.ctx.NewSequence()
	if err != nil {
		return err
	}
	g.seqs = append(g.seqs, s)
	return nil
}

// end ends the last bucket (when split): every parameter no earlier bucket took.
func (g *segments) end() error {
	if !g.split {
		return nil
	}
	var b []int
	for i := range g.n.Specs {
		if !g.taken[i] {
			b = append(b, i)
		}
	}
	g.buckets = append(g.buckets, b)
	return nil
}

// Buckets lists the gradient buckets in the order a micro-step finishes them, each as indices
// into Specs; every parameter is in one.
func (n *Net) Buckets() ([][]int, error) {
	if err := n.recordBuckets(); err != nil {
		return nil, err
	}
	return n.buckets, nil
}

// recordBuckets records the micro-step as one sequence per bucket, once.
func (n *Net) recordBuckets() error {
	if n.bucketSeqs != nil {
		return nil
	}
	first, err := n.ctx.NewSequence()
	if err != nil {
		return err
	}
	g := &segments{n: n, split: true, seqs: []*vk.Sequence{first}, taken: map[int]bool{}}
	err = n.recordForward(first, true)
	if err == nil {
		err = n.recordBackward(g)
	}
	if err != nil {
		for _, s := range g.seqs {
			s.Release()
		}
		return err
	}
	n.bucketSeqs, n.buckets = g.seqs, g.buckets
	return nil
}

// runBuckets runs the recorded micro-step bucket by bucket, calling ready(k) once bucket k's
// sequence has run.
func (n *Net) runBuckets(ready func(bucket int) error) error {
	if err := n.recordBuckets(); err != nil {
		return err
	}
	for k, s := range n.bucketSeqs {
		if err := s.Run(); err != nil {
			return err
		}
		if err := ready(k); err != nil {
			return err
		}
	}
	return nil
}

// BucketLen is the number of floats ReadBucket and WriteBucket move for bucket (its gradient
// tensors whole, pads included).
func (n *Net) BucketLen(bucket []int) int {
	total := 0
	for _, i := range bucket {
		total += n.grads[i].Len()
	}
	return total
}

// ReadBucket copies the gradients of bucket's parameters, in its order, into buf.
func (n *Net) ReadBucket(bucket []int, buf []float32) error {
	return n.moveGrads(bucket, buf, (*vk.Tensor).ReadBytes)
}

// WriteBucket replaces the gradients of bucket's parameters with buf's values.
func (n *Net) WriteBucket(bucket []int, buf []float32) error {
	return n.moveGrads(bucket, buf, (*vk.Tensor).WriteBytes)
}

func (n *Net) moveGrads(bucket []int, buf []float32, move func(*vk.Tensor, uint64, []byte) error) error {
	if len(buf) != n.BucketLen(bucket) {
		return fmt.Errorf("gradient buffer of %d floats, the bucket has %d", len(buf), n.BucketLen(bucket))
	}
	// Tensors hold little-endian float32, as Go's float32 is in memory on every platform
	// vktrain builds for (amd64, arm64).
	bytes := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), 4*len(buf))
	at := 0
	for _, i := range bucket {
		g := n.grads[i]
		if err := move(g, 0, bytes[4*at:4*(at+g.Len())]); err != nil {
			return err
		}
		at += g.Len()
	}
	return nil
}
