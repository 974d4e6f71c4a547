package model

import (
	"testing"

	"github.com/vktrain/vktrain/config"
)

// GPT-2 small (12 x 768, vocabulary 50257, context 1024) has 124,439,808 parameters in Hugging
// Face's GPT2Model; the same count here checks every shape.
func TestGPT2SmallParameterCount(t *testing.T) {
	m := config.Model{Arch: "gpt", Context: 1024, Layers: 12, Width: 768, Heads: 12, FFN: 3072}
	if got := CountParams(Params(m, 50257)); got != 124439808 {
		t.Fatalf("GPT-2 small: %d parameters, want 124439808", got)
	}
}

// BERT-base (12 x 768, vocabulary 30522, 512 positions, 2 types) has 109,482,240 parameters in
// Hugging Face's BertModel, its pooler (768*768+768) included. BertForMaskedLM has no pooler;
// its head adds a dense layer of the pooler's size, a LayerNorm (2*768) and the decoder bias (30522).
func TestBERTBaseParameterCount(t *testing.T) {
	m := config.Model{Arch: "bert", Context: 512, Layers: 12, Width: 768, Heads: 12, FFN: 3072, TypeVocab: 2}
	want := 109482240 - 768*768 - 768 + 768*768 + 768 + 2*768 + 30522
	if got := CountParams(Params(m, 30522)); got != want {
		t.Fatalf("BERT-base MLM: %d parameters, want %d", got, want)
	}
}
