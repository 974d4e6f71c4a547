package profile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MaxParam is the largest value any variant parameter may take; every parameter is at least 1.
// The bound keeps the products computed by Validate far from overflow.
const MaxParam = 1 << 16

// VariantSpec describes one kernel variant of an op: its name, the integer parameters it
// takes (all required) and what it is.
type VariantSpec struct {
	Name   string
	Params []string // in canonical order
	Doc    string

	// check verifies the variant's own constraints and returns the bytes of shared
	// memory one workgroup uses.
	check func(p map[string]int) (shared int, err error)
}

// Has reports whether the variant takes the parameter name.
func (v VariantSpec) Has(name string) bool { return slices.Contains(v.Params, name) }

// Variants returns the known ops and, for each, its variant specs. The map is built
// afresh on every call, so the caller may modify it.
func Variants() map[string][]VariantSpec {
	oneDim := func(doc string) []VariantSpec {
		return []VariantSpec{{
			Name:   "default",
			Params: []string{"wg_x"},
			Doc:    doc,
			check:  func(map[string]int) (int, error) { return 0, nil },
		}}
	}
	return map[string][]VariantSpec{
		"axpy":    oneDim("y = alpha*x + beta*y (also scale); one element per invocation; wg_x invocations per workgroup"),
		"add":     oneDim("residual add and bias broadcast; one element per invocation"),
		"gelu":    oneDim("GELU (tanh form) forward and backward; one element per invocation"),
		"dropout": oneDim("dropout mask from a counter-based RNG; one element per invocation"),
		"adamw": withTexel(oneDim("AdamW update; 256 vec4 blocks of parameters per invocation"),
			"parameters, gradients and moments"),
		"layernorm": oneDim("LayerNorm forward and backward; one row per invocation, wg_x rows per workgroup"),
		"embedding": oneDim("embedding gather and deterministic scatter-add; one output row or table row per invocation"),
		"softmax":   oneDim("row softmax and cross-entropy over the vocabulary; one row per invocation"),
		"reduce": withTexel(oneDim("sums and squared norms (gradient clipping); wg_x partial sums per workgroup"),
			"the gradients in the norm's first pass"),
		"attention": {{
			Name:   "default",
			Params: []string{"wg_x", "rows"},
			Doc:    "fused attention with online softmax; rows query (or key) rows per invocation, wg_x invocations per workgroup",
			check: func(p map[string]int) (int, error) {
				if p["rows"] > 8 {
					return 0, fmt.Errorf("rows = %d exceeds 8 rows per invocation", p["rows"])
				}
				return 0, nil
			},
		}},
		"matmul": {
			{
				Name:   "regblock",
				Params: []string{"wg_x", "wg_y", "tm", "tn"},
				Doc: "register-blocked, no shared memory or barriers (CPUs): wg_x and wg_y invocations " +
					"along n and m; the lanes of a subgroup share a tm-row block of C through shuffles, " +
					"each computing tn of its columns",
				check: checkRegblock,
			},
			{
				Name:   "texel",
				Params: []string{"wg_x", "wg_y", "tm", "tn"},
				Doc: "regblock reading A and B through vec4 texel-buffer views, which lavapipe " +
					"loads with one vector load per lane (storage-buffer loads loop over the lanes); " +
					"products that are not vec4-aligned, or too large for a view, run regblock",
				check: checkRegblock,
			},
			{
				Name:   "tiled",
				Params: []string{"wg_x", "wg_y", "bm", "bn", "bk", "tm", "tn"},
				Doc: "shared-memory tiling: a workgroup computes a bm x bn tile of C, staging " +
					"bm x bk of A and bk x bn of B in shared memory; each invocation computes tm x tn",
				check: checkTiled,
			},
		},
	}
}

// withTexel adds to a one-variant op its "texel" variant: the same kernel and parameters,
// reading what through vec4 texel-buffer views.
func withTexel(specs []VariantSpec, what string) []VariantSpec {
	d := specs[0]
	return append(specs, VariantSpec{
		Name:   "texel",
		Params: d.Params,
		Doc: "default reading " + what + " through vec4 texel-buffer views, which lavapipe loads " +
			"with one vector load per lane; tensors too large for a view run default",
		check: d.check,
	})
}

