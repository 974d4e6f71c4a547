// Command shaderbuild compiles every shaders/*.comp to shaders/spv/NAME.spv with glslc (target
// Vulkan 1.1, optimised, no debug info) and checks each result with spirv-val, against the
// project's shader conventions (shaders/common.glsl) and against its Go contract, the push and
// spec struct types in shaders.Contracts (shaders/contract.go; see contract.go here). A shader
// that fails a check is not written. Run it from the repository root:
//
//	go run ./tools/shaderbuild          rebuild spv/, remove .spv files with no source
//	go run ./tools/shaderbuild -check   build into a temporary folder and fail, listing each
//	                                    .spv that differs, is missing or has no source
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vktrain/vktrain/internal/atomicfile"
	"github.com/vktrain/vktrain/shaders"
)

func main() {
	dir := flag.String("dir", "shaders", "the shader folder: sources NAME.comp, includes *.glsl, output spv/NAME.spv")
	check := flag.Bool("check", false, "do not write: fail when spv/ differs from a fresh build")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./tools/shaderbuild [-check] [-dir shaders]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *check, shaders.Contracts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "shaderbuild: %v\n", err)
		os.Exit(1)
	}
}

// tools are the external programs the build needs.
type tools struct{ glslc, spirvVal string }

func findTools() (tools, error) {
	var t tools
	var missing []string
	var err error
	if t.glslc, err = exec.LookPath("glslc"); err != nil {
		missing = append(missing, "glslc")
	}
	if t.spirvVal, err = exec.LookPath("spirv-val"); err != nil {
		missing = append(missing, "spirv-val")
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("%s not found in PATH; install the Debian/Ubuntu packages glslc spirv-tools "+
			"(sudo apt-get install glslc spirv-tools, or make deps-test)", strings.Join(missing, " and "))
	}
	return t, nil
}

// result is one shader's fresh build.
type result struct {
	name string // NAME of NAME.comp
	spv  []byte
	err  error
}

// run builds (or with check, checks) the shaders in dir, checking each one against its entry in
// contracts.
func run(dir string, check bool, contracts map[string]shaders.Contract, out io.Writer) error {
	t, err := findTools()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	sources, err := filepath.Glob(filepath.Join(abs, "*.comp"))
	if err != nil {
		return err
	}
	if len(sources) == 0 {
		return fmt.Errorf("no .comp sources in %s", dir)
	}
	names := make([]string, len(sources))
	for i, s := range sources {
		names[i] = strings.TrimSuffix(filepath.Base(s), ".comp")
	}
	sort.Strings(names)

	tmp, err := os.MkdirTemp("", "shaderbuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	results := compileAll(t, abs, tmp, names)
	general := checkContracts(abs, names, results, contracts)

	var failed []string
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(out, "FAIL %s: %v\n", filepath.Join(dir, r.name+".comp"), indent(r.err.Error()))
			failed = append(failed, r.name+".comp")
		}
	}
	if general != nil {
		fmt.Fprintf(out, "FAIL shaders.Contracts: %v\n", indent(general.Error()))
		failed = append(failed, "shaders.Contracts")
	}
	spvDir := filepath.Join(abs, "spv")
	existing, err := filepath.Glob(filepath.Join(spvDir, "*.spv"))
	if err != nil {
		return err
	}
	built := map[string]bool{}
	for _, n := range names {
		built[n] = true
	}
	var stale []string // .spv files without a source
	for _, e := range existing {
		if n := strings.TrimSuffix(filepath.Base(e), ".spv"); !built[n] {
			stale = append(stale, n)
		}
	}

	if check {
		var bad []string
		for _, r := range results {
			if r.err != nil {
				continue
			}
			rel := filepath.Join(dir, "spv", r.name+".spv")
			old, err := os.ReadFile(filepath.Join(spvDir, r.name+".spv"))
			switch {
			case errors.Is(err, os.ErrNotExist):
				bad = append(bad, rel+" (missing)")
			case err != nil:
				return err
			case !bytes.Equal(old, r.spv):
				bad = append(bad, rel+" (differs from a fresh build)")
			}
		}
		for _, n := range stale {
			bad = append(bad, filepath.Join(dir, "spv", n+".spv")+" (stale: no "+n+".comp)")
		}
		for _, b := range bad {
			fmt.Fprintf(out, "STALE %s\n", b)
		}
		if len(bad) > 0 || len(failed) > 0 {
			var msg []string
			if len(bad) > 0 {
				msg = append(msg, fmt.Sprintf("%d .spv file(s) out of date: run make shaders and commit %s (compiler here: %s)",
					len(bad), filepath.Join(dir, "spv"), glslcVersion(t)))
			}
			if len(failed) > 0 {
				msg = append(msg, "failed to build or to pass the checks: "+strings.Join(failed, ", "))
			}
			return errors.New(strings.Join(msg, "; "))
		}
		fmt.Fprintf(out, "%d shaders up to date\n", len(results))
		return nil
	}

	if err := os.MkdirAll(spvDir, 0o755); err != nil {
		return err
	}
	for _, r := range results {
		if r.err != nil {
			continue
		}
		path := filepath.Join(spvDir, r.name+".spv")
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, r.spv) {
			continue
		}
		if err := atomicfile.Write(path, r.spv); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", filepath.Join(dir, "spv", r.name+".spv"))
	}
	for _, n := range stale {
		if err := os.Remove(filepath.Join(spvDir, n+".spv")); err != nil {
			return err
		}
		fmt.Fprintf(out, "removed %s (no %s.comp)\n", filepath.Join(dir, "spv", n+".spv"), n)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed to build or to pass the checks: %s", strings.Join(failed, ", "))
	}
	fmt.Fprintf(out, "%d shaders built\n", len(results))
	return nil
}

