package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// rawEntry is one tensor of a hand-made file: its header entry and its bytes.
type rawEntry struct {
	name, dtype string
	shape       []int
	data        []byte
}

// rawFile lays out a safetensors file as other writers do (no checksum), tensors in order.
func rawFile(entries ...rawEntry) []byte {
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, e := range entries {
		header[e.name] = headerEntry{Dtype: e.dtype, Shape: e.shape, DataOffsets: [2]int64{int64(len(data)), int64(len(data) + len(e.data))}}
		data = append(data, e.data...)
	}
	h, _ := json.Marshal(header)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), data...)
}

func halves(bits ...uint16) []byte {
	var b []byte
	for _, v := range bits {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

// F16 and BF16 tensors are read as float32, exactly: normal, subnormal, signed zero, infinity.
func TestParseHalfPrecision(t *testing.T) {
	raw := rawFile(
		rawEntry{"h", "F16", []int{2, 3}, halves(0x3c00, 0xc000, 0x0001, 0x8000, 0x7c00, 0x3555)},
		rawEntry{"b", "BF16", []int{3}, halves(0x3f80, 0xc0a0, 0x0000)},
	)
	f, err := Parse("half", raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{
		"h": {1, -2, float32(math.Ldexp(1, -24)), float32(math.Copysign(0, -1)), float32(math.Inf(1)), 0.33325195},
		"b": {1, -5, 0},
	}
	for name, w := range want {
		got := f.Tensors[name].Data
		for i := range w {
			if math.Float32bits(got[i]) != math.Float32bits(w[i]) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w[i])
			}
		}
	}
	if _, err := Parse("i64", rawFile(rawEntry{"x", "I64", []int{1}, make([]byte, 8)})); err == nil || !strings.Contains(err.Error(), "dtype I64") {
		t.Errorf("an I64 tensor: %v", err)
	}
}

// A shape whose element count overflows, or exceeds the data, is refused before anything is
// allocated for it.
func TestParseHugeShapes(t *testing.T) {
	for _, shape := range [][]int{{1 << 62, 1 << 62, 4}, {1 << 40}, {-1, 2}, {0, 1 << 62}} {
		raw := rawFile(rawEntry{"x", "F32", shape, make([]byte, 16)})
		if _, err := Parse("huge", raw); !errors.Is(err, ErrCorrupt) {
			t.Errorf("shape %v: %v", shape, err)
		}
	}
}

// FuzzParse: whatever the bytes, Parse returns tensors or an error, never panics, and decodes
// at most twice the file's size (`make test` runs it for 10 s over the seed corpus).
func FuzzParse(f *testing.F) {
	good := rawFile(rawEntry{"a", "F32", []int{2}, make([]byte, 8)}, rawEntry{"b", "F16", []int{1, 2}, halves(0x3c00, 0x7e00)},
		rawEntry{"c", "BF16", []int{}, halves(0x4000)})
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(rawFile(rawEntry{"x", "F32", []int{1 << 40, 1 << 40}, make([]byte, 4)}))
	f.Add(rawFile())
	f.Add([]byte{})
	f.Add(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good[8:]...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		file, err := Parse("fuzz", raw)
		if err != nil {
			return
		}
		decoded := 0
		for _, name := range file.Names {
			tensor := file.Tensors[name]
			n := 1
			for _, d := range tensor.Shape {
				n *= d
			}
			if n != len(tensor.Data) {
				t.Fatalf("%s: shape %v, %d values", name, tensor.Shape, len(tensor.Data))
			}
			decoded += 4 * n
		}
		if decoded > 2*len(raw) {
			t.Fatalf("%d bytes decoded from a file of %d", decoded, len(raw))
		}
	})
}
