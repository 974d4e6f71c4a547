package model

import (
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/vk/ops"
)

// Running the last micro-step bucket by bucket gives bitwise the gradients of the whole
// micro-step; every parameter is in exactly one bucket, and a bucket's gradients are final
// when Ready reports it: reading them there gives their values at the end.
func TestBuckets(t *testing.T) {
	for _, c := range []struct {
		cfg   config.Model
		vocab int
	}{{TinyGPT(), 17}, {TinyBERT(), BERTVocab}, {TinyViT(), 10}} {
		t.Run(c.cfg.Arch, func(t *testing.T) {
			b, tt := 2, 8
			if c.cfg.Arch == "vit" {
				tt = c.cfg.Context
			}
			n := NewTestNet(t, WithDropout(c.cfg, 0.2), c.vocab, b, tt)
			buckets, err := n.Buckets()
			if err != nil {
				t.Fatal(err)
			}
			if want := c.cfg.Layers + 2; len(buckets) != want {
				t.Errorf("%d buckets, want %d (head, each layer, embeddings)", len(buckets), want)
			}
			seen := map[int]int{}
			for _, bk := range buckets {
				for _, i := range bk {
					seen[i]++
				}
			}
			for i, p := range n.Specs {
				if seen[i] != 1 {
					t.Errorf("%s is in %d buckets", p.Name, seen[i])
				}
			}
			batches := MicroBatches(rand.New(rand.NewPCG(5, 6)), c.cfg.Arch, c.vocab, b, tt)
			sp := ops.StepParams{Beta1: 0.9, Beta2: 0.95, Step: 3}
			count := Counted(batches[0]) + Counted(batches[1])
			whole, err := n.ShareGradients(batches, Share{Micros: 2, Tokens: count}, sp)
			if err != nil {
				t.Fatal(err)
			}
			want, err := n.Grads()
			if err != nil {
				t.Fatal(err)
			}
			early := map[string][]float32{}
			ready := func(k int) error {
				buf := make([]float32, n.BucketLen(buckets[k]))
				if err := n.ReadBucket(buckets[k], buf); err != nil {
					return err
				}
				for _, i := range buckets[k] {
					early[n.Specs[i].Name] = buf[:n.Specs[i].Size()]
					buf = buf[n.grads[i].Len():]
				}
				return nil
			}
			split, err := n.ShareGradients(batches, Share{Micros: 2, Tokens: count, Ready: ready}, sp)
			if err != nil {
				t.Fatal(err)
			}
			if split != whole {
				t.Errorf("loss sum %v bucket by bucket, %v whole", split, whole)
			}
			got, err := n.Grads()
			if err != nil {
				t.Fatal(err)
			}
			SameParams(t, want, got)
			SameParams(t, want, early)
		})
	}
}
