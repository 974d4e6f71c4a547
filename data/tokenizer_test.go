package data

import (
	"reflect"
	"strings"
	"testing"
)

func TestByteRoundTrip(t *testing.T) {
	tok := Byte{}
	for _, s := range []string{"", "Emma Woodhouse", "£20,000 — “naïve”\n\x00\xff"} {
		ids := tok.Encode(s)
		if len(ids) != len(s) {
			t.Errorf("%q: %d ids, want %d", s, len(ids), len(s))
		}
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q -> %q", s, got)
		}
	}
	if tok.VocabSize() != 256 || tok.Name() != "byte" {
		t.Errorf("vocab %d name %q", tok.VocabSize(), tok.Name())
	}
	if got := tok.Decode([]uint32{'a', 300}); got != "a\uFFFD" {
		t.Errorf("out of range id decodes to %q", got)
	}
}

func TestGPT2(t *testing.T) {
	tok, err := NewTokenizer("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("Hello world"); !reflect.DeepEqual(got, []uint32{15496, 995}) {
		t.Errorf(`Encode("Hello world") = %v, want [15496 995]`, got)
	}
	if tok.VocabSize() != 50257 || tok.Name() != "gpt2" {
		t.Errorf("vocab %d name %q", tok.VocabSize(), tok.Name())
	}
	text := "It is a truth universally acknowledged, that a single man in possession\n" +
		"of a good fortune, must be in want of a wife.  £20,000 — “naïve” 日本\n\n"
	ids := tok.Encode(text)
	if len(ids) >= len(text)/2 {
		t.Errorf("%d ids for %d bytes: BPE is not merging", len(ids), len(text))
	}
	if got := tok.Decode(ids); got != text {
		t.Errorf("round trip:\n%q\n%q", text, got)
	}
	// A character cut between calls still reassembles byte for byte.
	if got := tok.Decode(ids[:len(ids)-3]) + tok.Decode(ids[len(ids)-3:]); got != text {
		t.Errorf("split decode: %q", got)
	}
	if got := tok.Decode([]uint32{15496, GPT2EndOfText, 60000}); got != "Hello<|endoftext|>\uFFFD" {
		t.Errorf("special and invalid ids decode to %q", got)
	}
}

// TestGPT2AnyBytes: GPT-2's BPE is byte-level, so any bytes, UTF-8 or not, encode and decode
// back to themselves; no byte becomes U+FFFD.
func TestGPT2AnyBytes(t *testing.T) {
	tok, err := NewGPT2()
	if err != nil {
		t.Fatal(err)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, text := range []string{"Caf\xe9", "\xff\xfe", "a\xe2\x82b caf\xc3", "\xe2\x82", string(all),
		"Hello world \x80\x80 \xf0\x9f\x98\x80 \xed\xa0\x80 end"} {
		ids := tok.Encode(text)
		if got := tok.Decode(ids); got != text {
			t.Errorf("%q round trips to %q", text, got)
		}
	}
	// Valid UTF-8 around the invalid byte encodes as it would alone.
	if got, want := tok.Encode("Caf\xe9"), append(tok.Encode("Caf"), tok.byteID[0xe9]); !reflect.DeepEqual(got, want) {
		t.Errorf(`Encode("Caf\xe9") = %v, want %v`, got, want)
	}
}

func TestNewUnknown(t *testing.T) {
	if tok, err := NewTokenizer("byte"); err != nil || tok.Name() != "byte" {
		t.Errorf("NewTokenizer(byte) = %v, %v", tok, err)
	}
	_, err := NewTokenizer("sentencepiece")
	if err == nil || !strings.Contains(err.Error(), "byte, gpt2") {
		t.Errorf("error %v, want it to list the known names", err)
	}
}
