package model

import (
	"fmt"

	"github.com/vktrain/vktrain/config"
	"github.com/vktrain/vktrain/data"
)

// VocabSize is the token-table size of a model: model.vocab when set, else the tokenizer's
// (and BERT's special tokens after it); a ViT's classes.
func VocabSize(m config.Model) (int, error) {
	if m.Arch == "vit" {
		return m.Classes, nil
	}
	tok, err := data.NewTokenizer(m.Tokenizer)
	if err != nil {
		return 0, err
	}
	need := minVocab(m.Arch, tok.VocabSize())
	if m.Vocab != 0 {
		if m.Vocab < need {
			return 0, fmt.Errorf("model.vocab: %d is smaller than the %d tokens a %s model over the %s tokenizer needs", m.Vocab, need, m.Arch, tok.Name())
		}
		return m.Vocab, nil
	}
	return need, nil
}

// HuggingFaceConfig is a config.json in the form Hugging Face's GPT-2, BERT and ViT classes
// read, for model m with a token table of vocab rows (a ViT's labels are Fashion-MNIST's class
// names when it has ten classes).
func HuggingFaceConfig(m config.Model, vocab int) map[string]any {
	if m.Arch == "vit" {
		labels, ids := map[string]string{}, map[string]int{}
		for i := range m.Classes {
			name := fmt.Sprint("LABEL_", i)
			if m.Classes == len(data.FashionMNISTClasses) {
				name = data.FashionMNISTClasses[i]
			}
			labels[fmt.Sprint(i)], ids[name] = name, i
		}
		return map[string]any{
			"architectures": []string{"ViTForImageClassification"}, "model_type": "vit", "image_size": m.Image,
			"patch_size": m.Patch, "num_channels": 1, "hidden_size": m.Width, "num_hidden_layers": m.Layers,
			"num_attention_heads": m.Heads, "intermediate_size": m.FFN, "hidden_act": "gelu_new", "qkv_bias": true,
			"layer_norm_eps": vitLNEps, "hidden_dropout_prob": m.Dropout, "attention_probs_dropout_prob": 0.0,
			"initializer_range": m.InitStd, "id2label": labels, "label2id": ids,
		}
	}
	if m.Arch == "bert" {
		return map[string]any{
			"architectures": []string{"BertForMaskedLM"}, "model_type": "bert", "vocab_size": vocab,
			"hidden_size": m.Width, "num_hidden_layers": m.Layers, "num_attention_heads": m.Heads,
			"intermediate_size": m.FFN, "max_position_embeddings": m.Context, "type_vocab_size": m.TypeVocab,
			"hidden_act": "gelu_new", "layer_norm_eps": bertLNEps, "hidden_dropout_prob": m.Dropout,
			"attention_probs_dropout_prob": 0.0, "initializer_range": m.InitStd,
		}
	}
	return map[string]any{
		"architectures": []string{"GPT2LMHeadModel"}, "model_type": "gpt2", "vocab_size": vocab,
		"n_embd": m.Width, "n_layer": m.Layers, "n_head": m.Heads, "n_inner": m.FFN, "n_positions": m.Context,
		"n_ctx": m.Context, "activation_function": "gelu_new", "layer_norm_epsilon": lnEps,
		"resid_pdrop": m.Dropout, "embd_pdrop": m.Dropout, "attn_pdrop": 0.0, "initializer_range": m.InitStd,
		"tie_word_embeddings": true,
	}
}
