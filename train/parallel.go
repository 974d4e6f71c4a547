package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/internal/mpi"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/vk/ops"
)

// Data-parallel training: every rank of an MPI job holds the whole model and draws every
// micro-batch of the job's step from the same batcher (so the job's batches are those of one
// process with grad_accum R*A), computes the gradients of its own A of them, and the ranks sum
// the gradients in rank order (mpi.World.Sum), so that every rank applies bitwise the same AdamW
// step. Rank 0 writes the metrics and the checkpoints.

// CheckReplicas makes every step of a data-parallel job end with a comparison of the ranks'
// parameters (their SHA-256), failing at the first step where a rank's differ from rank 0's.
// It costs a read of the parameters per step; it is how the tests show that every rank holds the
// same model.
func (r *Run) CheckReplicas() {
	if r.job != nil {
		r.job.Check = true
	}
}

// JoinWorld makes the run one rank of w's job. It is collective: every rank calls it after
// NewRun or ResumeRun, and it fails on every rank when their configurations, data or
// checkpoints differ. A fresh run records the number of ranks in its checkpoints; a resumed one
// keeps its global batch (ranks x grad_accum micro-batches per step) by changing grad_accum, or
// is refused when the new number of ranks cannot share the global batch evenly.
func (r *Run) JoinWorld(w *mpi.World) error {
	before := max(r.State.Ranks, 1)
	global := before * r.Cfg.Train.GradAccum
	digest := r.digest()
	all, err := w.Gather(digest[:])
	if err != nil {
		return err
	}
	for rank, d := range all {
		if !bytes.Equal(d, digest[:]) {
			return fmt.Errorf("rank %d and rank %d differ in their configuration, training data or checkpoint; every rank must start the same run", w.Rank, rank)
		}
	}
	resumed := r.lastCkpt != ""
	if resumed && global%w.Size != 0 {
		return fmt.Errorf("the run was trained with %d rank(s) x train.grad_accum %d = %d micro-batches per step, which %d ranks cannot share evenly; resume it with a number of ranks that divides %d",
			before, r.Cfg.Train.GradAccum, global, w.Size, global)
	}
	if a := global / w.Size; resumed && a != r.Cfg.Train.GradAccum {
		// The checkpoints to come store the new split of the same global batch.
		r.Cfg.Train.GradAccum = a
		text, err := r.Cfg.TOML()
		if err != nil {
			return err
		}
		r.CfgText = text
	}
	r.State.Ranks = w.Size
	if w.Size > 1 {
		r.job = NewJob(w)
	}
	return nil
}

// digest is the SHA-256 of what every rank must share: the configuration, the training and
// validation tokens, and the state the run starts from.
func (r *Run) digest() [sha256.Size]byte {
	h := sha256.New()
	h.Write(r.CfgText)
	h.Write(r.dataDigest[:])
	binary.Write(h, binary.LittleEndian, int64(r.State.Step))
	binary.Write(h, binary.LittleEndian, int64(max(r.State.Ranks, 1)))
	h.Write([]byte(r.lastCkpt))
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// tokensDigest is the SHA-256 of a run's training and validation tokens.
func tokensDigest(train, val []uint32) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]uint32{train, val} {
		binary.Write(h, binary.LittleEndian, int64(len(part)))
		binary.Write(h, binary.LittleEndian, part)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// imagesDigest is the SHA-256 of a run's training and validation images and labels.
func imagesDigest(sets ...*data.Images) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range sets {
		binary.Write(h, binary.LittleEndian, [2]int64{int64(s.Len()), int64(len(s.Pixels))})
		h.Write(s.Pixels)
		h.Write(s.Labels)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// Rank is this process's rank in the job (0 without MPI).
func (r *Run) Rank() int {
	if r.job == nil {
		return 0
	}
	return r.job.World.Rank
}

// Ranks is the number of ranks of the job (1 without MPI).
func (r *Run) Ranks() int {
	if r.job == nil {
		return 1
	}
	return r.job.World.Size
}

// lead says whether this rank writes the run's files (metrics, checkpoints).
func (r *Run) lead() bool { return r.Rank() == 0 }

// nextBatches draws the job's micro-batches of one step: ranks x grad_accum of them, every rank
// drawing them all.
func (r *Run) nextBatches() []data.Batch {
	batches := make([]data.Batch, r.Ranks()*r.Cfg.Train.GradAccum)
	for i := range batches {
		batches[i] = r.next()
	}
	return batches
}

// step is one optimizer step over the job's micro-batches (model.Net.Step in one process).
func (r *Run) step(batches []data.Batch, sp ops.StepParams) (model.StepResult, error) {
	if r.job == nil {
		return r.Net.Step(batches, sp)
	}
	return r.job.Step(r.Net, batches, sp)
}

// stopAgreed says whether the run stops here because a rank was interrupted: every rank must
// stop at the same step, so in a job the ranks tell each other (one byte each).
func (r *Run) stopAgreed(interrupted bool) (bool, error) {
	if r.job == nil {
		return interrupted, nil
	}
	flag := []byte{0}
	if interrupted {
		flag[0] = 1
	}
	all, err := r.job.World.Gather(flag)
	if err != nil {
		return false, err
	}
	for _, f := range all {
		if f[0] != 0 {
			return true, nil
		}
	}
	return false, nil
}
