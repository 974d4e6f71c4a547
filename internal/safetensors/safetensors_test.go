package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func sample() []Tensor {
	return []Tensor{
		{Name: "wte.weight", Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, -6}},
		{Name: "ln_f.bias", Shape: []int{2}, Data: []float32{0.5, -0.25}},
		{Name: "scalar", Shape: []int{}, Data: []float32{7}},
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Write(path, sample(), map[string]string{"step": "12"}); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["step"] != "12" || len(f.Names) != 3 || f.Names[0] != "wte.weight" {
		t.Fatalf("metadata %v names %v", f.Metadata, f.Names)
	}
	for _, want := range sample() {
		got := f.Tensors[want.Name]
		if len(got.Data) != len(want.Data) || len(got.Shape) != len(want.Shape) {
			t.Fatalf("%s: %+v", want.Name, got)
		}
		for i := range want.Data {
			if got.Data[i] != want.Data[i] {
				t.Fatalf("%s[%d] = %v", want.Name, i, got.Data[i])
			}
		}
	}
	raw, _ := os.ReadFile(path)
	if hlen := int(raw[0]) | int(raw[1])<<8; (8+hlen)%8 != 0 {
		t.Fatalf("data section not 8-byte aligned: header %d", hlen)
	}
}

func TestCorruptionDetected(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := Write(path, sample(), nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	cases := map[string][]byte{
		"truncated":        raw[:len(raw)-3],
		"flipped data bit": append(append([]byte{}, raw[:len(raw)-1]...), raw[len(raw)-1]^1),
		"short":            raw[:5],
		"huge header":      append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, raw[8:]...),
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := Read(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestWriteRefusesBadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	bad := [][]Tensor{
		{{Name: "a", Shape: []int{2}, Data: []float32{1}}},
		{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}},
	}
	for _, ts := range bad {
		if err := Write(path, ts, nil); err == nil {
			t.Errorf("accepted %+v", ts)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a refused write left a file behind")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
