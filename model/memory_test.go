package model_test

import (
	"math"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
)

// The plan made before allocating matches the device memory NewNet then allocates (within 10%,
// the bound; it is exact unless the allocator's rounding changes), with the token
// table chunked or not, for GPT with dropout, BERT and a ViT.
func TestMemoryPlanMatchesAllocation(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   config.Model
		vocab int
		chunk uint64
	}{
		{"gpt", model.WithDropout(model.TinyGPT(), 0.1), 23, 0},
		{"gpt chunked", model.TinyGPT(), 23, 256},
		{"bert", model.TinyBERT(), model.BERTVocab, 0},
		{"vit chunked", model.TinyViT(), 10, 256},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := model.NewChunkedTestOps(t, c.chunk)
			tt := min(8, c.cfg.Context) // a ViT's micro-batch is its whole context
			plan, err := model.PlanNet(o, c.cfg, c.vocab, 2, tt)
			if err != nil {
				t.Fatal(err)
			}
			before := o.Context().Allocated()
			model.NewNetOn(t, o, c.cfg, c.vocab, 2, tt)
			got := o.Context().Allocated() - before
			if math.Abs(float64(plan.Total)-float64(got)) > 0.1*float64(got) {
				t.Errorf("plan %d bytes, allocated %d\n%s", plan.Total, got, plan)
			}
			var sum uint64
			for _, term := range plan.Terms {
				sum += term.Bytes
			}
			if sum != plan.Total || plan.Terms[1].Bytes != plan.Terms[0].Bytes || plan.Terms[2].Bytes != 2*plan.Terms[0].Bytes {
				t.Errorf("terms do not add up (gradients as parameters, moments twice):\n%s", plan)
			}
			if (c.chunk > 0) != (len(plan.Chunked) > 0) || !plan.Fits {
				t.Errorf("chunk limit %d: chunked %v, fits %v", c.chunk, plan.Chunked, plan.Fits)
			}
		})
	}
}

// Models that cannot fit are refused before anything is allocated: an absurd layer count by
// the size guard, before its parameters are even listed, sizes that overflow, activations
// beyond the device's capacity with the plan's table and its largest terms, and an activation
// larger than a binding.
func TestMemoryRefusals(t *testing.T) {
	o := model.NewTestOps(t)
	before := o.Context().Allocated()
	huge := model.TinyGPT()
	huge.Layers = 1 << 40
	overflow := model.TinyGPT()
	overflow.Width, overflow.FFN, overflow.Heads = 1<<40, 1<<40, 1
	deep := config.Model{Arch: "gpt", Tokenizer: "byte", Context: 1000, Layers: 200, Width: 128, Heads: 4, FFN: 512, InitStd: 0.02}
	for _, c := range []struct {
		name  string
		cfg   config.Model
		b, t  int
		wants []string
	}{
		{"layers", huge, 2, 8, []string{"1099511627776 layers", "with gradients and AdamW moments"}},
		{"overflow", overflow, 2, 8, []string{"overflow"}},
		{"activations", deep, 50, 1000, []string{"does not fit", "activations", "largest allocations", "device capacity"}},
		{"binding limit", deep, 100, 1000, []string{`"layer 0 qkv" of 146.5 MiB exceeds the device's maxStorageBufferRange`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := model.NewNet(o, c.cfg, 256, c.b, c.t, 1)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if got := o.Context().Allocated(); got != before {
				t.Errorf("%d bytes allocated before the refusal", got-before)
			}
		})
	}
}
