package cachedir

import "testing"

func TestDir(t *testing.T) {
	t.Setenv("VKTRAIN_CACHE_DIR", "-")
	if got := Dir(); got != "" {
		t.Errorf("Dir with VKTRAIN_CACHE_DIR=- is %q, want \"\"", got)
	}
	t.Setenv("VKTRAIN_CACHE_DIR", "/somewhere")
	if got := Dir(); got != "/somewhere" {
		t.Errorf("Dir = %q, want /somewhere", got)
	}
}
