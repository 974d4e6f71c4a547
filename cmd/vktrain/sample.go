package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/vktrain/vktrain/data"
	"github.com/vktrain/vktrain/model"
	"github.com/vktrain/vktrain/train"
)

func runSample(args []string, stdout io.Writer) error {
	fs := newFlags("sample", "sample -ckpt DIR [-prompt TEXT] [-tokens N] [-temperature T] [-top-k K] [-seed N] [-json]")
	var ckpt checkpointFlag
	ckpt.register(fs)
	prompt := fs.String("prompt", "\n", "text to continue")
	count := fs.Int("tokens", 200, "tokens to generate")
	temp := fs.Float64("temperature", 0.8, "sampling temperature; 0 takes the most likely token")
	topK := fs.Int("top-k", 40, "sample among the k most likely tokens; 0 means all")
	seed := fs.Uint64("seed", 1, "sampling seed")
	asJSON := fs.Bool("json", false, "print {\"prompt\",\"text\",\"tokens\"} as JSON")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *count < 1 || !(*temp >= 0) || math.IsInf(*temp, 0) || *topK < 0 {
		return fmt.Errorf("%w: -tokens must be positive, -temperature a finite number not negative, -top-k not negative", errUsage)
	}
	ck, err := ckpt.load()
	if err != nil {
		return err
	}
	tok, err := data.NewTokenizer(ck.Config.Model.Tokenizer)
	if err != nil {
		return err
	}
	ids := tok.Encode(*prompt)
	if len(ids) == 0 {
		return fmt.Errorf("%w: the prompt encodes to no tokens", errUsage)
	}
	net, release, err := openCheckpointNet(df, ck, 1, ck.Config.Model.Context)
	if err != nil {
		return err
	}
	defer release()
	out, err := net.Generate(ids, *count, model.Sampling{Temperature: *temp, TopK: *topK, Seed: *seed})
	if err != nil {
		return err
	}
	text := tok.Decode(out)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"prompt": *prompt, "text": text, "tokens": out})
	}
	fmt.Fprintf(stdout, "%s%s\n", *prompt, text)
	return nil
}

func runEval(args []string, stdout io.Writer) error {
	fs := newFlags("eval", "eval -ckpt DIR [-data PATH] [-batches N] [-split test|val] [-json]")
	var ckpt checkpointFlag
	ckpt.register(fs)
	dataPath := fs.String("data", "", "corpus (or image dataset) whose validation split is evaluated (default: the checkpoint's)")
	var batches optionalInt
	fs.Var(&batches, "batches", "validation batches, at least 1 (default: the checkpoint's train.eval_batches; an image classifier's whole split)")
	split := fs.String("split", "test", `image classifier (vit): the split whose accuracy and confusion matrix are printed, "test" or "val"`)
	asJSON := fs.Bool("json", false, "print one JSON line")
	var df deviceFlags
	df.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	ck, err := ckpt.load()
	if err != nil {
		return err
	}
	cfg := ck.Config
	if *dataPath == "" {
		*dataPath = cfg.Train.Data
	}
	if batches.set && batches.v < 1 {
		return fmt.Errorf("%w: -batches must be at least 1, got %d", errUsage, batches.v)
	}
	if cfg.Model.Arch == "vit" {
		return evalImages(ck, df, *dataPath, *split, int(batches.v), *asJSON, stdout)
	}
	n := cfg.Train.EvalBatches
	if batches.set {
		n = int(batches.v)
	}
	tok, err := data.NewTokenizer(cfg.Model.Tokenizer)
	if err != nil {
		return err
	}
	corpus, err := data.Tokens(*dataPath, tok, cfg.Train.AllowBinary)
	if err != nil {
		return err
	}
	if diff := data.Changes(ck.State.Corpus, corpus.Files); ck.State.Corpus != nil && diff != nil {
		fmt.Fprintf(os.Stderr, "note: %s is not the corpus the checkpoint trained on (%s)\n", corpus.Path, strings.Join(diff, ", "))
	}
	set, err := data.EvalBatches(corpus.Val, cfg.Train.Batch, cfg.Train.SeqLen, n)
	if err != nil {
		return fmt.Errorf("validation data %s: %w", *dataPath, err)
	}
	net, release, err := openCheckpointNet(df, ck, cfg.Train.Batch, cfg.Train.SeqLen)
	if err != nil {
		return err
	}
	defer release()
	loss, err := net.MeanLoss(set)
	if err != nil {
		return err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return fmt.Errorf("%s (step %d): the validation loss is %v: the model is broken", ck.Dir, ck.State.Step, loss)
	}
	tokens := len(set) * cfg.Train.Batch * cfg.Train.SeqLen
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"checkpoint": ck.Dir, "step": ck.State.Step,
			"data": *dataPath, "tokens": tokens, "val_loss": loss})
	}
	fmt.Fprintf(stdout, "%s (step %d): validation loss %.4f over %d tokens of %s\n", ck.Dir, ck.State.Step, loss, tokens, *dataPath)
	return nil
}

// checkpointFlag is -ckpt, the checkpoint a command reads.
type checkpointFlag string

func (c *checkpointFlag) register(fs *flag.FlagSet) {
	fs.StringVar((*string)(c), "ckpt", "", "checkpoint folder, or a run's output folder (its latest checkpoint)")
}

// load reads and verifies the checkpoint; -ckpt is required.
func (c checkpointFlag) load() (*train.Checkpoint, error) {
	if c == "" {
		return nil, fmt.Errorf("%w: -ckpt is required", errUsage)
	}
	return train.LoadCheckpoint(string(c))
}

// openCheckpointNet opens the device df selects and loads checkpoint ck's model there for
// batches of b sequences of t tokens; release frees the model and closes the device.
func openCheckpointNet(df deviceFlags, ck *train.Checkpoint, b, t int) (net *model.Net, release func(), err error) {
	ctx, o, err := openOps(df)
	if err != nil {
		return nil, nil, err
	}
	if net, err = train.LoadNet(o, ck, b, t); err != nil {
		ctx.Close()
		return nil, nil, err
	}
	return net, func() { net.Free(); ctx.Close() }, nil
}
