// Package data holds vktrain's training data: the corpus on disk, the
// tokenizers, a token cache, and the batches a training run reads.
package data

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vktrain/vktrain/internal/cachedir"
)

// DefaultPath is where `make data` puts the default corpus, Jane Austen's six
// novels.
const DefaultPath = "data/austen"

// AustenNovels are the file names of the default corpus, sorted.
func AustenNovels() []string {
	return []string{
		"emma.txt", "mansfieldpark.txt", "northangerabbey.txt",
		"persuasion.txt", "prideprejudice.txt", "sensesensibility.txt",
	}
}

// AustenValidation is the default corpus's validation novel; the other five
// are for training.
const AustenValidation = "persuasion.txt"

// ValidationPercent is the share of the token stream, in percent, that is
// held out for validation in a corpus without a validation document.
const ValidationPercent = 10

// Document is one text file of a corpus.
type Document struct {
	Name string // file name
	Path string // path as opened
	Text string
}

// Corpus is a set of documents and how they split into training and
// validation data.
type Corpus struct {
	// Path is the file or folder the corpus was loaded from.
	Path string
	// Docs are the documents, sorted by name.
	Docs []Document
	// Val is the index in Docs of the validation document, or -1 when the
	// last ValidationPercent of the token stream is held out instead.
	Val int
}

// Load reads a corpus from path: one text file, or a folder whose *.txt
// files (not recursively, sorted by name) are the documents.
//
// A folder holding exactly the six novels of the default corpus (see
// AustenNovels) is split by document: persuasion.txt is the validation set
// and the other five are training data. Any other corpus is split by
// tokens: all documents, tokenized separately and concatenated in name
// order, form one stream whose last ValidationPercent is validation data.
func Load(path string) (*Corpus, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && isDefaultPath(path) {
			return nil, fmt.Errorf("corpus %s not found: run `make data` to fetch the default corpus", path)
		}
		return nil, fmt.Errorf("corpus: %w", err)
	}
	c := &Corpus{Path: path, Val: -1}
	if !st.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		c.Docs = []Document{{Name: filepath.Base(path), Path: path, Text: string(b)}}
	} else {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		for _, e := range entries { // ReadDir sorts by name
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".txt") {
				continue
			}
			p := filepath.Join(path, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("corpus: %w", err)
			}
			c.Docs = append(c.Docs, Document{Name: e.Name(), Path: p, Text: string(b)})
		}
		if len(c.Docs) == 0 {
			if isDefaultPath(path) {
				return nil, fmt.Errorf("corpus %s has no .txt files: run `make data` to fetch the default corpus", path)
			}
			return nil, fmt.Errorf("corpus %s: folder has no .txt files", path)
		}
		names := make([]string, len(c.Docs))
		for i, d := range c.Docs {
			names[i] = d.Name
		}
		if slices.Equal(names, AustenNovels()) {
			c.Val = slices.Index(names, AustenValidation)
		}
	}
	empty := true
	for _, d := range c.Docs {
		if d.Text != "" {
			empty = false
			break
		}
	}
	if empty {
		return nil, fmt.Errorf("corpus %s is empty", path)
	}
	return c, nil
}

// isDefaultPath reports whether path names the default corpus folder.
func isDefaultPath(path string) bool {
	p := filepath.ToSlash(filepath.Clean(path))
	return p == DefaultPath || strings.HasSuffix(p, "/"+DefaultPath)
}

// Split tokenizes every document with tok (no cache) and returns the
// training and validation token streams.
func (c *Corpus) Split(tok Tokenizer) (train, val []uint32, err error) {
	docs := make([][]uint32, len(c.Docs))
	for i, d := range c.Docs {
		docs[i] = tok.Encode(d.Text)
	}
	return c.split(docs)
}

// split joins per-document token streams into training and validation data.
func (c *Corpus) split(docs [][]uint32) (train, val []uint32, err error) {
	if c.Val >= 0 {
		for i, d := range docs {
			if i != c.Val {
				train = append(train, d...)
			}
		}
		val = docs[c.Val]
	} else {
		all := slices.Concat(docs...)
		nVal := len(all) * ValidationPercent / 100
		train, val = all[:len(all)-nVal], all[len(all)-nVal:]
	}
	if len(train) == 0 {
		return nil, nil, fmt.Errorf("corpus %s: no training tokens", c.Path)
	}
	return train, val, nil
}

// Tokenized is a corpus as training and validation token streams, with the digest of each of
// its documents (what a checkpoint stores to tell the same corpus from a changed one).
type Tokenized struct {
	Path       string // absolute
	Train, Val []uint32
	Files      map[string]string // document name -> hex SHA-256 of its bytes
}

// Tokens loads the corpus at corpusPath (see Load), refuses documents that are not text unless
// allowBinary, and returns its training and validation token streams under tok. Each document's
// ids are cached in the user cache folder (see CachedTokens) and reused while the text and
// tokenizer are unchanged; a cache that cannot be written is skipped.
func Tokens(corpusPath string, tok Tokenizer, allowBinary bool) (*Tokenized, error) {
	c, err := Load(corpusPath)
	if err != nil {
		return nil, err
	}
	if !allowBinary {
		if err := c.CheckText(); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(corpusPath)
	if err != nil {
		return nil, err
	}
	t := &Tokenized{Path: abs, Files: map[string]string{}}
	docs := make([][]uint32, len(c.Docs))
	for i, d := range c.Docs {
		sum := sha256.Sum256([]byte(d.Text))
		t.Files[d.Name] = hex.EncodeToString(sum[:])
		docs[i], _, _ = CachedTokens(cachedir.Dir(), d.Text, tok)
	}
	if t.Train, t.Val, err = c.split(docs); err != nil {
		return nil, err
	}
	return t, nil
}

// CheckText refuses a corpus with a document that does not look like text: one holding a NUL
// byte, or where more than a tenth of the bytes are control characters (other than tab, line
// and page breaks, escape) or bytes outside valid UTF-8.
func (c *Corpus) CheckText() error {
	for _, d := range c.Docs {
		nul, odd := 0, 0
		for i := 0; i < len(d.Text); {
			r, n := utf8.DecodeRuneInString(d.Text[i:])
			switch {
			case r == 0:
				nul++
			case r == utf8.RuneError && n == 1:
				odd++
			case r < 0x20 && !strings.ContainsRune("\t\n\v\f\r\x1b", r), r == 0x7f:
				odd++
			}
			i += n
		}
		if nul > 0 || odd*10 > len(d.Text) {
			return fmt.Errorf("corpus %s: %s is not text (%d NUL bytes, %.1f%% control or non-UTF-8 bytes); "+
				"-allow-binary (train.allow_binary = true) trains on its bytes anyway", c.Path, d.Path, nul, 100*float64(odd)/float64(len(d.Text)))
		}
	}
	return nil
}

// Changes names the documents that differ between two digests (Tokenized.Files): changed,
// added and removed ones; nil when they are the same.
func Changes(was, now map[string]string) []string {
	var out []string
	for name, sum := range now {
		switch old, ok := was[name]; {
		case !ok:
			out = append(out, name+" added")
		case old != sum:
			out = append(out, name+" changed")
		}
	}
	for name := range was {
		if _, ok := now[name]; !ok {
			out = append(out, name+" removed")
		}
	}
	slices.Sort(out)
	return out
}
