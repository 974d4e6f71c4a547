package tune_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vktrain/vktrain/shaders"
	"github.com/vktrain/vktrain/vk/ops"
	"github.com/vktrain/vktrain/vk/profile"
	"github.com/vktrain/vktrain/vk/tune"
	"github.com/vktrain/vktrain/vk/vktest"
)

func TestBuckets(t *testing.T) {
	got := tune.Buckets([]tune.Case{
		{Kernel: "matmul", Dims: []int{1024, 768, 256}, Count: 8},
		{Kernel: "matmul", Dims: []int{1024, 512, 256}, Count: 1},
		{Kernel: "matmul", Dims: []int{1024, 512, 256}, TransB: true, Count: 2},
		{Kernel: "add", Dims: []int{1}, Count: 3},
	})
	want := []tune.Case{
		{Kernel: "matmul", Dims: []int{1024, 512, 256}, Count: 8*1.5 + 1},
		{Kernel: "matmul", Dims: []int{1024, 512, 256}, TransB: true, Count: 2},
		{Kernel: "add", Dims: []int{1}, Count: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Buckets = %+v\nwant %+v", got, want)
	}
	if s := want[1].String(); s != "matmul NT 1024x512x256" {
		t.Errorf("String = %q", s)
	}
}

// tinyCases are a tiny op set at shapes that are not powers of two.
var tinyCases = []tune.Case{
	{Kernel: "gelu", Dims: []int{1000}, Count: 2},
	{Kernel: "layernorm", Dims: []int{33, 40}, Count: 1},
	{Kernel: "bias_grad", Dims: []int{9, 70}, Count: 1},
}

// The tuner's profile loads back as this device's tuned profile, passes the limit checks and
// computes what the reference does, at the tuned buckets and off them.
func TestTuneTinyOpSet(t *testing.T) {
	ctx := vktest.Open(t)
	shipped, err := ops.NewFrom(ctx, profile.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	results, err := tune.Run(shipped, tinyCases, tune.Options{Quick: true, Samples: 1, Progress: func(done, total int) {
		if calls++; done > total {
			t.Errorf("progress %d of %d", done, total)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || calls == 0 {
		t.Fatalf("%d results and %d progress calls, want 3 and some", len(results), calls)
	}
	for _, r := range results {
		if base, _ := shipped.Profile().Entry(r.Op); r.Baseline.Variant != base.Variant || !reflect.DeepEqual(r.Baseline.Params, base.Params) {
			t.Errorf("%s: baseline %+v, want the shipped %+v", r.Op, r.Baseline, base)
		}
		if win, base := r.StepMs(); !(win > 0 && win <= base) || r.Tried < 2 {
			t.Errorf("%s: winner %g ms, baseline %g ms, %d tried", r.Op, win, base, r.Tried)
		}
	}

	dir := t.TempDir()
	t.Setenv("VKTRAIN_CACHE_DIR", dir)
	p := tune.Profile(shipped, results)
	if p.Kernels != shaders.KernelSetHash() {
		t.Errorf("kernels %q, want the kernel-set hash", p.Kernels)
	}
	if err := os.WriteFile(profile.TunedPath(dir, ops.DeviceOf(ctx.Info)), p.Format("test", nil), 0o644); err != nil {
		t.Fatal(err)
	}
	tuned, err := ops.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		e, err := tuned.Profile().Entry(r.Op)
		if err != nil {
			t.Fatal(err)
		}
		if e.Origin != profile.FromTuned || e.Variant != r.Winner.Variant || !reflect.DeepEqual(e.Params, r.Winner.Params) {
			t.Errorf("%s in force: %+v, want the tuned winner %+v", r.Op, e, r.Winner)
		}
		if err := profile.Validate(e, ops.LimitsOf(ctx.Info)); err != nil {
			t.Error(err)
		}
	}
	for _, c := range append(tinyCases, tune.Buckets(tinyCases)...) {
		if err := tune.Check(tuned, c); err != nil {
			t.Error(err)
		}
	}
}

func TestStaleTunedProfileIgnored(t *testing.T) {
	ctx := vktest.Open(t)
	dir := t.TempDir()
	t.Setenv("VKTRAIN_CACHE_DIR", dir)
	o, err := ops.NewFrom(ctx, profile.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	p := tune.Profile(o, nil)
	p.Kernels = strings.Repeat("0", 64)
	p.Entries["add"] = profile.Entry{Op: "add", Variant: "default", Params: map[string]int{"wg_x": 128}}
	path := profile.TunedPath(dir, ops.DeviceOf(ctx.Info))
	if err := os.WriteFile(path, p.Format("", nil), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err = ops.New(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := o.Profile().Entry("add"); e.Origin == profile.FromTuned {
		t.Errorf("add from the stale tuned profile: %+v", e)
	}
	if notes := o.Profile().Notes(); len(notes) != 1 || !strings.Contains(notes[0], path) || !strings.Contains(notes[0], "kernel set 000000000000") {
		t.Errorf("notes %q, want one naming %s and its kernel set", notes, path)
	}
}

// tinyCase is, for each profile op but matmul, a small case of each kernel that runs it.
var tinyCase = map[string][]tune.Case{
	"add":       {{Kernel: "add", Dims: []int{77}}, {Kernel: "bias_grad", Dims: []int{9, 70}}},
	"gelu":      {{Kernel: "gelu", Dims: []int{77}}},
	"layernorm": {{Kernel: "layernorm", Dims: []int{9, 70}}},
	"embedding": {{Kernel: "embedding", Dims: []int{9, 12, 5}}},
	"softmax":   {{Kernel: "cross_entropy", Dims: []int{9, 70}}},
	"adamw":     {{Kernel: "adamw", Dims: []int{300}}},
	"reduce":    {{Kernel: "grad_norm", Dims: []int{3000}}},
	"attention": {{Kernel: "attention", Dims: []int{2, 3, 19, 24}, Causal: true}, {Kernel: "attention", Dims: []int{1, 2, 70, 64}}},
}

// Every entry of every shipped profile that fits this device computes what the reference does
// (matmul's: TestMatmul/ExactEveryProfile).
func TestShippedProfilesCompute(t *testing.T) {
	ctx := vktest.Open(t)
	o, err := ops.NewFrom(ctx, profile.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := profile.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range profiles {
		for op, e := range p.Entries {
			cases, ok := tinyCase[op]
			if !ok {
				continue
			}
			with, err := o.With(e)
			if err != nil {
				t.Logf("%s: ops.%s does not fit this device: %v", p.Source, op, err)
				continue
			}
			for _, c := range cases {
				if err := tune.Check(with, c); err != nil {
					t.Errorf("%s: ops.%s %v: %v", p.Source, op, e.Params, err)
				}
			}
		}
	}
}
