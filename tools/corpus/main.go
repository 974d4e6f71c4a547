// Command corpus fetches vktrain's datasets from Debian packages. By default
// it fetches the default corpus, Jane Austen's six novels, from the Debian
// package r-cran-janeaustenr and writes one text file per novel
// (data/austen/NAME.txt), a README and a SHA256SUMS file. With -dataset
// fashion-mnist it fetches Fashion-MNIST's four idx files from
// dataset-fashion-mnist into data/fashion-mnist (fashion.go); with -dataset
// fortunes a second English corpus, Debian's fortunes, into data/fortunes
// (fortunes.go).
//
// Usage:
//
//	go run ./tools/corpus [-dataset austen|fashion-mnist|fortunes] [-out DIR] [-deb FILE] [-force]
//
// Without -deb it runs `apt-get download r-cran-janeaustenr` in a temporary
// folder; either way it unpacks the package with `dpkg-deb -x` and decodes
// the R data (data/Rdata.rdb, named by data/Rdata.rdx) itself, so R is not
// needed. When the output folder is already complete (every file listed in
// SHA256SUMS present and matching), it says so and does nothing.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vktrain/vktrain/internal/atomicfile"

	"github.com/vktrain/vktrain/data"
)

const (
	debPackage = "r-cran-janeaustenr"
	sumsFile   = "SHA256SUMS"
	readmeFile = "README"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("corpus", flag.ContinueOnError)
	dataset := fl.String("dataset", "austen", `what to fetch: "austen" (`+debPackage+`), "fashion-mnist" (`+fashionPackage+`) or "fortunes" (`+fortunesPackage+`)`)
	out := fl.String("out", "", "folder to write to (default "+data.DefaultPath+", "+data.FashionMNISTPath+" or "+fortunesPath+")")
	deb := fl.String("deb", "", "use this already downloaded .deb of the package instead of apt-get download")
	force := fl.Bool("force", false, "rewrite the dataset even if it is complete")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	switch *dataset {
	case "fashion-mnist":
		if *out == "" {
			*out = data.FashionMNISTPath
		}
		return fetchFashion(*out, *deb, *force, stdout)
	case "fortunes":
		if *out == "" {
			*out = fortunesPath
		}
		return fetchFortunes(*out, *deb, *force, stdout)
	case "austen":
		if *out == "" {
			*out = data.DefaultPath
		}
	default:
		return fmt.Errorf(`-dataset %q: want "austen", "fashion-mnist" or "fortunes"`, *dataset)
	}
	if !*force {
		err := verify(*out, data.AustenNovels())
		if err == nil {
			fmt.Fprintf(stdout, "%s is complete (%d novels, checked against %s); nothing to do\n",
				*out, len(data.AustenNovels()), sumsFile)
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stdout, "%s is incomplete (%v); fetching it again\n", *out, err)
		}
	}

	root, version, cleanup, err := unpack(debPackage, *deb, stdout)
	if err != nil {
		return err
	}
	defer cleanup()
	novels, err := decode(root)
	if err != nil {
		return err
	}
	return write(*out, novels, readmeText(novels, version), stdout)
}

// novel is one decoded novel.
type novel struct {
	file  string // e.g. "emma.txt"
	text  []byte
	lines int
	nas   int // NA elements, written as empty lines
}

// unpack unpacks package pkg, from deb or else from a .deb apt-get downloads, into a temporary
// folder (dpkg-deb -x, no root needed) and returns the folder's root, the package's version, and
// cleanup, which removes the folder.
func unpack(pkg, deb string, stdout io.Writer) (root, version string, cleanup func(), err error) {
	tmp, err := os.MkdirTemp("", "vktrain-"+pkg+"-")
	if err != nil {
		return "", "", nil, fmt.Errorf("temporary folder: %w", err)
	}
	remove := func() { os.RemoveAll(tmp) }
	defer func() {
		if err != nil {
			remove()
		}
	}()
	if deb == "" {
		if deb, err = download(tmp, pkg, stdout); err != nil {
			return "", "", nil, err
		}
	} else if _, err := os.Stat(deb); err != nil {
		return "", "", nil, fmt.Errorf("-deb: %w", err)
	}
	if version, err = debVersion(deb, pkg); err != nil {
		return "", "", nil, err
	}
	root = filepath.Join(tmp, "x")
	if err = extract(deb, root); err != nil {
		return "", "", nil, err
	}
	return root, version, remove, nil
}

// download fetches the package .deb into dir with apt-get.
func download(dir, debPackage string, stdout io.Writer) (string, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("apt-get not found; on a Debian-based system run\n\tapt-get download %s\n"+
			"and then pass the .deb with -deb (or fetch it from https://packages.debian.org/%s)",
			debPackage, debPackage)
	}
	fmt.Fprintf(stdout, "downloading %s with apt-get\n", debPackage)
	cmd := exec.Command("apt-get", "download", debPackage)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(buf.String())
		hint := "if the package is unknown, refresh the package lists with `sudo apt-get update` and try again"
		return "", fmt.Errorf("apt-get download %s: %w\n%s\n%s", debPackage, err, msg, hint)
	}
	matches, err := filepath.Glob(filepath.Join(dir, debPackage+"_*.deb"))
	if err != nil || len(matches) != 1 {
		return "", fmt.Errorf("apt-get download %s succeeded but left %d .deb files in %s", debPackage, len(matches), dir)
	}
	return matches[0], nil
}