// lookupOp returns the variant specs of op, or an error naming the known ops.
func lookupOp(op string) ([]VariantSpec, error) {
	all := Variants()
	specs, ok := all[op]
	if !ok {
		return nil, fmt.Errorf("unknown op %q (known: %s)", op, strings.Join(slices.Sorted(maps.Keys(all)), ", "))
	}
	return specs, nil
}

// lookup returns the spec of op's variant, or an error naming what is unknown.
func lookup(op, variant string) (VariantSpec, error) {
	specs, err := lookupOp(op)
	if err != nil {
		return VariantSpec{}, err
	}
	var names []string
	for _, s := range specs {
		if s.Name == variant {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return VariantSpec{}, fmt.Errorf("unknown variant %q for op %s (known: %s)", variant, op, strings.Join(names, ", "))
}

func checkRegblock(p map[string]int) (int, error) {
	tm, tn := p["tm"], p["tn"]
	if tn%4 != 0 {
		return 0, fmt.Errorf("tn = %d is not a multiple of 4 (vec4 loads along n)", tn)
	}
	if tm%4 != 0 {
		return 0, fmt.Errorf("tm = %d is not a multiple of 4 (vec4 loads along m of a transposed A)", tm)
	}
	if tm*tn > 1024 {
		return 0, fmt.Errorf("tm*tn = %d exceeds 1024 accumulators per invocation", tm*tn)
	}
	return 0, nil
}

func checkTiled(p map[string]int) (int, error) {
	bm, bn, bk := p["bm"], p["bn"], p["bk"]
	if want := p["wg_y"] * p["tm"]; bm != want {
		return 0, fmt.Errorf("bm = %d is not wg_y*tm = %d (the tile must divide evenly along m)", bm, want)
	}
	if want := p["wg_x"] * p["tn"]; bn != want {
		return 0, fmt.Errorf("bn = %d is not wg_x*tn = %d (the tile must divide evenly along n)", bn, want)
	}
	if bk%4 != 0 {
		return 0, fmt.Errorf("bk = %d is not a multiple of 4 (vec4 loads along k)", bk)
	}
	return (bm*bk + bk*bn) * 4, nil
}

// Validate checks one entry against its variant's schema and the device limits; the
// error text names the reason. A SubgroupSize of 0 means unknown and is not checked.
func Validate(e Entry, lim Limits) error {
	spec, err := lookup(e.Op, e.Variant)
	if err != nil {
		return err
	}
	for _, name := range spec.Params {
		v, ok := e.Params[name]
		if !ok {
			return fmt.Errorf("variant %s needs param %q", spec.Name, name)
		}
		if v < 1 || v > MaxParam {
			return fmt.Errorf("%s = %d is out of range [1, %d]", name, v, MaxParam)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(e.Params)) {
		if !spec.Has(name) {
			return fmt.Errorf("variant %s has no param %q", spec.Name, name)
		}
	}

	invocations := 1
	for i, name := range []string{"wg_x", "wg_y", "wg_z"} {
		v, ok := e.Params[name]
		if !ok {
			continue
		}
		if uint64(v) > uint64(lim.MaxWorkgroupSize[i]) {
			return fmt.Errorf("%s = %d exceeds the device's maximum workgroup size %d along %c",
				name, v, lim.MaxWorkgroupSize[i], "xyz"[i])
		}
		invocations *= v
	}
	if uint64(invocations) > uint64(lim.MaxInvocations) {
		return fmt.Errorf("workgroup of %d invocations exceeds the device's maximum of %d", invocations, lim.MaxInvocations)
	}
	if s := lim.SubgroupSize; s != 0 && uint64(invocations)%uint64(s) != 0 {
		return fmt.Errorf("workgroup of %d invocations is not a multiple of the subgroup size %d", invocations, s)
	}

	shared, err := spec.check(e.Params)
	if err != nil {
		return err
	}
	if uint64(shared) > uint64(lim.SharedMemory) {
		return fmt.Errorf("tile needs %d bytes of shared memory, device has %d", shared, lim.SharedMemory)
	}
	return nil
}
