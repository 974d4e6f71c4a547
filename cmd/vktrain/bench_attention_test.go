package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBenchAttentionJSON(t *testing.T) {
	var out bytes.Buffer
	if err := benchAttention([]string{"-b", "2", "-h", "3", "-t", "33", "-d", "16", "-causal", "-runs", "1", "-json"}, &out); err != nil {
		t.Fatal(err)
	}
	var r attentionResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if r.Op != "attention" || r.B != 2 || r.H != 3 || r.T != 33 || r.D != 16 || !r.Causal ||
		!(r.FwdMs > 0) || !(r.BwdMs > 0) || !(r.FwdGFLOPS > 0) || !(r.BwdGFLOPS > 0) || r.Device == "" {
		t.Fatalf("bad result %+v", r)
	}
	if n := strings.Count(strings.TrimSpace(out.String()), "\n"); n != 0 {
		t.Fatalf("-json must print one line, got %d more", n)
	}
	for _, args := range [][]string{{"-t", "0"}, {"-d", "65"}} {
		if err := benchAttention(args, &out); !errors.Is(err, errUsage) {
			t.Errorf("bench attention %v: %v, want a usage error", args, err)
		}
	}
}
