package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fortuneFiles takes the fortune files of the package's folder and leaves out the strfile
// indexes, the .u8 links and the character pictures; what it writes verifies as complete, and
// a changed or missing file does not.
func TestFortuneFiles(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"computers":     "A bug in the hand.\n%\nReal programmers...\n",
		"art":           "Art is long.\n",
		"art.dat":       "\x00\x00\x00\x02index",
		"ascii-art":     " /\\_/\\ \n( o.o )\n",
		"computers.dat": "\x00index",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("art", filepath.Join(dir, "art.u8")); err != nil {
		t.Fatal(err)
	}
	files, err := fortuneFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.file)
	}
	if got := strings.Join(names, ","); got != "art.txt,computers.txt" {
		t.Fatalf("files %s, want art.txt,computers.txt", got)
	}
	if files[1].lines != 3 || string(files[0].text) != "Art is long.\n" {
		t.Errorf("read %+v", files)
	}

	out := filepath.Join(t.TempDir(), "fortunes")
	if err := write(out, files, fortunesReadme(files, "1:1.99.1-7.3"), io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := verify(out, nil); err != nil {
		t.Fatalf("the folder just written: %v", err)
	}
	if err := verify(out, []string{"art.txt"}); err == nil {
		t.Error("verify accepted a folder with a file it was not asked for")
	}
	if err := os.WriteFile(filepath.Join(out, "art.txt"), []byte("Art is short.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := verify(out, nil); err == nil {
		t.Error("verify accepted a changed file")
	}
	if _, err := fortuneFiles(t.TempDir()); err == nil {
		t.Error("an empty folder gave fortune files")
	}
}

// unpack fails on a -deb that is not there, or not a package, and leaves no temporary folder.
func TestUnpackErrorsLeaveNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	notDeb := filepath.Join(t.TempDir(), "x.deb")
	if err := os.WriteFile(notDeb, []byte("not a package"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, deb := range []string{filepath.Join(tmp, "missing.deb"), notDeb} {
		if _, _, _, err := unpack(fortunesPackage, deb, io.Discard); err == nil {
			t.Errorf("unpack %s: no error", deb)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in the temporary folder: %v", left)
	}
}
