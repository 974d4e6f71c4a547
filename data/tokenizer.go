package data

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Tokenizer turns text into token ids and back.
type Tokenizer interface {
	// Name identifies the tokenizer (as New accepts it); token caches are
	// keyed by it.
	Name() string
	// Encode returns the token ids of text.
	Encode(text string) []uint32
	// Decode returns the text of ids. Ids outside the vocabulary decode to
	// U+FFFD.
	Decode(ids []uint32) string
	// VocabSize is one more than the largest id Encode can return.
	VocabSize() int
}

// TokenizerNames lists the names NewTokenizer accepts.
func TokenizerNames() []string { return []string{"byte", "gpt2"} }

// NewTokenizer returns the tokenizer called name: "byte" or "gpt2".
func NewTokenizer(name string) (Tokenizer, error) {
	switch name {
	case "byte":
		return Byte{}, nil
	case "gpt2":
		return NewGPT2()
	}
	return nil, fmt.Errorf("unknown tokenizer %q (known: %s)", name, strings.Join(TokenizerNames(), ", "))
}

// Byte is the byte-level tokenizer: each byte of the UTF-8 text is a token.
type Byte struct{}

// Name returns "byte".
func (Byte) Name() string { return "byte" }

// VocabSize returns 256.
func (Byte) VocabSize() int { return 256 }

// Encode returns the bytes of text as token ids.
func (Byte) Encode(text string) []uint32 {
	out := make([]uint32, len(text))
	for i := 0; i < len(text); i++ {
		out[i] = uint32(text[i])
	}
	return out
}

// Decode returns the bytes ids stand for; the result need not be valid
// UTF-8 when ids cut a character.
func (Byte) Decode(ids []uint32) string {
	var sb strings.Builder
	sb.Grow(len(ids))
	for _, id := range ids {
		if id > 255 {
			sb.WriteRune(utf8.RuneError)
			continue
		}
		sb.WriteByte(byte(id))
	}
	return sb.String()
}

// GPT2 is GPT-2's byte-pair encoding (OpenAI's r50k_base, 50257 tokens),
// computed offline by github.com/tiktoken-go/tokenizer. Special tokens such
// as "<|endoftext|>" in the text are encoded as ordinary text. Like GPT-2's
// own, it is byte-level: any bytes encode, and decode back to the same bytes.
type GPT2 struct {
	codec  tokenizer.Codec
	byteID [256]uint32 // the token of each single byte
}

// GPT2EndOfText is the id of GPT-2's "<|endoftext|>" token.
const GPT2EndOfText = 50256

const gpt2EndOfTextText = "<|endoftext|>"

// NewGPT2 returns the GPT-2 tokenizer.
func NewGPT2() (*GPT2, error) {
	c, err := tokenizer.Get(tokenizer.R50kBase)
	if err != nil {
		return nil, fmt.Errorf("gpt2 tokenizer: %w", err)
	}
	g := &GPT2{codec: c}
	// GPT-2's vocabulary starts with its 256 single-byte tokens (in the order of its
	// byte-to-unicode map); the codec decodes each to its raw byte.
	var seen [256]bool
	for id := range uint(256) {
		s, err := c.Decode([]uint{id})
		if err != nil || len(s) != 1 || seen[s[0]] {
			return nil, fmt.Errorf("gpt2 tokenizer: token %d is not a single byte of its own", id)
		}
		seen[s[0]] = true
		g.byteID[s[0]] = uint32(id)
	}
	return g, nil
}

// Name returns "gpt2".
func (*GPT2) Name() string { return "gpt2" }

// VocabSize returns 50257.
func (*GPT2) VocabSize() int { return 50257 }

// Encode returns the BPE token ids of text. Bytes the codec cannot take, those
// that are not UTF-8 (it reads them as U+FFFD) and DEL (its pattern drops it),
// become their single-byte tokens, so that Decode gives the same bytes back;
// the rest encodes as GPT-2 encodes it.
func (g *GPT2) Encode(text string) []uint32 {
	var out []uint32
	start := 0
	for i := 0; i < len(text); {
		if !rawByte(text[i:]) {
			_, n := utf8.DecodeRuneInString(text[i:])
			i += n
			continue
		}
		out = g.encodeValid(out, text[start:i])
		out = append(out, g.byteID[text[i]])
		i++
		start = i
	}
	return g.encodeValid(out, text[start:])
}

// rawByte reports whether the first byte of s is one the codec cannot encode: DEL, or a byte
// that does not start a valid UTF-8 character.
func rawByte(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return r == 0x7f || r == utf8.RuneError && n == 1
}

// encodeValid appends the ids of valid UTF-8 text to out.
func (g *GPT2) encodeValid(out []uint32, text string) []uint32 {
	if text == "" {
		return out
	}
	ids, _, err := g.codec.Encode(text)
	if err != nil {
		// The codec fails only on a regexp match timeout, and none is set:
		// reaching this is a bug, not bad input.
		panic(fmt.Sprintf("gpt2 tokenizer: encode: %v", err))
	}
	for _, id := range ids {
		out = append(out, uint32(id))
	}
	return out
}

// Decode returns the text of ids; its bytes need not be valid UTF-8 when ids
// cut a character. GPT2EndOfText decodes to "<|endoftext|>"; ids outside
// the vocabulary decode to U+FFFD.
func (g *GPT2) Decode(ids []uint32) string {
	var sb strings.Builder
	run := make([]uint, 0, len(ids))
	flush := func() {
		if len(run) == 0 {
			return
		}
		s, err := g.codec.Decode(run)
		if err != nil {
			// Every id in run is a BPE id below GPT2EndOfText, all of
			// which r50k_base has, so this cannot happen.
			s = string(utf8.RuneError)
		}
		sb.WriteString(s)
		run = run[:0]
	}
	for _, id := range ids {
		switch {
		case id == GPT2EndOfText:
			flush()
			sb.WriteString(gpt2EndOfTextText)
			continue
		case int(id) >= g.VocabSize():
			flush()
			sb.WriteRune(utf8.RuneError)
			continue
		}
		run = append(run, uint(id))
	}
	flush()
	return sb.String()
}
