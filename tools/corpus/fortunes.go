package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The second English corpus: Debian's fortunes package (the fortune-mod collection of
// quotations, jokes, definitions and verse, about 2.5 MB of text), for checking that a recipe
// tuned on Jane Austen holds on other text (RESULTS.md). It is not needed by make test.
const (
	fortunesPackage   = "fortunes"
	fortunesInstalled = "usr/share/games/fortunes" // in the package, under its root
	fortunesPath      = "data/fortunes"
)

// fortunesSkipped are files of the package that are not prose: pictures drawn in characters.
var fortunesSkipped = []string{"ascii-art"}

// fetchFortunes writes the fortune files of the package (deb, or a .deb apt-get downloads,
// unpacked with dpkg-deb, no root needed) into out as NAME.txt, with a README and a SHA256SUMS
// file. A complete out is left as it is unless force is set.
func fetchFortunes(out, deb string, force bool, stdout io.Writer) error {
	if !force {
		if err := verify(out, nil); err == nil {
			fmt.Fprintf(stdout, "%s is complete (checked against %s); nothing to do\n", out, sumsFile)
			return nil
		}
	}
	root, version, cleanup, err := unpack(fortunesPackage, deb, stdout)
	if err != nil {
		return err
	}
	defer cleanup()
	files, err := fortuneFiles(filepath.Join(root, fortunesInstalled))
	if err != nil {
		return err
	}
	return write(out, files, fortunesReadme(files, version), stdout)
}

// fortuneFiles reads the fortune files of dir: every regular file except the strfile indexes
// (.dat), the links to the UTF-8 names (.u8) and fortunesSkipped, each as NAME.txt, in name order.
func fortuneFiles(dir string) ([]novel, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("the package's fortunes: %w", err)
	}
	var files []novel
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.Contains(name, ".") || slices.Contains(fortunesSkipped, name) {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files = append(files, novel{file: name + ".txt", text: text, lines: strings.Count(string(text), "\n")})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no fortune files", dir)
	}
	return files, nil
}

func fortunesReadme(files []novel, version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `The fortune cookies of Debian's %s package, version %s (the fortune-mod
collection: quotations, jokes, definitions, verse), one NAME.txt per fortune file, as
`+"`go run ./tools/corpus -dataset fortunes`"+` writes them (%s is left out: pictures, not text).
A second English corpus for vktrain's -data: a folder without a validation document, so the
last 10%% of its token stream is the validation data.

Files:
`, fortunesPackage, version, strings.Join(fortunesSkipped, ", "))
	for _, f := range files {
		fmt.Fprintf(&b, "  %-22s %6d lines %8d bytes\n", f.file, f.lines, len(f.text))
	}
	b.WriteString("\nSHA256SUMS lists every file's SHA-256 (check with `sha256sum -c SHA256SUMS`).\n")
	return b.String()
}
