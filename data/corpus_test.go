package data

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestLoadAustenSplit(t *testing.T) {
	dir := t.TempDir()
	for _, n := range AustenNovels() {
		writeFile(t, filepath.Join(dir, n), strings.TrimSuffix(n, ".txt")+"\n")
	}
	writeFile(t, filepath.Join(dir, "README"), "not a document")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Docs) != 6 || c.Docs[c.Val].Name != AustenValidation {
		t.Fatalf("%d docs, validation %d", len(c.Docs), c.Val)
	}
	train, val, err := c.Split(Byte{})
	if err != nil {
		t.Fatal(err)
	}
	if got := (Byte{}).Decode(val); got != "persuasion\n" {
		t.Errorf("validation %q", got)
	}
	if got := (Byte{}).Decode(train); got != "emma\nmansfieldpark\nnorthangerabbey\nprideprejudice\nsensesensibility\n" {
		t.Errorf("training %q", got)
	}

	// Tokens gives the same split, through the cache, and reuses it.
	tok := &countingTok{name: "bytes"}
	for i := range 2 {
		tr, va, err := Tokens(dir, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(tr, train) || !reflect.DeepEqual(va, val) {
			t.Errorf("pass %d: Tokens differs from Split", i)
		}
	}
	if tok.encodes != 6 {
		t.Errorf("%d encodes over two passes, want 6", tok.encodes)
	}
	if _, err := os.Stat(CachePath(filepath.Join(dir, "emma.txt"), "bytes")); err != nil {
		t.Error(err)
	}
	// The cache files do not become documents.
	if c, err := Load(dir); err != nil || len(c.Docs) != 6 {
		t.Errorf("reload: %v", err)
	}
}

func TestLoadTokenSplit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b.txt"), strings.Repeat("b", 50))
	writeFile(t, filepath.Join(dir, "a.txt"), strings.Repeat("a", 50))
	writeFile(t, filepath.Join(dir, "persuasion.txt"), strings.Repeat("p", 100))
	if err := os.Mkdir(filepath.Join(dir, "sub.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	train, val, err := Tokens(dir, Byte{})
	if err != nil {
		t.Fatal(err)
	}
	tr, va := (Byte{}).Decode(train), (Byte{}).Decode(val)
	if tr != strings.Repeat("a", 50)+strings.Repeat("b", 50)+strings.Repeat("p", 80) || va != strings.Repeat("p", 20) {
		t.Errorf("train %q\nval %q", tr, va)
	}

	// A single file splits the same way.
	file := filepath.Join(dir, "a.txt")
	train, val, err = Tokens(file, Byte{})
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 45 || len(val) != 5 {
		t.Errorf("single file: %d train, %d val tokens", len(train), len(val))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, DefaultPath))
	if err == nil || !strings.Contains(err.Error(), "make data") {
		t.Errorf("missing default corpus: %v", err)
	}
	_, err = Load(filepath.Join(dir, "nowhere"))
	if err == nil || strings.Contains(err.Error(), "make data") {
		t.Errorf("missing other corpus: %v", err)
	}
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "no .txt files") {
		t.Errorf("empty folder: %v", err)
	}
	writeFile(t, filepath.Join(dir, "x.txt"), "")
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty corpus: %v", err)
	}
}

func TestAustenNovelsSorted(t *testing.T) {
	if n := AustenNovels(); !slices.IsSorted(n) || !slices.Contains(n, AustenValidation) {
		t.Errorf("%q", n)
	}
}