// debVersion reads the package name and version from the .deb's control file.
func debVersion(deb, debPackage string) (string, error) {
	outp, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-deb -f %s: %w%s (dpkg-deb comes with dpkg on Debian-based systems)",
			deb, err, stderrOf(err))
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(outp))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	if fields["Package"] != debPackage {
		return "", fmt.Errorf("%s is package %q, not %s", deb, fields["Package"], debPackage)
	}
	if fields["Version"] == "" {
		return "", fmt.Errorf("%s has no Version field", deb)
	}
	return fields["Version"], nil
}

// extract unpacks the .deb into root.
func extract(deb, root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	if err := exec.Command("dpkg-deb", "-x", deb, root).Run(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w%s", deb, err, stderrOf(err))
	}
	return nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// decode finds janeaustenr/data/Rdata.rdb and .rdx under root and decodes
// the six novels.
func decode(root string) ([]novel, error) {
	var rdbPath string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(filepath.ToSlash(p), "/janeaustenr/data/Rdata.rdb") {
			rdbPath = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("searching the unpacked package: %w", err)
	}
	if rdbPath == "" {
		return nil, fmt.Errorf("the package has no janeaustenr/data/Rdata.rdb (is it %s?)", debPackage)
	}
	rdb, err := os.ReadFile(rdbPath)
	if err != nil {
		return nil, fmt.Errorf("reading R data: %w", err)
	}
	rdxPath := strings.TrimSuffix(rdbPath, ".rdb") + ".rdx"
	rdx, err := os.ReadFile(rdxPath)
	if err != nil {
		return nil, fmt.Errorf("reading R data index: %w", err)
	}
	db, err := OpenRLazyDB(rdb, rdx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rdbPath, err)
	}
	var novels []novel
	for _, file := range data.AustenNovels() {
		name := strings.TrimSuffix(file, ".txt")
		obj, err := db.Get(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rdbPath, err)
		}
		lines, err := obj.Strings()
		if err != nil {
			return nil, fmt.Errorf("%s: novel %s: %w", rdbPath, name, err)
		}
		if len(lines) == 0 {
			return nil, fmt.Errorf("%s: novel %s is empty", rdbPath, name)
		}
		n := novel{file: file, lines: len(lines)}
		for _, e := range obj.Elems {
			if e.NA {
				n.nas++
			}
		}
		n.text = []byte(strings.Join(lines, "\n") + "\n")
		novels = append(novels, n)
	}
	return novels, nil
}

// write stores the novels, the README and, last, SHA256SUMS, whose presence
// marks the folder complete.
func write(out string, novels []novel, readme string, stdout io.Writer) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	// A stale SHA256SUMS must not vouch for a half-written folder.
	if err := os.Remove(filepath.Join(out, sumsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("output folder: %w", err)
	}
	var sums strings.Builder
	for _, n := range novels {
		if err := atomicfile.Write(filepath.Join(out, n.file), n.text); err != nil {
			return err
		}
		sum := sha256.Sum256(n.text)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), n.file)
		na := ""
		if n.nas > 0 {
			na = fmt.Sprintf(" (%d NA lines written empty)", n.nas)
		}
		fmt.Fprintf(stdout, "%-22s %6d lines %8d bytes%s\n", n.file, n.lines, len(n.text), na)
	}
	if err := atomicfile.Write(filepath.Join(out, readmeFile), []byte(readme)); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(readme))
	fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), readmeFile)
	if err := atomicfile.Write(filepath.Join(out, sumsFile), []byte(sums.String())); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d files and a README to %s\n", len(novels), out)
	return nil
}

func readmeText(novels []novel, version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `Jane Austen's six completed novels: vktrain's default corpus.

Source: the Debian package %s, version %s, which packages
the CRAN package janeaustenr by Julia Silge (MIT licence). Extracted by
tools/corpus (make data) from the package's R data
(janeaustenr/data/Rdata.rdb), without R.

Each NAME.txt holds one novel, one line per element of the R character
vector, in UTF-8, each line ending in a newline; an NA element is an empty
line.

Split: training uses the five novels other than persuasion (emma,
mansfieldpark, northangerabbey, prideprejudice, sensesensibility);
validation uses persuasion.txt.

Files:
`, debPackage, version)
	for _, n := range novels {
		fmt.Fprintf(&b, "  %-22s %6d lines %8d bytes\n", n.file, n.lines, len(n.text))
	}
	b.WriteString("\nSHA256SUMS lists every file's SHA-256 (check with `sha256sum -c SHA256SUMS`).\n" +
		"Token caches (*.tok) may appear beside the novels; they are rebuilt when stale.\n")
	return b.String()
}

// verify reports whether out holds a complete corpus: SHA256SUMS lists the
// files of want (any, when want is nil) and the README, and every listed file
// matches.
func verify(out string, want []string) error {
	b, err := os.ReadFile(filepath.Join(out, sumsFile))
	if err != nil {
		return err
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, file, ok := strings.Cut(line, "  ")
		if !ok {
			return fmt.Errorf("%s: bad line %q", sumsFile, line)
		}
		listed[file] = sum
	}
	names := make([]string, 0, len(listed))
	for f := range listed {
		names = append(names, f)
	}
	if want == nil { // any files, with the README
		want = slices.DeleteFunc(slices.Clone(names), func(f string) bool { return f == readmeFile })
		if len(want) == 0 {
			return fmt.Errorf("%s lists no file but the README", sumsFile)
		}
	}
	want = append(slices.Clone(want), readmeFile)
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		return fmt.Errorf("%s lists %v, want %v", sumsFile, names, want)
	}
	for file, sum := range listed {
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			return fmt.Errorf("%s lists %s: %v", sumsFile, file, err) // %v: a missing file here means incomplete
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			return fmt.Errorf("%s does not match %s", file, sumsFile)
		}
	}
	return nil
}
