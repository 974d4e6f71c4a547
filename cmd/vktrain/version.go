package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/vktrain/vktrain/shaders"
)

// version is the release; the VCS revision comes from the build info.
const version = "0.1.0-dev"

func runVersion(args []string, stdout io.Writer) error {
	fs := newFlags("version", "version")
	if err := parse(fs, args); err != nil {
		return err
	}
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
				if len(rev) > 12 {
					rev = rev[:12]
				}
			}
		}
	}
	fmt.Fprintf(stdout, "vktrain %s (commit %s, %s, kernels %s)\n", version, rev, runtime.Version(), shaders.KernelSetHash()[:12])
	return nil
}
