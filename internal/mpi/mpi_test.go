//go:build !mpi

package mpi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vktrain/vktrain/internal/mpi/mpitest"
)

// TestSumInRankOrder runs TestRanks in 3 ranks under mpirun (3: blocks of unequal fill).
func TestSumInRankOrder(t *testing.T) {
	bin := mpitest.Build(t, "github.com/vktrain/vktrain/internal/mpi", true)
	out, err := mpitest.Command(t, time.Minute, "-np", "3", bin, "-test.run", "^TestRanks$", "-test.v").CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "--- PASS: TestRanks"); n != 3 {
		t.Fatalf("%d of 3 ranks passed TestRanks:\n%s", n, out)
	}
}
