package tune

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/profile"
)

// Case is one kernel at one shape, as a training step runs it, and how often.
type Case struct {
	Kernel string  `json:"kernel"`            // add, bias_grad, gelu, layernorm, embedding, cross_entropy, adamw, grad_norm, attention or matmul
	Dims   []int   `json:"dims"`              // the shape: the dimensions kernels names for the kernel
	TransA bool    `json:"trans_a,omitempty"` // matmul
	TransB bool    `json:"trans_b,omitempty"` // matmul
	Causal bool    `json:"causal,omitempty"`  // attention
	Count  float64 `json:"count"`             // runs per training step: the weight of its time
}

// Op is the profile op whose entry the case runs ("" for an unknown kernel).
func (c Case) Op() string { return kernels[c.Kernel].op }

func (c Case) String() string {
	dims := make([]string, len(c.Dims))
	for i, d := range c.Dims {
		dims[i] = fmt.Sprint(d)
	}
	s := c.Kernel
	if c.Kernel == "matmul" {
		s += " " + map[[2]bool]string{{false, false}: "NN", {true, false}: "TN", {false, true}: "NT", {true, true}: "TT"}[[2]bool{c.TransA, c.TransB}]
	}
	if c.Causal {
		s += " causal"
	}
	return s + " " + strings.Join(dims, "x")
}

// validate checks that the kernel is known and the shape has its dimensions, all positive.
func (c Case) validate() error {
	k, ok := kernels[c.Kernel]
	if !ok {
		return fmt.Errorf("tune: unknown kernel %q (known: %s)", c.Kernel, strings.Join(slices.Sorted(maps.Keys(kernels)), ", "))
	}
	if len(c.Dims) != len(k.dims) || slices.Min(c.Dims) < 1 {
		return fmt.Errorf("tune: %s takes %d positive dimensions (%s), not %v", c.Kernel, len(k.dims), strings.Join(k.dims, ", "), c.Dims)
	}
	if c.Kernel == "attention" && c.Dims[3] > ops.MaxHeadSize {
		return fmt.Errorf("tune: attention head size %d exceeds %d", c.Dims[3], ops.MaxHeadSize)
	}
	return nil
}

// bucket is the case's shape bucket: every dimension rounded down to a power of two (so a
// bucket never needs more memory than the case), the count scaled by how much larger the case
// is, so that the bucket's weight stays the case's share of a step.
func (c Case) bucket() Case {
	b := c
	b.Dims = make([]int, len(c.Dims))
	for i, d := range c.Dims {
		b.Dims[i] = 1 << (bits.Len(uint(d)) - 1)
		b.Count *= float64(d) / float64(b.Dims[i])
	}
	return b
}

// Buckets rounds the cases to their buckets and merges the cases of one bucket, adding their
// counts; the result is in order of first appearance.
func Buckets(cases []Case) []Case {
	var out []Case
	at := map[string]int{}
	for _, c := range cases {
		b := c.bucket()
		if i, ok := at[b.String()]; ok {
			out[i].Count += b.Count
			continue
		}
		at[b.String()] = len(out)
		out = append(out, b)
	}
	return out
}

// Options control the search.
type Options struct {
	Quick    bool                  // a coarser grid and fewer samples (under 2 minutes on lavapipe for gpt-small)
	Samples  int                   // timed runs of each candidate on each bucket after a warm-up; 0 means 5, or 2 when Quick
	Progress func(done, total int) // called as the work advances; may be nil
}

// DropRatio is how much slower than the leader a candidate may be before the tuner stops timing it.
const DropRatio = 1.5

// Result is what the tuner found for one op.
type Result struct {
	Op       string        `json:"op"`
	Winner   profile.Entry `json:"winner"`
	Baseline profile.Entry `json:"baseline"` // the entry the device had before tuning
	Tried    int           `json:"tried"`    // candidates timed
	Buckets  []TunedBucket `json:"buckets"`
}

// TunedBucket is one bucket's best time with the winner and with the baseline entry.
type TunedBucket struct {
	Case       Case    `json:"case"`
	WinnerMs   float64 `json:"winner_ms"`
	BaselineMs float64 `json:"baseline_ms"`
}

// StepMs is the op's weighted time in a training step (each bucket's best time times its
// count), with the winner and with the baseline.
func (r Result) StepMs() (winner, baseline float64) {
	for _, b := range r.Buckets {
		winner += b.Case.Count * b.WinnerMs
		baseline += b.Case.Count * b.BaselineMs
	}
	return winner, baseline
}

