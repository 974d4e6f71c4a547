package data

import (
	"crypto/sha256"
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
	cache := t.TempDir()
	t.Setenv("VKTRAIN_CACHE_DIR", cache)
	for i := range 2 {
		tk, err := Tokens(dir, tok, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(tk.Train, train) || !reflect.DeepEqual(tk.Val, val) {
			t.Errorf("pass %d: Tokens differs from Split", i)
		}
	}
	if tok.encodes != 6 {
		t.Errorf("%d encodes over two passes, want 6", tok.encodes)
	}
	// The caches are in the cache folder, not beside the corpus.
	if _, err := os.Stat(CachePath(cache, sha256.Sum256([]byte("emma\n")), "bytes")); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 7 {
		t.Errorf("the corpus folder holds %d files, want its 7", len(entries))
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
	t.Setenv("VKTRAIN_CACHE_DIR", "-")
	tk, err := Tokens(dir, Byte{}, false)
	if err != nil {
		t.Fatal(err)
	}
	tr, va := (Byte{}).Decode(tk.Train), (Byte{}).Decode(tk.Val)
	if tr != strings.Repeat("a", 50)+strings.Repeat("b", 50)+strings.Repeat("p", 80) || va != strings.Repeat("p", 20) {
		t.Errorf("train %q\nval %q", tr, va)
	}

	// A single file splits the same way.
	file := filepath.Join(dir, "a.txt")
	if tk, err = Tokens(file, Byte{}, false); err != nil {
		t.Fatal(err)
	}
	if len(tk.Train) != 45 || len(tk.Val) != 5 || tk.Path != file || len(tk.Files) != 1 {
		t.Errorf("single file: %d train, %d val tokens, path %s, files %v", len(tk.Train), len(tk.Val), tk.Path, tk.Files)
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

// TestBinaryRefused: a file that is not text is refused, naming it, unless allowBinary; text
// in Latin-1 (a few bytes that are not UTF-8) is still text.
func TestBinaryRefused(t *testing.T) {
	t.Setenv("VKTRAIN_CACHE_DIR", "-")
	dir := t.TempDir()
	bin := filepath.Join(dir, "ls")
	writeFile(t, bin, "\x7fELF\x02\x01\x01\x00\x00\x00"+strings.Repeat("text and \x00\x01 more ", 20))
	if _, err := Tokens(bin, Byte{}, false); err == nil || !strings.Contains(err.Error(), bin) || !strings.Contains(err.Error(), "not text") ||
		!strings.Contains(err.Error(), "-allow-binary") {
		t.Errorf("binary file: %v", err)
	}
	if _, err := Tokens(bin, Byte{}, true); err != nil {
		t.Errorf("binary file allowed: %v", err)
	}
	ctl := filepath.Join(dir, "ctl")
	writeFile(t, ctl, strings.Repeat("ab\x01\x02\x03", 10))
	if _, err := Tokens(ctl, Byte{}, false); err == nil || !strings.Contains(err.Error(), "not text") {
		t.Errorf("control characters: %v", err)
	}
	latin1 := filepath.Join(dir, "latin1.txt")
	writeFile(t, latin1, strings.Repeat("Un caf\xe9 au lait, s'il vous pla\xeet.\n", 10))
	if _, err := Tokens(latin1, Byte{}, false); err != nil {
		t.Errorf("Latin-1 text: %v", err)
	}
}

// TestChanges names what differs between two corpus digests.
func TestChanges(t *testing.T) {
	got := Changes(map[string]string{"a": "1", "b": "2", "c": "3"}, map[string]string{"a": "1", "b": "9", "d": "4"})
	if want := []string{"b changed", "c removed", "d added"}; !slices.Equal(got, want) {
		t.Errorf("Changes = %v, want %v", got, want)
	}
	if got := Changes(map[string]string{"a": "1"}, map[string]string{"a": "1"}); got != nil {
		t.Errorf("no change: %v", got)
	}
}

func TestAustenNovelsSorted(t *testing.T) {
	if n := AustenNovels(); !slices.IsSorted(n) || !slices.Contains(n, AustenValidation) {
		t.Errorf("%q", n)
	}
}
