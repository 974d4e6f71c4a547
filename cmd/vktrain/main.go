// Command vktrain trains transformer models with Vulkan compute shaders on any GPU, or on the CPU
// through Mesa's lavapipe driver.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vktrain/vktrain/vk"
)

// command is one subcommand: its name, a one-line summary and its entry point.
type command struct {
	name, summary string
	run           func(args []string, stdout io.Writer) error
}

var commands = []command{
	{"train", "train a model (default: the gpt-tiny preset on the Austen corpus)", runTrain},
	{"compare", "train the baseline and the V-cycle of a configuration and report the savings", runCompare},
	{"sample", "generate text from a checkpoint", runSample},
	{"eval", "validation loss of a checkpoint (an image classifier's accuracy and confusion matrix)", runEval},
	{"predict", "draw an image classifier's predictions on test images (PNG)", runPredict},
	{"plan", "the memory a configuration's model takes on the device, computed before allocating", runPlan},
	{"devices", "list the Vulkan devices, their limits and the tuning parameters in force", runDevices},
	{"bench", "time a kernel (bench matmul ...)", runBench},
	{"tune", "time kernel parameters on this device and write its tuned profile", runTune},
	{"config", "list the preset configurations, or print one (config show NAME)", runConfig},
	{"version", "print the version", runVersion},
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `vktrain trains transformer models with Vulkan compute shaders (any GPU, or the CPU via lavapipe).

Usage: vktrain COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run "vktrain COMMAND -h" for a command's flags.
Environment: VKTRAIN_DEVICE (index or name substring) picks the device, VKTRAIN_VALIDATE=1 runs
under the Vulkan validation layers, VKTRAIN_CACHE_DIR moves the cache folder (pipelines, tuned
profiles, token caches; "-" turns it off), VKTRAIN_VULKAN_LOADER names the Vulkan loader library
(default libvulkan.so.1), VKTRAIN_CHUNK_BYTES lowers the chunk size of tensors split past the
binding limit (for tests).
`)
}

// errUsage marks an error in how the command was called (exit status 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "vktrain %s: %v\n", c.name, err)
				return 2
			}
			fmt.Fprintf(stderr, "vktrain %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "vktrain: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlags makes a subcommand's flag set that reports parse errors as usage errors.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vktrain %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning a bad flag into errUsage (the flag package has printed why).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// deviceFlags are the flags of every command that touches the GPU.
type deviceFlags struct {
	device, profile string
	rank            int // local rank in an MPI job: ranks take turns among the best devices
}

// open opens the chosen device, with the validation layers when VKTRAIN_VALIDATE asks for them
// and warnings on stderr.
func (d *deviceFlags) open() (*vk.Context, error) {
	cfg, err := vk.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	cfg.Device, cfg.Rank, cfg.Log = d.device, d.rank, os.Stderr
	return vk.Open(cfg)
}

func (d *deviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.device, "device", "", "device index or name substring (default: $VKTRAIN_DEVICE, else the best device)")
	fs.StringVar(&d.profile, "profile", "", "tuning profile TOML that overrides the shipped ones")
}