// Tune finds, for each op the cases run, the profile entry that runs its buckets (Buckets) in
// the least weighted time. Every parameter set of the grid of each of the op's variants that
// passes the device-limit checks is a candidate, and so is o's own entry, the baseline. Each
// candidate is recorded on each bucket, run once to warm up (compiling its pipelines) and timed
// with GPU timestamps (the wall clock where the device has none) over opt.Samples rounds,
// keeping each bucket's best time; the rounds interleave the candidates, so that a change of
// load on the machine hits them alike. A candidate is dropped as soon as its time on the
// buckets timed so far exceeds DropRatio times the leader's on the same buckets; the baseline
// is timed in full, for the comparison. A final then times the leading candidates and the
// baseline afresh, back to back on each bucket, and the best of them wins. The winner is
// checked against the float64 reference on every bucket; an op whose winner fails is an error.
func Run(o *ops.Ops, cases []Case, opt Options) ([]Result, error) {
	for _, c := range cases {
		if err := c.validate(); err != nil {
			return nil, err
		}
	}
	if opt.Samples <= 0 {
		opt.Samples = 5
		if opt.Quick {
			opt.Samples = 2
		}
	}
	byOp := map[string][]Case{}
	for _, b := range Buckets(cases) {
		byOp[b.Op()] = append(byOp[b.Op()], b)
	}
	p := &progress{report: opt.Progress}
	var searches []*search
	for _, op := range slices.Sorted(maps.Keys(byOp)) {
		base, err := o.Profile().Entry(op)
		if err != nil {
			return nil, err
		}
		buckets := byOp[op]
		// The heaviest bucket first: a poor candidate is dropped there, after one bucket.
		slices.SortStableFunc(buckets, func(a, b Case) int { return cmp.Compare(b.Count, a.Count) })
		s := &search{o: o, op: op, buckets: buckets, samples: opt.Samples, progress: p}
		for i, e := range candidates(o, op, base, opt.Quick) {
			candOps, err := o.With(e)
			if err != nil {
				return nil, err
			}
			inf := make([]float64, len(buckets))
			for j := range inf {
				inf[j] = math.Inf(1)
			}
			s.cands = append(s.cands, &candidate{entry: e, ops: candOps, seqs: make([]*vk.Sequence, len(buckets)), best: inf, baseline: i == 0})
		}
		p.total += (len(s.cands)*(opt.Samples+1) + (finalists+1)*opt.Samples + 1) * len(buckets)
		searches = append(searches, s)
	}
	var out []Result
	for _, s := range searches {
		r, err := s.run()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// TunedProfile is the profile of the results' winners, matched to this device, its driver,
// driver version and subgroup size, and recording the kernel set they were measured with.
func Profile(o *ops.Ops, results []Result) *profile.Profile {
	d := o.Context().Info
	vendor, device, version, subgroup := d.VendorID, d.DeviceID, d.DriverVersion, d.SubgroupSize
	p := &profile.Profile{Name: "tuned", Description: "measured by vktrain tune on " + d.Name, Kernels: shaders.KernelSetHash(),
		Match: profile.Match{VendorID: &vendor, DeviceID: &device, Driver: d.Driver, DriverVersion: &version,
			SubgroupSize: &subgroup},
		Entries: map[string]profile.Entry{}}
	for _, r := range results {
		p.Entries[r.Op] = r.Winner
	}
	return p
}

// progress counts the units of work done: one run of a candidate on a bucket, or one bucket
// checked.
type progress struct {
	done, total int
	report      func(done, total int)
}

func (p *progress) add(n int) {
	p.done += n
	if p.report != nil {
		p.report(p.done, p.total)
	}
}

// candidate is one entry under trial: its ops, its timed sequence on each bucket (nil until
// recorded) and its best time there (+Inf until timed).
type candidate struct {
	entry    profile.Entry
	ops      *ops.Ops
	seqs     []*vk.Sequence
	best     []float64
	baseline bool
	dropped  bool
}

// score is the candidate's weighted time over the buckets it has been timed on, and other's
// over the same buckets.
func (c *candidate) score(buckets []Case, other *candidate) (own, others float64) {
	for i, b := range buckets {
		if !math.IsInf(c.best[i], 1) {
			own += b.Count * c.best[i]
			others += b.Count * other.best[i]
		}
	}
	return own, others
}

// search is the tuning of one op.
type search struct {
	o        *ops.Ops
	op       string
	buckets  []Case
	samples  int
	cands    []*candidate
	progress *progress
	works    []*work
}

func (s *search) run() (Result, error) {
	defer s.release()
	for i, b := range s.buckets {
		w, err := newWork(s.o.Context(), b, uint64(i))
		if err != nil {
			return Result{}, err
		}
		s.works = append(s.works, w)
	}
	for round := 0; round < s.samples; round++ {
		for _, c := range s.cands {
			if err := s.time(c, round); err != nil {
				return Result{}, err
			}
		}
	}
	if err := s.final(); err != nil {
		return Result{}, err
	}
	win := s.leader()
	res := Result{Op: s.op, Winner: win.entry, Baseline: s.cands[0].entry, Tried: len(s.cands)}
	for i, b := range s.buckets {
		res.Buckets = append(res.Buckets, TunedBucket{Case: b, WinnerMs: win.best[i], BaselineMs: s.cands[0].best[i]})
	}
	s.release() // the device memory the checks need
	for _, b := range s.buckets {
		if err := Check(win.ops, b); err != nil {
			return res, fmt.Errorf("tune: the winner for op %s (%s %v) is wrong: %w", s.op, win.entry.Variant, win.entry.Params, err)
		}
		s.progress.add(1)
	}
	return res, nil
}

// finalists is how many of the leading candidates the final times again beside the baseline.
const finalists = 3

// final times the leading candidates and the baseline again, afresh, each bucket in turn and
// the candidates one after the other on it, so that they meet the same load on the machine:
// the rounds leave a candidate that was lucky with a quiet moment ahead of one that was not.
func (s *search) final() error {
	var final []*candidate
	for _, c := range s.cands {
		if !c.dropped && !c.baseline {
			final = append(final, c)
		}
	}
	slices.SortStableFunc(final, func(a, b *candidate) int {
		sa, _ := a.score(s.buckets, a)
		sb, _ := b.score(s.buckets, b)
		return cmp.Compare(sa, sb)
	})
	final = append(final[:min(len(final), finalists)], s.cands[0])
	s.progress.add((finalists + 1 - len(final)) * len(s.buckets) * s.samples)
	for _, c := range final {
		for i := range c.best {
			c.best[i] = math.Inf(1)
		}
	}
	for i, b := range s.buckets {
		for range s.samples {
			for _, c := range final {
				ms, err := runTimed(s.o.Context(), c.seqs[i])
				if err != nil {
					return fmt.Errorf("tune: %s with %s %v: %w", b, c.entry.Variant, c.entry.Params, err)
				}
				c.best[i] = min(c.best[i], ms)
				s.progress.add(1)
			}
		}
	}
	for _, c := range s.cands {
		if !c.dropped && !slices.Contains(final, c) {
			c.dropped = true
			c.release()
		}
	}
	return nil
}

// time takes one sample of candidate c on each bucket (in round 0 after recording it and a
// warm-up run), and drops it once it falls DropRatio behind the leader.
func (s *search) time(c *candidate, round int) error {
	runs := 1
	if round == 0 {
		runs = 2
	}
	for i, b := range s.buckets {
		if c.dropped {
			s.progress.add(runs)
			continue
		}
		if round == 0 {
			seq, err := s.record(c.ops, s.works[i])
			if err != nil {
				return err
			}
			c.seqs[i] = seq
		}
		var ms float64
		for range runs {
			var err error
			if ms, err = runTimed(s.o.Context(), c.seqs[i]); err != nil {
				return fmt.Errorf("tune: %s with %s %v: %w", b, c.entry.Variant, c.entry.Params, err)
			}
		}
		c.best[i] = min(c.best[i], ms)
		s.progress.add(runs)
		if lead := s.leader(); !c.baseline && lead != nil && lead != c {
			if own, other := c.score(s.buckets, lead); own > DropRatio*other {
				c.dropped = true
				c.release()
			}
		}
	}
	return nil
}

// leader is the candidate with the least weighted time among those timed on every bucket and
// not dropped, or nil when there is none yet.
func (s *search) leader() *candidate {
	var best *candidate
	bestScore := math.Inf(1)
	for _, c := range s.cands {
		if c.dropped || slices.ContainsFunc(c.best, func(ms float64) bool { return math.IsInf(ms, 1) }) {
			continue
		}
		if score, _ := c.score(s.buckets, c); score < bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// record records w's dispatches with o into a timed sequence (a plain one where the device has
// no timestamps).
func (s *search) record(o *ops.Ops, w *work) (*vk.Sequence, error) {
	const maxDispatches = 64 // a long product is several (ops.Gemm)
	var seq *vk.Sequence
	var err error
	if s.o.Context().TimestampsSupported() {
		seq, err = s.o.Context().NewTimedSequence(maxDispatches)
	} else {
		seq, err = s.o.Context().NewSequence()
	}
	if err != nil {
		return nil, err
	}
	if err := w.record(o, seq); err != nil {
		seq.Release()
		return nil, err
	}
	return seq, nil
}

// runTimed runs seq once and returns its time in milliseconds: the sum of its dispatches' GPU
// times, or the wall time of the run on a device without timestamps.
func runTimed(ctx *vk.Context, seq *vk.Sequence) (float64, error) {
	start := time.Now()
	if err := seq.Run(); err != nil {
		return 0, err
	}
	if !ctx.TimestampsSupported() {
		return float64(time.Since(start).Nanoseconds()) / 1e6, nil
	}
	times, err := seq.Times()
	if err != nil {
		return 0, err
	}
	ms := 0.0
	for _, t := range times {
		ms += t.Ms
	}
	return ms, nil
}

// release frees the candidate's sequences.
func (c *candidate) release() {
	for i, seq := range c.seqs {
		if seq != nil {
			seq.Release()
			c.seqs[i] = nil
		}
	}
}

// release frees the search's sequences and tensors.
func (s *search) release() {
	for _, c := range s.cands {
		c.release()
	}
	for _, w := range s.works {
		w.free()
	}
	s.works = nil
}

// Check runs case c once with o's profile on random data and compares every output with the
// float64 reference.
func Check(o *ops.Ops, c Case) error {
	if err := c.validate(); err != nil {
		return err
	}
	w, err := newWork(o.Context(), c, 99)
	if err != nil {
		return err
	}
	defer w.free()
	seq, err := o.Context().NewSequence()
	if err != nil {
		return err
	}
	defer seq.Release()
	if err := w.record(o, seq); err != nil {
		return err
	}
	if err := seq.Run(); err != nil {
		return err
	}
	if err := w.check(); err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	return nil
}

// candidates are the entries tried for op: base first (the baseline), then each parameter set
// of the grid of each variant that passes the device-limit checks.
func candidates(o *ops.Ops, op string, base profile.Entry, quick bool) []profile.Entry {
	lim := ops.LimitsOf(o.Context().Info)
	base.Source, base.Origin = "", ""
	out := []profile.Entry{base}
	seen := map[string]bool{fmt.Sprint(base.Variant, base.Params): true}
	for _, spec := range profile.Variants()[op] {
		for _, values := range grid(o, op, spec.Name, quick) {
			e := profile.Entry{Op: op, Variant: spec.Name, Params: map[string]int{}}
			for i, name := range spec.Params {
				e.Params[name] = values[i]
			}
			if key := fmt.Sprint(e.Variant, e.Params); !seen[key] && profile.Validate(e, lim) == nil {
				seen[key] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// grid is the parameter sets tried for op's variant, each in the order of the variant's
// params, before the device-limit checks: powers of two from the subgroup size up. The quick
// grid keeps fewer of them for attention and matmul, whose pipelines take long to compile.
// Register tiles stop at 256 accumulators: larger ones take seconds to compile on lavapipe,
// where they were not faster, and spill on GPUs.
func grid(o *ops.Ops, op, variant string, quick bool) [][]int {
	sg := max(int(o.Context().Info.SubgroupSize), 1)
	pow := func(lo, hi, step int) []int {
		var v []int
		for x := lo; x <= hi; x *= step {
			v = append(v, x)
		}
		return v
	}
	switch {
	case op == "attention": // wg_x, rows
		if quick {
			return product(pow(sg, 256, 4), []int{1, 2, 4})
		}
		return product(pow(sg, 256, 2), []int{1, 2, 4, 8})
	case op == "matmul" && (variant == "regblock" || variant == "texel"): // wg_x, wg_y, tm, tn
		var out [][]int
		wgX, wgY, minTile := pow(sg, 4*sg, 2), []int{1, 2, 4}, 16
		if quick {
			wgX, wgY, minTile = []int{sg}, []int{1, 2}, 64
		}
		for _, p := range product(wgX, wgY, pow(4, 64, 2), pow(4, 32, 2)) {
			if tile := p[2] * p[3]; minTile <= tile && tile <= 256 {
				out = append(out, p)
			}
		}
		return out
	case op == "matmul" && variant == "tiled": // wg_x, wg_y, bm, bn, bk, tm, tn
		var out [][]int
		wgs, tiles, bks := [][]int{{8, 8}, {16, 8}, {8, 16}, {16, 16}, {32, 8}}, []int{2, 4, 8}, []int{8, 16, 32}
		if quick {
			wgs, tiles, bks = [][]int{{16, 16}}, []int{4, 8}, []int{8, 16}
		}
		for _, wg := range wgs {
			for _, t := range product(tiles, tiles, bks) {
				tm, tn, bk := t[0], t[1], t[2]
				out = append(out, []int{wg[0], wg[1], wg[1] * tm, wg[0] * tn, bk, tm, tn})
			}
		}
		return out
	default: // wg_x
		return product(pow(sg, 1024, 2))
	}
}

// product is every combination of one value from each list, the last list varying fastest.
func product(lists ...[]int) [][]int {
	out := [][]int{{}}
	for _, l := range lists {
		var next [][]int
		for _, prefix := range out {
			for _, v := range l {
				next = append(next, append(slices.Clone(prefix), v))
			}
		}
		out = next
	}
	return out
}
