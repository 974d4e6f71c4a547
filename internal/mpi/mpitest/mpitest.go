// Package mpitest builds programs with -tags mpi and runs them under mpirun, for tests.
package mpitest

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Build compiles pkg (a main package, or a test binary when test is true) with -tags mpi into
// t's temporary folder and returns the binary's path.
func Build(t testing.TB, pkg string, test bool) string {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("mpirun is not installed (tools/deps.sh test installs openmpi-bin libopenmpi-dev): %v", err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	args := []string{"build", "-tags", "mpi", "-o", bin, pkg}
	if test {
		args = []string{"test", "-c", "-tags", "mpi", "-o", bin, pkg}
	}
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	return bin
}

// Command is `mpirun ARGS...` on this host (ARGS: -np N PROGRAM ..., or several such groups
// separated by ":"), with as many ranks as asked whatever the cores, as root too, over shared
// memory. It is killed if it outlives timeout or the test.
func Command(t testing.TB, timeout time.Duration, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	full := append([]string{"--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader"}, args...)
	cmd := exec.CommandContext(ctx, "mpirun", full...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
