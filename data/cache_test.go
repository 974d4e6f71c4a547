package data

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// countingTok is the byte tokenizer under another name, counting Encode calls.
type countingTok struct {
	Byte
	name    string
	encodes int
}

func (c *countingTok) Name() string { return c.name }

func (c *countingTok) Encode(s string) []uint32 {
	c.encodes++
	return c.Byte.Encode(s)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCachedTokens(t *testing.T) {
	dir := t.TempDir()
	text := "Mr. Woodhouse was fond of society"
	tok := &countingTok{name: "bytes"}
	want := (Byte{}).Encode(text)

	get := func(text string, wantHit bool) {
		t.Helper()
		ids, hit, werr := CachedTokens(dir, text, tok)
		if werr != nil {
			t.Fatal(werr)
		}
		if hit != wantHit {
			t.Fatalf("hit = %v, want %v", hit, wantHit)
		}
		if !reflect.DeepEqual(ids, (Byte{}).Encode(text)) {
			t.Fatalf("ids %v", ids)
		}
	}
	get(text, false) // miss: builds the cache
	sum := sha256.Sum256([]byte(text))
	if _, err := os.Stat(CachePath(dir, sum, "bytes")); err != nil {
		t.Fatalf("cache not written: %v", err)
	}
	get(text, true)
	if tok.encodes != 1 {
		t.Errorf("%d encodes, want 1", tok.encodes)
	}

	// A changed text has a cache of its own (the files are keyed by the text's digest); the
	// first text's is still there.
	get("Mr. Woodhouse was fond of SOCIETY", false)
	get("Mr. Woodhouse was fond of SOCIETY", true)
	get(text, true)

	// Another tokenizer has its own file and never reads this one.
	other := &countingTok{name: "other"}
	if _, hit, _ := CachedTokens(dir, text, other); hit {
		t.Error("other tokenizer hit")
	}
	// A file made by another tokenizer under this name is refused.
	b, _ := os.ReadFile(CachePath(dir, sum, "other"))
	writeFile(t, CachePath(dir, sum, "bytes"), string(b))
	get(text, false)

	// Corruptions: every one is a miss, and the cache is rebuilt.
	path := CachePath(dir, sum, "bytes")
	good, _ := os.ReadFile(path)
	corruptions := map[string]func([]byte) []byte{
		"payload bit": func(b []byte) []byte { b[len(b)-10] ^= 1; return b },
		"checksum":    func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b },
		"magic":       func(b []byte) []byte { b[0] = 'X'; return b },
		"version":     func(b []byte) []byte { b[8] = 99; return b },
		"truncated":   func(b []byte) []byte { return b[:len(b)-5] },
		"extended":    func(b []byte) []byte { return append(b, 0, 0, 0, 0) },
		"empty":       func(b []byte) []byte { return nil },
	}
	for name, corrupt := range corruptions {
		writeFile(t, path, string(corrupt(append([]byte{}, good...))))
		ids, hit, werr := CachedTokens(dir, text, tok)
		if hit || werr != nil || !reflect.DeepEqual(ids, want) {
			t.Errorf("%s: hit %v, err %v, ids ok %v", name, hit, werr, reflect.DeepEqual(ids, want))
		}
		if b, _ := os.ReadFile(path); !reflect.DeepEqual(b, good) {
			t.Errorf("%s: cache not rebuilt", name)
		}
	}

	// An id outside the vocabulary is refused even with a valid checksum.
	big := encodeCache([]uint32{1, 300}, tok, uint64(len(text)), [32]byte{})
	if _, err := decodeCache(big, tok, uint64(len(text)), [32]byte{}); err == nil {
		t.Error("id 300 accepted for a 256-token vocabulary")
	}

	// A cache that cannot be written still yields the tokens.
	notDir := filepath.Join(dir, "not-a-folder")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ids, hit, werr := CachedTokens(notDir, text, tok)
	if hit || werr == nil || !reflect.DeepEqual(ids, want) {
		t.Errorf("unwritable cache: hit %v, err %v", hit, werr)
	}
}
