package ops_test

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/vktrain/vktrain/vk"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/vktest"
)

// BenchmarkTransformerOps times the element-wise, layernorm, embedding and dropout kernels at
// GPT-2 small's widths (4096 tokens, width 768, MLP width 3072; a vocabulary of 8192 keeps the
// table under lavapipe's binding limit). Each sub-benchmark reports the best GPU time of a run
// (gpu-ms) and the process CPU time per run (cpu-ms, steadier than wall time on a shared CPU
// device such as lavapipe):
//
//	go test ./vk/ops -run '^$' -bench TransformerOps -benchtime 10x
func BenchmarkTransformerOps(b *testing.B) {
	ctx := vktest.Open(b)
	o, err := ops.New(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	const rows, cols, hidden, vocab = 4096, 768, 3072, 8192
	rng := rand.New(rand.NewPCG(50, 1))
	tensor := func(name string, n int) *vk.Tensor {
		t, err := ctx.NewTensor(name, n)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(t.Free)
		if err := t.WriteFloat32(0, randoms(rng, n)); err != nil {
			b.Fatal(err)
		}
		return t
	}
	x, y, dy, dx := tensor("x", rows*cols), tensor("y", rows*cols), tensor("dy", rows*cols), tensor("dx", rows*cols)
	h, dh := tensor("h", rows*hidden), tensor("dh", rows*hidden)
	gamma, beta, dgamma, dbeta := tensor("gamma", cols), tensor("beta", cols), tensor("dgamma", cols), tensor("dbeta", cols)
	bias, dbias := tensor("bias", hidden), tensor("dbias", hidden)
	mean, rstd := tensor("mean", rows), tensor("rstd", rows)
	table, dtable := tensor("table", vocab*cols), tensor("dtable", vocab*cols)
	ids := make([]uint32, rows)
	for i := range ids {
		ids[i] = uint32(rng.IntN(vocab))
	}
	idT := tensor("ids", rows)
	if err := idT.WriteUint32(0, ids); err != nil {
		b.Fatal(err)
	}
	seeds := tensor("rng", 2)
	if err := seeds.WriteUint32(0, []uint32{1, 2}); err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name   string
		record func(*vk.Sequence) error
	}{
		{"add_4096x768", func(s *vk.Sequence) error { return o.Add(s, x, dy, y, rows*cols) }},
		{"add_bias_4096x3072", func(s *vk.Sequence) error { return o.AddBias(s, h, bias, rows, hidden) }},
		{"bias_grad_4096x3072", func(s *vk.Sequence) error { return o.BiasGrad(s, dh, dbias, rows, hidden) }},
		{"gelu_4096x3072", func(s *vk.Sequence) error { return o.GeluForward(s, h, dh, rows*hidden) }},
		{"gelu_backward_4096x3072", func(s *vk.Sequence) error { return o.GeluBackward(s, h, dh, dh, rows*hidden, false) }},
		{"layernorm_4096x768", func(s *vk.Sequence) error {
			return o.LayerNormForward(s, x, gamma, beta, y, mean, rstd, rows, cols, 1e-5)
		}},
		{"layernorm_backward_4096x768", func(s *vk.Sequence) error {
			return o.LayerNormBackward(s, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, rows, cols, true)
		}},
		{"embedding_4096x768", func(s *vk.Sequence) error { return o.EmbeddingForward(s, idT, table, y, rows, cols, false) }},
		{"embedding_backward_4096x768", func(s *vk.Sequence) error { return o.EmbeddingBackward(s, idT, dy, dtable, rows, cols) }},
		{"dropout_4096x768_p0.1", func(s *vk.Sequence) error { return o.DropoutForward(s, x, y, seeds, rows*cols, 0.1) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			s, err := ctx.NewTimedSequence(2)
			if err != nil {
				b.Skip(err)
			}
			defer s.Release()
			if err := k.record(s); err != nil {
				b.Fatal(err)
			}
			if err := s.Run(); err != nil { // compile and first touch outside the timing
				b.Fatal(err)
			}
			best, cpu := math.Inf(1), time.Duration(0)
			b.ResetTimer()
			for range b.N {
				var r0, r1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
				if err := s.Run(); err != nil {
					b.Fatal(err)
				}
				syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
				cpu += time.Duration(r1.Utime.Nano() - r0.Utime.Nano())
				times, err := s.Times()
				if err != nil {
					b.Fatal(err)
				}
				var ms float64
				for _, t := range times {
					ms += t.Ms
				}
				best = min(best, ms)
			}
			b.ReportMetric(best, "gpu-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms")
		})
	}
}
