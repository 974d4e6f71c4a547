package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/vktrain/vktrain/config"
)

func runConfig(args []string, stdout io.Writer) error {
	const synopsis = "Usage: vktrain config list | show NAME\n\n" +
		"Presets are embedded TOML configurations: print one, copy it, edit it, pass it with -config FILE."
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" {
		fmt.Fprintln(stdout, synopsis)
		if len(args) == 0 {
			return fmt.Errorf("%w: config list | show NAME", errUsage)
		}
		return nil
	}
	switch {
	case args[0] == "list" && len(args) == 1:
		for _, n := range config.Presets() {
			text, _ := config.PresetText(n)
			fmt.Fprintf(stdout, "%s\n", presetSummary(string(text)))
		}
		return nil
	case args[0] == "show" && len(args) == 2:
		text, err := config.PresetText(args[1])
		if err != nil {
			return err
		}
		_, err = stdout.Write(text)
		return err
	}
	return fmt.Errorf("%w: config list | show NAME", errUsage)
}

// presetSummary is the first sentence of a preset's leading comment, which may run over several
// lines: "NAME: what it is."
func presetSummary(text string) string {
	var words []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		words = append(words, strings.Fields(strings.TrimPrefix(line, "#"))...)
	}
	summary := strings.Join(words, " ")
	if i := strings.Index(summary, ". "); i >= 0 {
		summary = summary[:i+1]
	}
	return summary
}
