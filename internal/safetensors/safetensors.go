// Package safetensors reads and writes the safetensors format (an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
// little-endian data), so vktrain's checkpoints open in other tools. Files carry a SHA-256 of
// their data in the header metadata, checked on load, and are written atomically.
package safetensors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/vktrain/vktrain/internal/atomicfile"
)

// Tensor is one named float32 tensor.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// checksumKey is the metadata entry holding the hex SHA-256 of the data section.
const checksumKey = "vktrain.sha256"

// maxHeader bounds the JSON header a reader accepts (a corrupted length must not allocate GiBs).
const maxHeader = 100 << 20

type headerEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Write stores tensors (in the order given) and metadata in path atomically: a temporary file
// in the same folder, fsync, then rename, so a crash leaves either the old file or the new one.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	header := map[string]any{}
	meta := map[string]string{}
	for k, v := range metadata {
		meta[k] = v
	}
	sum := sha256.New()
	var off int64
	seen := map[string]bool{}
	for _, t := range tensors {
		if seen[t.Name] || t.Name == "__metadata__" || t.Name == "" {
			return fmt.Errorf("safetensors %s: bad or duplicate tensor name %q", path, t.Name)
		}
		seen[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return fmt.Errorf("safetensors %s: tensor %s has shape %v (%d elements) but %d values", path, t.Name, t.Shape, n, len(t.Data))
		}
		header[t.Name] = headerEntry{Dtype: "F32", Shape: append([]int{}, t.Shape...), DataOffsets: [2]int64{off, off + 4*int64(n)}}
		off += 4 * int64(n)
		writeFloats(sum, t.Data)
	}
	meta[checksumKey] = hex.EncodeToString(sum.Sum(nil))
	header["__metadata__"] = meta
	hjson, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hjson)%8 != 0 { // pad so the data starts aligned
		hjson = append(hjson, ' ')
	}
	return atomicfile.WriteWith(path, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hjson)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(hjson); err != nil {
			return err
		}
		for _, t := range tensors {
			if err := writeFloats(w, t.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeFloats(w io.Writer, data []float32) error {
	buf := make([]byte, 0, 1<<16)
	for i, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) || i == len(data)-1 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// File is a loaded safetensors file.
type File struct {
	Tensors  map[string]Tensor
	Names    []string // in file order
	Metadata map[string]string
}

// ErrCorrupt marks a file that is truncated, malformed or fails its checksum.
var ErrCorrupt = errors.New("corrupted or truncated")

// Read loads path and checks its structure and, when present, its checksum (Parse).
func Read(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, raw)
}

// dtypeSizes are the element sizes of the dtypes Parse reads; F16 and BF16 become float32.
var dtypeSizes = map[string]int64{"F32": 4, "F16": 2, "BF16": 2}

// Parse reads a safetensors file's bytes (name labels the errors). The file may come from
// anyone: every size the header states is checked against the bytes there are before anything
// is allocated for it, so the tensors decoded take at most twice the file's size (F16 and
// BF16 widen to float32) and a malformed file is an error wrapping ErrCorrupt, never a panic.
func Parse(name string, raw []byte) (*File, error) {
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", name, ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if len(raw) < 8 {
		return nil, corrupt("%d bytes, shorter than the header length", len(raw))
	}
	hlen := binary.LittleEndian.Uint64(raw)
	if hlen > maxHeader || 8+hlen > uint64(len(raw)) {
		return nil, corrupt("header length %d does not fit in %d bytes", hlen, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+hlen], &header); err != nil {
		return nil, corrupt("header: %v", err)
	}
	data := raw[8+hlen:]
	f := &File{Tensors: map[string]Tensor{}, Metadata: map[string]string{}}
	if m, ok := header["__metadata__"]; ok {
		if err := json.Unmarshal(m, &f.Metadata); err != nil {
			return nil, corrupt("metadata: %v", err)
		}
		delete(header, "__metadata__")
	}
	type placed struct {
		name string
		e    headerEntry
	}
	var all []placed
	for tensor, msg := range header {
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, corrupt("tensor %s: %v", tensor, err)
		}
		if _, ok := dtypeSizes[e.Dtype]; !ok {
			return nil, fmt.Errorf("%s: tensor %s has dtype %s; vktrain reads F32, F16 and BF16", name, tensor, e.Dtype)
		}
		all = append(all, placed{tensor, e})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].e.DataOffsets[0] < all[j].e.DataOffsets[0] })
	var end int64
	for _, p := range all {
		size := dtypeSizes[p.e.Dtype]
		// The element count, kept within the data's bytes as it is multiplied up.
		n := int64(1)
		for _, d := range p.e.Shape {
			if d < 0 || (d > 0 && n > int64(len(data))/size/int64(d)) {
				return nil, corrupt("tensor %s has shape %v, more than the %d bytes of data hold", p.name, p.e.Shape, len(data))
			}
			n *= int64(d)
		}
		b, e := p.e.DataOffsets[0], p.e.DataOffsets[1]
		if b != end || e-b != size*n || e > int64(len(data)) {
			return nil, corrupt("tensor %s: bytes [%d, %d) for %s shape %v in %d bytes of data", p.name, b, e, p.e.Dtype, p.e.Shape, len(data))
		}
		end = e
		f.Tensors[p.name] = Tensor{Name: p.name, Shape: p.e.Shape, Data: decode(p.e.Dtype, data[b:e])}
		f.Names = append(f.Names, p.name)
	}
	if end != int64(len(data)) {
		return nil, corrupt("%d bytes of data, the header accounts for %d", len(data), end)
	}
	if want, ok := f.Metadata[checksumKey]; ok {
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != want {
			return nil, corrupt("checksum mismatch")
		}
	}
	return f, nil
}

// decode turns little-endian F32, F16 or BF16 bytes into float32s.
func decode(dtype string, b []byte) []float32 {
	switch dtype {
	case "F16":
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = Float16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out
	case "BF16":
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return out
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Float16 is the float32 value of IEEE half-precision bits h (exact: every half is a float32).
func Float16(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp, frac := uint32(h>>10)&0x1f, uint32(h&0x3ff)
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	}
	// zero or subnormal: frac x 2^-24
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}
