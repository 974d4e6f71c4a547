package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/vktrain/vktrain/internal/atomicfile"
)

// A token cache file holds the token ids of one source text, so that a
// corpus is tokenized once per tokenizer. The files live in the user cache
// folder (cachedir.Dir()/tokens), never beside the user's data. Layout, little-endian:
//
//	magic      [8]byte  "VKTOKENS"
//	version    uint32   cacheVersion
//	vocab      uint32   the tokenizer's VocabSize
//	nameLen    uint16   then nameLen bytes: the tokenizer's Name
//	srcSize    uint64   size of the source text in bytes
//	srcSHA256  [32]byte SHA-256 of the source text
//	count      uint64   number of tokens
//	tokens     count x uint32
//	crc        uint32   CRC-32C of every byte before it
//
// A file is used only when every field matches the text and tokenizer at
// hand, the size is exact, the checksum holds and every id is below vocab;
// anything else is treated as a miss and the file is rebuilt.
const (
	cacheMagic = "VKTOKENS"
	// cacheVersion 2: the GPT-2 tokenizer keeps bytes that are not UTF-8 (version 1 read
	// them as U+FFFD), so its older caches are rebuilt.
	cacheVersion = 2
	cacheExt     = ".tok"
)

// CachePath returns the token cache file, under the cache folder dir, of a text whose SHA-256
// is sum for the tokenizer called tokName: the file is keyed by the text's contents, wherever
// the text lies.
func CachePath(dir string, sum [32]byte, tokName string) string {
	return filepath.Join(dir, "tokens", hex.EncodeToString(sum[:16])+"."+tokName+cacheExt)
}

// CachedTokens returns the token ids of text under tok, from its cache file in the cache
// folder dir (see CachePath) when that is valid; otherwise it encodes text and writes the
// cache. dir "" turns the cache off. hit reports a cache hit. A cache that cannot be written
// is skipped: the tokens are still returned, with writeErr saying why.
func CachedTokens(dir, text string, tok Tokenizer) (ids []uint32, hit bool, writeErr error) {
	if dir == "" {
		return tok.Encode(text), false, nil
	}
	sum := sha256.Sum256([]byte(text))
	path := CachePath(dir, sum, tok.Name())
	if b, err := os.ReadFile(path); err == nil {
		if ids, err := decodeCache(b, tok, uint64(len(text)), sum); err == nil {
			return ids, true, nil
		}
	}
	ids = tok.Encode(text)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = atomicfile.Write(path, encodeCache(ids, tok, uint64(len(text)), sum))
	}
	if err != nil {
		return ids, false, fmt.Errorf("token cache: %w", err)
	}
	return ids, false, nil
}

func encodeCache(ids []uint32, tok Tokenizer, size uint64, sum [32]byte) []byte {
	name := tok.Name()
	var buf bytes.Buffer
	buf.Grow(8 + 4 + 4 + 2 + len(name) + 8 + 32 + 8 + 4*len(ids) + 4)
	buf.WriteString(cacheMagic)
	le := binary.LittleEndian
	var tmp [8]byte
	le.PutUint32(tmp[:4], cacheVersion)
	buf.Write(tmp[:4])
	le.PutUint32(tmp[:4], uint32(tok.VocabSize()))
	buf.Write(tmp[:4])
	le.PutUint16(tmp[:2], uint16(len(name)))
	buf.Write(tmp[:2])
	buf.WriteString(name)
	le.PutUint64(tmp[:], size)
	buf.Write(tmp[:])
	buf.Write(sum[:])
	le.PutUint64(tmp[:], uint64(len(ids)))
	buf.Write(tmp[:])
	b := buf.Bytes()
	for _, id := range ids {
		b = le.AppendUint32(b, id)
	}
	return le.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// errCache is the cause of every rejected cache file; which check failed is
// in the message.
func errCache(format string, args ...any) error {
	return fmt.Errorf("token cache: "+format, args...)
}

func decodeCache(b []byte, tok Tokenizer, size uint64, sum [32]byte) ([]uint32, error) {
	le := binary.LittleEndian
	name := tok.Name()
	head := 8 + 4 + 4 + 2 + len(name) + 8 + 32 + 8
	if len(b) < head+4 {
		return nil, errCache("%d bytes is too short", len(b))
	}
	if string(b[:8]) != cacheMagic {
		return nil, errCache("bad magic")
	}
	if v := le.Uint32(b[8:]); v != cacheVersion {
		return nil, errCache("version %d, want %d", v, cacheVersion)
	}
	if v := le.Uint32(b[12:]); int(v) != tok.VocabSize() {
		return nil, errCache("vocabulary %d, want %d", v, tok.VocabSize())
	}
	if n := le.Uint16(b[16:]); int(n) != len(name) || string(b[18:18+len(name)]) != name {
		return nil, errCache("made by another tokenizer")
	}
	p := 18 + len(name)
	if le.Uint64(b[p:]) != size || !bytes.Equal(b[p+8:p+40], sum[:]) {
		return nil, errCache("source text changed")
	}
	count := le.Uint64(b[p+40:])
	if count > uint64(len(b)-head-4)/4 || uint64(len(b)) != uint64(head)+4*count+4 {
		return nil, errCache("size %d does not fit %d tokens", len(b), count)
	}
	n := len(b) - 4
	if crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)) != le.Uint32(b[n:]) {
		return nil, errCache("checksum mismatch")
	}
	ids := make([]uint32, count)
	vocab := uint32(tok.VocabSize())
	for i := range ids {
		id := le.Uint32(b[head+4*i:])
		if id >= vocab {
			return nil, errCache("token %d is id %d, outside the vocabulary", i, id)
		}
		ids[i] = id
	}
	return ids, nil
}
