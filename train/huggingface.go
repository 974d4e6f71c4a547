package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/internal/safetensors"
	"github.com/vktrain/vktrain/model"
)

// hfKey is a config.json key of a Hugging Face GPT-2 or BERT model, the configuration key it
// matches and the value it must have; an optional key may be absent or null (GPT-2's n_inner,
// for 4 x n_embd).
type hfKey struct {
	key, setting string
	want         int
	optional     bool
}

func hfKeys(m config.Model, vocab int) []hfKey {
	if m.Arch == "bert" {
		return []hfKey{{"vocab_size", "model.vocab", vocab, false}, {"hidden_size", "model.width", m.Width, false},
			{"num_hidden_layers", "model.layers", m.Layers, false}, {"num_attention_heads", "model.heads", m.Heads, false},
			{"intermediate_size", "model.ffn", m.FFN, false}, {"max_position_embeddings", "model.context", m.Context, false},
			{"type_vocab_size", "model.type_vocab", m.TypeVocab, false}}
	}
	return []hfKey{{"vocab_size", "model.vocab", vocab, false}, {"n_embd", "model.width", m.Width, false},
		{"n_layer", "model.layers", m.Layers, false}, {"n_head", "model.heads", m.Heads, false},
		{"n_positions", "model.context", m.Context, false}, {"n_inner", "model.ffn", m.FFN, m.FFN == 4*m.Width}}
}

// hfIgnored reports whether a tensor of a Hugging Face file is one vktrain does without: the
// causal-mask buffers older GPT-2 files carry, and the output layers tied to the token table
// or not part of masked-LM training.
func hfIgnored(name string) bool {
	for _, suffix := range []string{".attn.bias", ".attn.masked_bias"} {
		if strings.HasSuffix(name, suffix) && strings.HasPrefix(name, "h.") {
			return true
		}
	}
	return slices.Contains([]string{"lm_head.weight", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias",
		"bert.embeddings.position_ids"}, name) || strings.HasPrefix(name, "bert.pooler.") || strings.HasPrefix(name, "cls.seq_relationship.")
}

// ReadHuggingFace reads the parameters of a Hugging Face model folder, as save_pretrained
// writes it (config.json and model.safetensors; GPT-2 keys with or without the "transformer."
// prefix; F32, F16 or BF16), for model m with a token table of vocab rows. config.json must
// describe m, and every tensor must have m's shape: the first that differs is named.
func ReadHuggingFace(dir string, m config.Model, vocab int) (map[string][]float32, error) {
	bad := func(format string, a ...any) error { return fmt.Errorf("-init %s: %s", dir, fmt.Sprintf(format, a...)) }
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, bad("%v", err)
	}
	var hf map[string]any
	if err := json.Unmarshal(raw, &hf); err != nil {
		return nil, bad("config.json: %v", err)
	}
	wantType := map[string]string{"gpt": "gpt2", "bert": "bert"}[m.Arch]
	if t, _ := hf["model_type"].(string); t != wantType {
		return nil, bad("config.json has model_type %q, the configuration's model.arch %q needs %q", t, m.Arch, wantType)
	}
	for _, k := range hfKeys(m, vocab) {
		v := hf[k.key]
		num, isNum := v.(float64)
		if (k.optional && v == nil) || (isNum && num == float64(k.want)) {
			continue
		}
		if v == nil {
			return nil, bad("config.json has no %s; the configuration has %s = %d", k.key, k.setting, k.want)
		}
		return nil, bad("config.json has %s = %v, the configuration has %s = %d", k.key, v, k.setting, k.want)
	}
	f, err := safetensors.Read(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, bad("%v", err)
	}
	tensors := map[string]safetensors.Tensor{}
	for _, name := range f.Names {
		key := name
		if m.Arch == "gpt" {
			key = strings.TrimPrefix(name, "transformer.")
		}
		if !hfIgnored(key) {
			tensors[key] = f.Tensors[name]
		}
	}
	params := map[string][]float32{}
	for _, p := range model.Params(m, vocab) {
		t, ok := tensors[p.Name]
		if !ok {
			return nil, bad("model.safetensors has no tensor %s", p.Name)
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return nil, bad("tensor %s has shape %v, the configuration needs %v", p.Name, t.Shape, p.Shape)
		}
		params[p.Name] = t.Data
		delete(tensors, p.Name)
	}
	for _, name := range f.Names {
		if _, ok := tensors[strings.TrimPrefix(name, "transformer.")]; ok {
			return nil, bad("model.safetensors has tensor %s, which a %s model of this configuration does not", name, m.Arch)
		}
	}
	return params, nil
}