// checkContracts checks each shader built without error against its Go contract, recording a
// failure (a mismatch, no contract) in its result, and returns the errors of the registry as a
// whole: entries without a shader, optional marks that no shader needs.
func checkContracts(abs string, names []string, results []result, contracts map[string]shaders.Contract) error {
	absent := map[string][]uint32{}
	for i, r := range results {
		if r.err != nil {
			continue
		}
		if err := missingContract(r.name, contracts); err != nil {
			results[i].err = err
			continue
		}
		c := contracts[r.name]
		m, err := parse(r.spv)
		if err != nil {
			results[i].err = err
			continue
		}
		decls, err := readDecls(abs, r.name)
		if err != nil {
			results[i].err = fmt.Errorf("reading its GLSL declarations: %v", err)
			continue
		}
		a, err := checkContract(r.name, m, decls, c)
		absent[r.name] = a
		if err != nil {
			results[i].err = fmt.Errorf("does not match its Go contract in shaders/contract.go:\n%v", err)
		}
	}
	return errors.Join(extraContracts(names, contracts), checkOptionalMarks(contracts, absent))
}

// compileAll builds every shader into tmp, in parallel; results come back in names' order.
func compileAll(t tools, abs, tmp string, names []string) []result {
	results := make([]result, len(names))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			spv, err := compile(t, abs, tmp, n)
			results[i] = result{name: n, spv: spv, err: err}
		})
	}
	wg.Wait()
	return results
}

// compile runs glslc on abs/name.comp and checks the result. glslc runs in abs's parent with
// relative paths (glslc --target-env=vulkan1.1 -O -I shaders shaders/NAME.comp), and without -g,
// so no path from this machine can reach the SPIR-V.
func compile(t tools, abs, tmp, name string) ([]byte, error) {
	root, base := filepath.Dir(abs), filepath.Base(abs)
	out := filepath.Join(tmp, name+".spv")
	cmd := exec.Command(t.glslc, "--target-env=vulkan1.1", "-O", "-I", base,
		filepath.Join(base, name+".comp"), "-o", out)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("glslc: %v\n%s", err, strings.TrimSpace(string(msg)))
	}
	cmd = exec.Command(t.spirvVal, "--target-env", "vulkan1.1", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("spirv-val: %v\n%s", err, strings.TrimSpace(string(msg)))
	}
	spv, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{abs, tmp} {
		if bytes.Contains(spv, []byte(p)) {
			return nil, fmt.Errorf("the SPIR-V contains the path %s: builds would not be reproducible", p)
		}
	}
	if err := checkConventions(spv); err != nil {
		return nil, fmt.Errorf("breaks the conventions of common.glsl: %v", err)
	}
	return spv, nil
}

func glslcVersion(t tools) string {
	b, err := exec.Command(t.glslc, "--version").Output()
	if err != nil {
		return "glslc, version unknown"
	}
	return strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0]), " ")
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }
