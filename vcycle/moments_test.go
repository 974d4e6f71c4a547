package vcycle

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/model/reference"
	"github.com/vktrain/vktrain/vk/ops"
)

// Mapping moments down after mapping them up gives them back (docs/method.md §9.4, §9.6), for every
// halving and both architectures.
func TestMomentMapsInvert(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, arch := range []string{"gpt", "bert"} {
		for _, h := range halvings {
			m, err := NewMaps(tinyModel(arch), tinyVocab, h.width, h.depth, rules("stride", "exact", "copy"))
			if err != nil {
				t.Fatal(err)
			}
			cm, cv := randomMoments(rng, m.Coarse)
			fm, fv, err := m.MomentsUp(cm, cv)
			if err != nil {
				t.Fatal(err)
			}
			bm, bv, err := m.MomentsDown(fm, fv)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(t, bm, cm); d > 1e-12 {
				t.Errorf("%s/%s: first moment differs by %g after up then down", arch, h.name, d)
			}
			if d := maxAbsDiff(t, bv, cv); d > 1e-12 {
				t.Errorf("%s/%s: second moment differs by %g after up then down", arch, h.name, d)
			}
		}
	}
}

// gradients of a model at p over a fixed batch, by the float64 reference model.
func gradients(t *testing.T, cfg config.Model, p Params) Params {
	t.Helper()
	ref, err := reference.New(cfg, tinyVocab, p)
	if err != nil {
		t.Fatal(err)
	}
	g := Params{}
	if _, err := ref.Loss(fixedBatch(cfg), g); err != nil {
		t.Fatal(err)
	}
	return g
}

// The premise of the moment maps (docs/method.md §9.2–§9.4): at a function-preserving
// de-coalescing, each fine copy's gradient is the coarse gradient times 1/(k c), which is what
// the first-moment map applies (and its square the second's). Checked on the float64 reference
// model for width de-coalescing (both architectures) and for GPT's depth growth as an exact
// identity, where the identity layer's branch output receives a gradient its zero moments do
// not hold.
func TestMomentMapPremise(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		arch               string
		width, depth       bool
		depthInit, pairing string
	}{{"gpt", true, false, "copy", "adjacent"}, {"bert", true, false, "copy", "adjacent"},
		{"gpt", false, true, "zero", "stride"}, {"gpt", true, true, "zero", "stride"}} {
		name := tc.arch + "/" + tc.depthInit
		fine := tinyModel(tc.arch)
		coarse, _ := fine.Halved(tc.width, tc.depth)
		m, err := NewMaps(fine, tinyVocab, tc.width, tc.depth, rules(tc.pairing, "exact", tc.depthInit))
		if err != nil {
			t.Fatal(err)
		}
		theta := randomParams(rng, m.Coarse)
		big, err := m.DeCoalesce(theta, ops.Split{})
		if err != nil {
			t.Fatal(err)
		}
		g := gradients(t, coarse, theta)
		sq := Params{}
		for name, x := range g {
			sq[name] = make([]float64, len(x))
			for i := range x {
				sq[name][i] = x[i] * x[i]
			}
		}
		wantM, wantV, err := m.MomentsUp(g, sq)
		if err != nil {
			t.Fatal(err)
		}
		got := gradients(t, fine, big)
		scale := 0.0
		for _, x := range got {
			for _, v := range x {
				scale = math.Max(scale, math.Abs(v))
			}
		}
		for _, s := range m.Fine {
			identityBranch := tc.depth && s.Branch && s.Layer >= fine.Layers/2
			for i, x := range got[s.Name] {
				switch {
				case identityBranch:
					if wantM[s.Name][i] != 0 || wantV[s.Name][i] != 0 {
						t.Fatalf("%s: %s of the identity layer gets moments %g, %g; want zero", name, s.Name, wantM[s.Name][i], wantV[s.Name][i])
					}
				case math.Abs(x-wantM[s.Name][i]) > 1e-9*scale:
					t.Fatalf("%s: %s[%d]: gradient %g, first-moment map of the coarse gradient %g", name, s.Name, i, x, wantM[s.Name][i])
				case math.Abs(x*x-wantV[s.Name][i]) > 1e-9*scale*scale:
					t.Fatalf("%s: %s[%d]: squared gradient %g, second-moment map %g", name, s.Name, i, x*x, wantV[s.Name][i])
				}
			}
		}
	}
}

// Depth growth under depth_init (docs/method.md §9.7): "zero" keeps the logits of the pre-LN
// models (GPT, ViT) exactly, "halve" is closer to them than the paper's "copy" when the branches
// are small (halving matches to first order in the branch outputs).
func TestDepthInit(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, arch := range []string{"gpt", "vit"} {
		fine := tinyModel(arch)
		coarse, _ := fine.Halved(false, true)
		specs := model.Params(coarse, tinyVocab)
		theta := randomParams(rng, specs)
		for _, s := range specs {
			if s.Branch {
				for i := range theta[s.Name] {
					theta[s.Name][i] *= 0.1
				}
			}
		}
		want := logits(t, coarse, theta)
		errs := map[string]float64{}
		for _, init := range []string{"copy", "halve", "zero"} {
			m, err := NewMaps(fine, tinyVocab, false, true, rules("stride", "exact", init))
			if err != nil {
				t.Fatal(err)
			}
			big, err := m.DeCoalesce(theta, ops.Split{})
			if err != nil {
				t.Fatal(err)
			}
			errs[init] = relativeError(logits(t, fine, big), want)
		}
		if errs["zero"] > 1e-12 {
			t.Errorf("%s: depth_init zero changes the logits by %g (relative); want exactly the small model's", arch, errs["zero"])
		}
		if !(errs["halve"] < errs["copy"]) {
			t.Errorf("%s: depth_init halve is %g from the small model's logits, copy %g: halve should be closer", arch, errs["halve"], errs["copy"])
		}
	}
}
