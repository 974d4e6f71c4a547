package runlock

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets the test binary act as a second process that takes the lock and holds it until
// its stdin closes.
func TestMain(m *testing.M) {
	if dir := os.Getenv("RUNLOCK_HOLD"); dir != "" {
		l, err := Acquire(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("held")
		var b [1]byte
		os.Stdin.Read(b[:])
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holder starts a process that holds dir's lock, and returns it once the lock is held.
func holder(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "RUNLOCK_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var b [5]byte
	if n, _ := out.Read(b[:]); string(b[:n]) != "held\n" {
		t.Fatalf("the holder says %q", b[:n])
	}
	return cmd
}

func TestSecondProcessRefused(t *testing.T) {
	dir := t.TempDir()
	h := holder(t, dir)
	_, err := Acquire(dir)
	if err == nil {
		t.Fatal("a second process took a folder in use")
	}
	if want := fmt.Sprintf("process %d", h.Process.Pid); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("the refusal does not name the folder and %s: %v", want, err)
	}
}

func TestDeadHolderDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	h := holder(t, dir)
	if err := h.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("a lock left by a killed process blocks: %v", err)
	}
	b, _ := os.ReadFile(dir + "/" + Name)
	if strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Errorf("the lock file holds %q, want this process's PID", b)
	}
	l.Release()
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}
