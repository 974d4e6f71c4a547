package vcycle

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/model/reference"
	"github.com/vktrain/vktrain/vk/ops"
)

// tinyModel is a model whose every axis can be halved: 4 layers, width 16, 4 heads, FFN 32 (a
// ViT over images of 8 x 8 in 4 patches, into tinyVocab classes).
func tinyModel(arch string) config.Model {
	if arch == "vit" {
		return config.Model{Arch: arch, Context: 5, Layers: 4, Width: 16, Heads: 4, FFN: 32, InitStd: 0.02, Image: 8, Patch: 4, Classes: tinyVocab}
	}
	return config.Model{Arch: arch, Tokenizer: "byte", Context: 8, Layers: 4, Width: 16, Heads: 4, FFN: 32,
		InitStd: 0.02, TypeVocab: 2}
}

const tinyVocab = 23

var testSplit = ops.Split{Sigma: 0.05, Seed: 9}

// randomParams draws every parameter of specs at random (LayerNorm gains around 1).
func randomParams(rng *rand.Rand, specs []model.ParamSpec) Params {
	p := Params{}
	for _, s := range specs {
		v := make([]float64, s.Size())
		for i := range v {
			v[i] = rng.NormFloat64() * 0.3
			if s.Init == model.InitOnes {
				v[i] += 1
			}
		}
		p[s.Name] = v
	}
	return p
}

func maxAbsDiff(t *testing.T, a, b Params) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d parameters against %d", len(a), len(b))
	}
	worst := 0.0
	for name, x := range a {
		y, ok := b[name]
		if !ok || len(y) != len(x) {
			t.Fatalf("parameter %s: %d values against %d", name, len(x), len(y))
		}
		for i := range x {
			worst = math.Max(worst, math.Abs(x[i]-y[i]))
		}
	}
	return worst
}

var halvings = []struct {
	name         string
	width, depth bool
}{{"width", true, false}, {"depth", false, true}, {"both", true, true}}

// Coalesce(DeCoalesce(theta)) == theta (docs/method.md §3), for every halving, both
// architectures, both pairings and both embedding rules, with and without the antisymmetric
// split (which must change the de-coalesced model).
func TestCoalesceInvertsDeCoalesce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, arch := range []string{"gpt", "bert", "vit"} {
		for _, h := range halvings {
			for _, pairing := range []string{"adjacent", "stride"} {
				for _, rule := range []string{"exact", "reference"} {
					name := fmt.Sprintf("%s/%s/%s/%s", arch, h.name, pairing, rule)
					m, err := NewMaps(tinyModel(arch), tinyVocab, h.width, h.depth, rules(pairing, rule, "copy"))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					theta := randomParams(rng, m.Coarse)
					plain, err := m.DeCoalesce(theta, ops.Split{})
					if err != nil {
						t.Fatal(err)
					}
					for _, split := range []ops.Split{{}, testSplit} {
						fine, err := m.DeCoalesce(theta, split)
						if err != nil {
							t.Fatal(err)
						}
						back, err := m.Coalesce(fine)
						if err != nil {
							t.Fatal(err)
						}
						if d := maxAbsDiff(t, back, theta); d > 1e-6 {
							t.Errorf("%s, split %v: Coalesce(DeCoalesce(theta)) differs from theta by %g", name, split.Sigma, d)
						}
						if d := maxAbsDiff(t, fine, plain); h.width && split.Sigma != 0 && d < 1e-3 {
							t.Errorf("%s: the split changed the de-coalesced model by only %g", name, d)
						}
					}
				}
			}
		}
	}
}

// rules are the [vcycle] settings NewMaps reads.
func rules(pairing, embedding, depthInit string) *config.VCycle {
	return &config.VCycle{DepthPairing: pairing, Embedding: embedding, DepthInit: depthInit}
}

