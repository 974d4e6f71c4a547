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

// Read loads path and checks its structure and, when present, its checksum.
func Read(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", path, ErrCorrupt, fmt.Sprintf(format, a...))
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
	for name, msg := range header {
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, corrupt("tensor %s: %v", name, err)
		}
		if e.Dtype != "F32" {
			return nil, fmt.Errorf("%s: tensor %s has dtype %s; vktrain reads F32 only", path, name, e.Dtype)
		}
		all = append(all, placed{name, e})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].e.DataOffsets[0] < all[j].e.DataOffsets[0] })
	var end int64
	for _, p := range all {
		n := int64(1)
		for _, d := range p.e.Shape {
			if d < 0 {
				return nil, corrupt("tensor %s has shape %v", p.name, p.e.Shape)
			}
			n *= int64(d)
		}
		b, e := p.e.DataOffsets[0], p.e.DataOffsets[1]
		if b != end || e-b != 4*n || e > int64(len(data)) {
			return nil, corrupt("tensor %s: bytes [%d, %d) for shape %v in %d bytes of data", p.name, b, e, p.e.Shape, len(data))
		}
		end = e
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[b+4*int64(i):]))
		}
		f.Tensors[p.name] = Tensor{Name: p.name, Shape: p.e.Shape, Data: vals}
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
