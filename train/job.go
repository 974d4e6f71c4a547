package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/mpi"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk/ops"
)

// Job is one rank's side of data-parallel optimizer steps: its share of a step's micro-batches,
// the sum of the gradients across the ranks, overlapped with the backward pass, and the same
// AdamW step as every other rank.
type Job struct {
	World *mpi.World
	Check bool      // compare the ranks' parameters after every step (Run.CheckReplicas)
	Comm  CommStats // what summing the gradients has cost so far

	net     *model.Net  // the model the buckets below belong to
	buckets [][]int     // its gradient buckets, in the order the backward pass finishes them
	bufs    [][]float32 // each bucket's gradients on the host
	scratch []float32   // mpi.World.Sum's
}

// CommStats is the time a rank spent summing gradients across the ranks.
type CommStats struct {
	Steps int `json:"steps"`
	// ReduceS is all of it: reading the gradients from the device, summing them across the
	// ranks, writing the sums back.
	ReduceS float64 `json:"reduce_s"`
	// ExposedS is the part the steps waited for: the reads and writes, and the sums that were
	// not done by the end of the backward pass. The rest ran while the backward pass computed.
	ExposedS float64 `json:"exposed_s"`
}

// Hidden is the fraction of ReduceS that overlapped the backward pass.
func (c CommStats) Hidden() float64 {
	if c.ReduceS == 0 {
		return 0
	}
	return max(0, 1-c.ExposedS/c.ReduceS)
}

// NewJob is this process's side of w's job.
func NewJob(w *mpi.World) *Job { return &Job{World: w} }

// Step is one optimizer step of net over the job's micro-batches, batches (every rank passes
// all of them, Size x A): this rank computes the gradients of its A, in buckets; as soon as
// the backward pass finishes a bucket a goroutine sums it across the ranks (in rank order,
// bitwise the same everywhere) while the backward pass goes on; then every rank applies the
// same clip and AdamW step. The loss is the job's mean, the FLOPs the job's.
func (j *Job) Step(net *model.Net, batches []data.Batch, sp ops.StepParams) (model.StepResult, error) {
	w := j.World
	if w.Size == 1 {
		return net.Step(batches, sp)
	}
	if len(batches)%w.Size != 0 {
		return model.StepResult{}, fmt.Errorf("%d micro-batches cannot be shared by %d ranks", len(batches), w.Size)
	}
	if err := j.use(net); err != nil {
		return model.StepResult{}, err
	}
	count := 0
	for _, b := range batches {
		count += model.Counted(b)
	}
	a := len(batches) / w.Size

	ready := make(chan int, len(j.buckets))
	summed := make(chan error, 1)
	var sumS float64
	go func() {
		var err error
		for k := range ready {
			if err == nil {
				start := time.Now()
				j.scratch, err = w.Sum(j.bufs[k], j.scratch)
				sumS += time.Since(start).Seconds()
			}
		}
		summed <- err
	}()
	var readS float64
	read := func(k int) error {
		start := time.Now()
		err := net.ReadBucket(j.buckets[k], j.bufs[k])
		readS += time.Since(start).Seconds()
		if err == nil {
			ready <- k
		}
		return err
	}
	sum, err := net.ShareGradients(batches[w.Rank*a:(w.Rank+1)*a],
		model.Share{First: w.Rank * a, Micros: len(batches), Tokens: count, Ready: read}, sp)
	close(ready)
	start := time.Now()
	if serr := <-summed; err == nil {
		err = serr
	}
	waitS := time.Since(start).Seconds()
	start = time.Now()
	for k := 0; k < len(j.buckets) && err == nil; k++ {
		err = net.WriteBucket(j.buckets[k], j.bufs[k])
	}
	writeS := time.Since(start).Seconds()
	if err != nil {
		return model.StepResult{}, err
	}
	j.Comm.Steps++
	j.Comm.ReduceS += readS + sumS + writeS
	j.Comm.ExposedS += readS + waitS + writeS
	sums, err := w.Gather(binary.LittleEndian.AppendUint64(nil, math.Float64bits(sum)))
	if err != nil {
		return model.StepResult{}, err
	}
	var total float64
	for _, s := range sums {
		total += math.Float64frombits(binary.LittleEndian.Uint64(s))
	}
	norm, err := net.Update()
	if err != nil {
		return model.StepResult{}, err
	}
	if j.Check {
		if err := j.sameReplicas(net); err != nil {
			return model.StepResult{}, err
		}
	}
	res := model.StepResult{GradNorm: norm, FLOPs: float64(w.Size) * net.StepFLOPs(a)}
	if count > 0 {
		res.Loss = total / float64(count)
	}
	if !finite(res.Loss) {
		return res, fmt.Errorf("loss is %v", res.Loss)
	}
	return res, nil
}

// use sizes the host buffers for net's buckets (a V-cycle trains nets of several sizes).
func (j *Job) use(net *model.Net) error {
	if net == j.net {
		return nil
	}
	buckets, err := net.Buckets()
	if err != nil {
		return err
	}
	j.net, j.buckets, j.bufs = net, buckets, make([][]float32, len(buckets))
	for k, b := range buckets {
		j.bufs[k] = make([]float32, net.BucketLen(b))
	}
	return nil
}

// sameReplicas fails unless every rank's parameters are bitwise rank 0's.
func (j *Job) sameReplicas(net *model.Net) error {
	params, err := net.Params()
	if err != nil {
		return err
	}
	h := sha256.New()
	for _, p := range net.Specs {
		binary.Write(h, binary.LittleEndian, params[p.Name])
	}
	all, err := j.World.Gather(h.Sum(nil))
	if err != nil {
		return err
	}
	for rank, d := range all {
		if !bytes.Equal(d, all[0]) {
			return fmt.Errorf("rank %d's parameters differ from rank 0's", rank)
		}
	}
	return nil
}