// logits of a model over a fixed batch, by the float64 reference model.
func logits(t *testing.T, cfg config.Model, p Params) []float64 {
	t.Helper()
	ref, err := reference.New(cfg, tinyVocab, p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ref.Logits(fixedBatch(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fixedBatch is a batch of two sequences (or images) for the reference model of cfg.
func fixedBatch(cfg config.Model) reference.Batch {
	b := reference.Batch{B: 2, T: cfg.Context}
	for i := range b.B * b.T {
		b.Input = append(b.Input, uint32(i*7%tinyVocab))
		b.Target = append(b.Target, uint32(i*5%tinyVocab))
	}
	if cfg.Arch == "vit" {
		b.Input, b.Target, b.Labels = nil, nil, []uint32{3, 5}
		for i := range b.B * cfg.Image * cfg.Image {
			b.Images = append(b.Images, math.Sin(float64(i)))
		}
	}
	return b
}

func relativeError(a, b []float64) float64 {
	num, den := 0.0, 0.0
	for i := range a {
		num = math.Max(num, math.Abs(a[i]-b[i]))
		den = math.Max(den, math.Abs(b[i]))
	}
	return num / den
}

// Width de-coalescing with the exact rule keeps the logits of GPT, BERT and ViT (docs/method.md
// §3; ViT's classifier is untied, so nothing is rescaled), with the antisymmetric split too;
// the reference rule keeps BERT's (its embedding LayerNorm absorbs the scale) but not pre-LN
// GPT's or ViT's.
func TestWidthDeCoalescePreservesLogits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		arch, rule string
		split      ops.Split
		exact      bool
	}{{"gpt", "exact", ops.Split{}, true}, {"bert", "exact", ops.Split{}, true}, {"gpt", "exact", testSplit, true},
		{"bert", "exact", testSplit, true}, {"bert", "reference", ops.Split{}, true}, {"gpt", "reference", ops.Split{}, false},
		{"vit", "exact", ops.Split{}, true}, {"vit", "exact", testSplit, true}, {"vit", "reference", ops.Split{}, false}} {
		fine := tinyModel(tc.arch)
		m, err := NewMaps(fine, tinyVocab, true, false, rules("adjacent", tc.rule, "copy"))
		if err != nil {
			t.Fatal(err)
		}
		coarse, _ := fine.Halved(true, false)
		theta := randomParams(rng, m.Coarse)
		big, err := m.DeCoalesce(theta, tc.split)
		if err != nil {
			t.Fatal(err)
		}
		e := relativeError(logits(t, fine, big), logits(t, coarse, theta))
		switch {
		case tc.exact && e > 1e-5:
			t.Errorf("%s, %s rule, split %v: de-coalesced logits differ from the small model's by %g (relative)", tc.arch, tc.rule, tc.split.Sigma, e)
		case !tc.exact && e < 1e-3:
			t.Errorf("%s, %s rule: de-coalesced logits equal the small model's (%g); docs/method.md says they do not", tc.arch, tc.rule, e)
		}
	}
}

// Depth coalescing averages the layers docs/method.md §2 names: 2i and 2i+1 (adjacent), or
// i and i + L/2 (stride); de-coalescing copies a coarse layer into both.
func TestDepthPairing(t *testing.T) {
	for _, arch := range []string{"gpt", "bert"} {
		for _, tc := range []struct {
			pairing string
			pairs   [][2]int
		}{{"adjacent", [][2]int{{0, 1}, {2, 3}}}, {"stride", [][2]int{{0, 2}, {1, 3}}}} {
			m, err := NewMaps(tinyModel(arch), tinyVocab, false, true, rules(tc.pairing, "exact", "copy"))
			if err != nil {
				t.Fatal(err)
			}
			// Every value of fine layer l is 10^l: an average shows which layers it took.
			fine := Params{}
			for _, s := range m.Fine {
				v := make([]float64, s.Size())
				for i := range v {
					v[i] = math.Pow(10, float64(max(s.Layer, 0)))
				}
				fine[s.Name] = v
			}
			coarse, err := m.Coalesce(fine)
			if err != nil {
				t.Fatal(err)
			}
			up, err := m.DeCoalesce(coarse, ops.Split{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range m.Coarse {
				if s.Layer < 0 {
					continue
				}
				p := tc.pairs[s.Layer]
				want := (math.Pow(10, float64(p[0])) + math.Pow(10, float64(p[1]))) / 2
				if got := coarse[s.Name][0]; got != want {
					t.Fatalf("%s %s: coarse %s = %g, want the average of layers %v = %g", arch, tc.pairing, s.Name, got, p, want)
				}
			}
			for _, s := range m.Fine {
				if s.Layer < 0 {
					continue
				}
				i := (map[string]int{"adjacent": s.Layer / 2, "stride": s.Layer % 2})[tc.pairing]
				p := tc.pairs[i]
				want := (math.Pow(10, float64(p[0])) + math.Pow(10, float64(p[1]))) / 2
				if got := up[s.Name][0]; got != want {
					t.Fatalf("%s %s: de-coalesced %s = %g, want coarse layer %d's %g", arch, tc.pairing, s.Name, got, i, want)
				}
			}
		}
	}
}

// Width coalescing pairs head h with head h + H/2 in Q, K and V alike, and averages a
// LayerNorm (docs/method.md §1).
func TestWidthPairsHeads(t *testing.T) {
	fine := tinyModel("gpt") // width 16, 4 heads of 4: head h pairs with h+2, channel j with j+8
	m, err := NewMaps(fine, tinyVocab, true, false, rules("adjacent", "exact", "copy"))
	if err != nil {
		t.Fatal(err)
	}
	p := Params{}
	for _, s := range m.Fine {
		p[s.Name] = make([]float64, s.Size())
	}
	// c_attn.bias is q|k|v, 16 channels each: set head 1 of k (channels 16+4..16+7) and head 3
	// of k (16+12..16+15); their average lands on coarse k head 1 (8+4..8+7).
	bias := p["h.0.attn.c_attn.bias"]
	for c := 0; c < 4; c++ {
		bias[16+4+c] = 1
		bias[16+12+c] = 3
	}
	for i := range p["h.0.ln_1.weight"] {
		p["h.0.ln_1.weight"][i] = float64(i)
	}
	coarse, err := m.Coalesce(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range coarse["h.0.attn.c_attn.bias"] {
		want := 0.0
		if i >= 8+4 && i < 8+8 {
			want = 2
		}
		if v != want {
			t.Fatalf("coarse c_attn.bias[%d] = %g, want %g", i, v, want)
		}
	}
	for j, v := range coarse["h.0.ln_1.weight"] {
		if want := float64(j+j+8) / 2; v != want {
			t.Fatalf("coarse ln_1.weight[%d] = %g, want %g", j, v, want)
		}
	}
}

func TestInterpolateEnds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m, err := NewMaps(tinyModel("gpt"), tinyVocab, true, true, rules("adjacent", "exact", "copy"))
	if err != nil {
		t.Fatal(err)
	}
	saved := randomParams(rng, m.Fine)
	de, err := m.DeCoalesce(randomParams(rng, m.Coarse), ops.Split{})
	if err != nil {
		t.Fatal(err)
	}
	for alpha, want := range map[float64]Params{0: saved, 1: de} {
		got, err := Interpolate(saved, de, alpha)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, got, want); d != 0 {
			t.Errorf("alpha %g: differs from the expected end by %g", alpha, d)
		}
	}
}
