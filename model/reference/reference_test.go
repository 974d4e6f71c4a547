package reference

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	opref "github.com/vktrain/vktrain/vk/ops/ref"
)

const refTestVocab = 11

func refTestConfig(arch string) config.Model {
	if arch == "vit" { // 4 patches of 2 x 2 and the class token
		return config.Model{Arch: arch, Context: 5, Layers: 2, Width: 8, Heads: 2, FFN: 32, Image: 4, Patch: 2, Classes: refTestVocab}
	}
	return config.Model{Arch: arch, Tokenizer: "byte", Context: 5, Layers: 2, Width: 8, Heads: 2, FFN: 32, TypeVocab: 2}
}

// refTestModel returns a model with every parameter, LayerNorms included, drawn from N(0, std²)
// (LayerNorm weights around 1), so that no gradient is trivially zero.
func refTestModel(t *testing.T, arch string, std float64, seed uint64) *Model {
	t.Helper()
	cfg := refTestConfig(arch)
	rng := rand.New(rand.NewPCG(seed, 1))
	params := map[string][]float64{}
	for _, s := range model.Params(cfg, refTestVocab) {
		p := make([]float64, s.Size())
		for i := range p {
			p[i] = std * rng.NormFloat64()
			if s.Init == model.InitOnes {
				p[i]++
			}
		}
		params[s.Name] = p
	}
	m, err := New(cfg, refTestVocab, params)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refTestBatch returns a random batch; for BERT, some targets are ignored, the token types
// vary and the second sequence's last two positions are padding (with ignored targets).
func refTestBatch(arch string, b, tt int, seed uint64) Batch {
	rng := rand.New(rand.NewPCG(seed, 2))
	n := b * tt
	if arch == "vit" { // images of 4 x 4 pixels; the last label is ignored
		batch := Batch{B: b, T: tt, Images: make([]float64, b*16), Labels: make([]uint32, b)}
		for i := range batch.Images {
			batch.Images[i] = rng.NormFloat64()
		}
		for i := range batch.Labels {
			batch.Labels[i] = uint32(rng.IntN(refTestVocab))
		}
		batch.Labels[b-1] = model.IgnoreIndex
		return batch
	}
	batch := Batch{B: b, T: tt, Input: make([]uint32, n), Target: make([]uint32, n)}
	for i := 0; i < n; i++ {
		batch.Input[i] = uint32(rng.IntN(refTestVocab))
		batch.Target[i] = uint32(rng.IntN(refTestVocab))
	}
	if arch != "bert" {
		return batch
	}
	batch.TokenTypes, batch.KeyValid = make([]uint32, n), make([]uint32, n)
	for i := 0; i < n; i++ {
		batch.TokenTypes[i] = uint32(i % tt * 2 / tt)
		batch.KeyValid[i] = 1
		if i%3 == 1 {
			batch.Target[i] = model.IgnoreIndex
		}
	}
	for i := n - 2; i < n; i++ {
		batch.KeyValid[i] = 0
		batch.Target[i] = model.IgnoreIndex
	}
	return batch
}

func TestRefGradientsMatchFiniteDifferences(t *testing.T) {
	for _, arch := range []string{"gpt", "bert", "vit"} {
		t.Run(arch, func(t *testing.T) {
			m := refTestModel(t, arch, 0.3, 1)
			b := refTestBatch(arch, 2, 4, 2)
			switch arch {
			case "gpt":
				b = refTestBatch(arch, 2, 5, 2)
			case "vit":
				b = refTestBatch(arch, 3, 5, 2)
			}
			grads := map[string][]float64{}
			loss, err := m.Loss(b, grads)
			if err != nil {
				t.Fatal(err)
			}
			if plain, _ := m.Loss(b, nil); plain != loss {
				t.Fatalf("loss %v with gradients, %v without", loss, plain)
			}
			worst := 0.0
			for _, s := range m.Specs {
				x := m.P[s.Name]
				num := opref.NumericGrad(func([]float64) float64 {
					l, err := m.Loss(b, nil)
					if err != nil {
						t.Fatal(err)
					}
					return l
				}, x, 1e-5)
				var errSq, normSq, maxAbs float64
				for i := range num {
					e := grads[s.Name][i] - num[i]
					errSq += e * e
					normSq += num[i] * num[i]
					maxAbs = math.Max(maxAbs, math.Abs(e))
				}
				if strings.HasSuffix(s.Name, "key.bias") {
					// Softmax does not see a key bias (it adds q·b to a whole row of scores).
					if maxAbs > 1e-9 || normSq > 1e-16 {
						t.Errorf("%s: gradient should be zero, max abs error %.3g, |numeric|² = %.3g", s.Name, maxAbs, normSq)
					}
					continue
				}
				if normSq < 1e-12 {
					t.Errorf("%s: numeric gradient is about zero (|grad|² = %.3g)", s.Name, normSq)
					continue
				}
				nse := errSq / normSq
				worst = math.Max(worst, nse)
				if nse > 1e-8 || maxAbs > 1e-7 {
					t.Errorf("%s: normalised squared error %.3g, max abs error %.3g (|grad|² = %.3g)", s.Name, nse, maxAbs, normSq)
				}
			}
			t.Logf("loss %.6f, worst normalised squared error %.3g over %d parameters", loss, worst, len(m.Specs))
		})
	}
}

func TestRefLossAtInitIsLogVocab(t *testing.T) {
	for _, arch := range []string{"gpt", "bert"} {
		m := refTestModel(t, arch, 0.02, 3)
		b := refTestBatch(arch, 2, 5, 4)
		f, err := m.Forward(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := math.Log(refTestVocab); math.Abs(f.Loss-want) > 0.05 {
			t.Errorf("%s: loss at init %v, want about log(%d) = %v", arch, f.Loss, refTestVocab, want)
		}
		if want := opref.MeanLoss(f.Losses, b.Target, model.IgnoreIndex); f.Loss != want {
			t.Errorf("%s: loss %v is not the mean of the per-token losses %v", arch, f.Loss, want)
		}
		if len(f.Residual) != m.Cfg.Layers+1 || len(f.Logits) != 10*refTestVocab {
			t.Errorf("%s: %d residuals and %d logits", arch, len(f.Residual), len(f.Logits))
		}
	}
}

func TestRefAllTargetsIgnored(t *testing.T) {
	m := refTestModel(t, "bert", 0.3, 5)
	b := refTestBatch("bert", 2, 4, 6)
	for i := range b.Target {
		b.Target[i] = model.IgnoreIndex
	}
	grads := map[string][]float64{}
	loss, err := m.Loss(b, grads)
	if err != nil || loss != 0 {
		t.Fatalf("loss %v, %v; want 0", loss, err)
	}
	for name, g := range grads {
		for _, v := range g {
			if v != 0 {
				t.Fatalf("%s: gradient %v with no counted target", name, v)
			}
		}
	}
	if len(grads) != len(m.Specs) {
		t.Fatalf("%d gradients for %d parameters", len(grads), len(m.Specs))
	}
}

// maxRowDiff returns the largest difference between the logits of a and b in each row.
func maxRowDiff(a, b []float64, vocab int) []float64 {
	d := make([]float64, len(a)/vocab)
	for i := range a {
		d[i/vocab] = math.Max(d[i/vocab], math.Abs(a[i]-b[i]))
	}
	return d
}

func TestRefGPTIsCausal(t *testing.T) {
	m := refTestModel(t, "gpt", 0.3, 7)
	b := refTestBatch("gpt", 2, 5, 8)
	before, err := m.Logits(b)
	if err != nil {
		t.Fatal(err)
	}
	for pos := 0; pos < b.T; pos++ {
		c := b
		c.Input = append([]uint32(nil), b.Input...)
		for s := 0; s < b.B; s++ {
			c.Input[s*b.T+pos] = (c.Input[s*b.T+pos] + 1) % refTestVocab
		}
		after, err := m.Logits(c)
		if err != nil {
			t.Fatal(err)
		}
		diff := maxRowDiff(before, after, refTestVocab)
		for r, dr := range diff {
			if t0 := r % b.T; t0 < pos && dr != 0 {
				t.Errorf("changing token %d changed the logits at position %d by %g", pos, t0, dr)
			} else if t0 >= pos && dr < 1e-6 {
				t.Errorf("changing token %d did not change the logits at position %d", pos, t0)
			}
		}
	}
}

func TestRefBERTPaddingIsInvisible(t *testing.T) {
	m := refTestModel(t, "bert", 0.3, 9)
	b := refTestBatch("bert", 2, 4, 10)
	before, err := m.Logits(b)
	if err != nil {
		t.Fatal(err)
	}
	c := b
	c.Input, c.TokenTypes = append([]uint32(nil), b.Input...), append([]uint32(nil), b.TokenTypes...)
	for i, v := range b.KeyValid {
		if v == 0 {
			c.Input[i] = (c.Input[i] + 3) % refTestVocab
			c.TokenTypes[i] = 1 - c.TokenTypes[i]
		}
	}
	after, err := m.Logits(c)
	if err != nil {
		t.Fatal(err)
	}
	for r, dr := range maxRowDiff(before, after, refTestVocab) {
		if b.KeyValid[r] != 0 && dr != 0 {
			t.Errorf("changing the padding changed the logits of valid position %d by %g", r, dr)
		} else if b.KeyValid[r] == 0 && dr < 1e-6 {
			t.Errorf("changing padded token %d did not change its own logits", r)
		}
	}
	// Without the mask the same change is seen everywhere in that sequence.
	b.KeyValid, c.KeyValid = nil, nil
	before, _ = m.Logits(b)
	after, _ = m.Logits(c)
	if d := maxRowDiff(before, after, refTestVocab); d[b.T] < 1e-6 {
		t.Errorf("without the mask, position 0 of sequence 1 did not see the changed tokens")
	}
}

func TestRefRejectsBadInput(t *testing.T) {
	cfg := refTestConfig("gpt")
	good := refTestModel(t, "gpt", 0.02, 11)
	missing := map[string][]float64{}
	short := map[string][]float64{}
	extra := map[string][]float64{"lm_head.weight": nil}
	for name, p := range good.P {
		if name != "ln_f.bias" {
			missing[name] = p
		}
		short[name], extra[name] = p, p
	}
	short["h.1.mlp.c_fc.weight"] = short["h.1.mlp.c_fc.weight"][1:]
	for want, params := range map[string]map[string][]float64{"ln_f.bias is missing": missing,
		"h.1.mlp.c_fc.weight has 255": short, "unknown parameter lm_head.weight": extra} {
		if _, err := New(cfg, refTestVocab, params); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error with %q", err, want)
		}
	}
	b := refTestBatch("gpt", 1, 5, 12)
	for name, bad := range map[string]func(*Batch){
		"long":       func(b *Batch) { b.T, b.Input, b.Target = 6, append(b.Input, 0), append(b.Target, 0) },
		"token":      func(b *Batch) { b.Input[2] = refTestVocab },
		"target":     func(b *Batch) { b.Target[2] = refTestVocab },
		"padding":    func(b *Batch) { b.KeyValid = make([]uint32, 5) },
		"size":       func(b *Batch) { b.Target = b.Target[1:] },
		"empty":      func(b *Batch) { b.B = 0 },
		"token type": func(b *Batch) { b.TokenTypes = []uint32{0, 0, 0, 0, 0} },
	} {
		c := b
		c.Input, c.Target = append([]uint32(nil), b.Input...), append([]uint32(nil), b.Target...)
		bad(&c)
		if _, err := good.Loss(c, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
