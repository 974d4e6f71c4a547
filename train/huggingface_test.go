package train

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/model"
)

var tinyGPT = config.Model{Arch: "gpt", Tokenizer: "byte", Context: 8, Layers: 2, Width: 8, Heads: 2, FFN: 32, InitStd: 0.02}

// hfTensor is one tensor of a folder the tests write as save_pretrained does.
type hfTensor struct {
	name, dtype string
	shape       []int
	vals        []float32 // exact in the dtype
}

// writeHF writes config.json and model.safetensors (tensors in order, no checksum) into dir.
func writeHF(t *testing.T, dir string, cfg map[string]any, tensors []hfTensor) {
	t.Helper()
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, x := range tensors {
		start := len(data)
		for _, v := range x.vals {
			bits := math.Float32bits(v)
			switch x.dtype {
			case "F32":
				data = binary.LittleEndian.AppendUint32(data, bits)
			case "BF16":
				data = binary.LittleEndian.AppendUint16(data, uint16(bits>>16))
			case "F16": // exact normal values and zero only
				h := uint16(bits>>16) & 0x8000
				if v != 0 {
					h |= uint16((bits>>23&0xff)-127+15)<<10 | uint16(bits>>13&0x3ff)
				}
				data = binary.LittleEndian.AppendUint16(data, h)
			}
		}
		header[x.name] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{start, len(data)}}
	}
	h, _ := json.Marshal(header)
	file := append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	c, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), append(file, data...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), c, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hfGPT is a GPT-2 folder of tinyGPT's parameters with values k/8 (exact in every dtype), keys
// with the "transformer." prefix, F16 and BF16 tensors among the F32, and the causal-mask
// buffers older files carry; and the values by vktrain name.
func hfGPT(rng *rand.Rand) ([]hfTensor, map[string][]float32) {
	want := map[string][]float32{}
	var ts []hfTensor
	for i, p := range model.Params(tinyGPT, 256) {
		vals := make([]float32, p.Size())
		for j := range vals {
			vals[j] = float32(rng.IntN(33)-16) / 8
		}
		want[p.Name] = vals
		ts = append(ts, hfTensor{"transformer." + p.Name, []string{"F32", "F16", "BF16"}[i%3], p.Shape, vals})
		if strings.HasSuffix(p.Name, "ln_1.bias") {
			layer := strings.TrimSuffix(p.Name, "ln_1.bias")
			ts = append(ts, hfTensor{"transformer." + layer + "attn.bias", "F32", []int{1, 1, 8, 8}, make([]float32, 64)},
				hfTensor{"transformer." + layer + "attn.masked_bias", "F32", []int{}, []float32{-1e4}})
		}
	}
	return ts, want
}

func TestReadHuggingFace(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 16))
	ts, want := hfGPT(rng)
	cfg := model.HuggingFaceConfig(tinyGPT, 256)
	delete(cfg, "n_inner") // as GPT-2's own config.json: null means 4 x n_embd
	dir := t.TempDir()
	writeHF(t, dir, cfg, ts)
	got, err := ReadHuggingFace(dir, tinyGPT, 256)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		for i := range w {
			if got[name][i] != w[i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[name][i], w[i])
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d tensors read, want %d", len(got), len(want))
	}

	// Without the prefix, the same parameters.
	plain := append([]hfTensor(nil), ts...)
	for i := range plain {
		plain[i].name = strings.TrimPrefix(plain[i].name, "transformer.")
	}
	writeHF(t, dir, cfg, plain)
	if _, err := ReadHuggingFace(dir, tinyGPT, 256); err != nil {
		t.Errorf("keys without transformer.: %v", err)
	}

	// What differs is named.
	bigger := tinyGPT
	bigger.Layers = 3
	wrongShape := append([]hfTensor(nil), ts...)
	wrongShape[0] = hfTensor{"transformer.wte.weight", "F32", []int{256, 4}, make([]float32, 1024)}
	extra := append(append([]hfTensor(nil), ts...), hfTensor{"transformer.h.2.ln_1.weight", "F32", []int{8}, make([]float32, 8)})
	for _, c := range []struct {
		name    string
		cfg     map[string]any
		tensors []hfTensor
		m       config.Model
		want    string
	}{
		{"layers", cfg, ts, bigger, "config.json has n_layer = 2, the configuration has model.layers = 3"},
		{"model type", map[string]any{"model_type": "llama"}, ts, tinyGPT, `model_type "llama"`},
		{"shape", cfg, wrongShape, tinyGPT, "tensor wte.weight has shape [256 4], the configuration needs [256 8]"},
		{"missing", cfg, ts[1:], tinyGPT, "no tensor wte.weight"},
		{"extra", cfg, extra, tinyGPT, "has tensor transformer.h.2.ln_1.weight"},
	} {
		writeHF(t, dir, c.cfg, c.tensors)
		if _, err := ReadHuggingFace(dir, c.m, 256); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
