package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// IDX is an array of unsigned bytes in the idx format of MNIST and Fashion-MNIST: the sizes of
// its dimensions (the first is the number of items) and the values, row-major.
type IDX struct {
	Dims []int
	Data []byte
}

// idxUbyte is the idx type code of unsigned bytes, the only one the datasets use.
const idxUbyte = 0x08

// ReadIDX reads an idx file, gzip-compressed (as Debian ships it) or not. Every error names the
// file and what is wrong with it: not idx, another element type, truncated, or trailing data.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := ParseIDX(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, nil
}

// ParseIDX reads an idx array from r, decompressing it first when it starts with gzip's magic
// number.
func ParseIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var head [4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return nil, fmt.Errorf("not an idx file: %w", truncated(err))
	}
	if head[0] != 0 || head[1] != 0 || head[3] == 0 {
		return nil, fmt.Errorf("not an idx file (magic number % x, want 00 00 TYPE DIMS)", head)
	}
	if head[2] != idxUbyte {
		return nil, fmt.Errorf("idx element type 0x%02x, only unsigned bytes (0x08) are read", head[2])
	}
	dims := make([]int, head[3])
	size := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("dimension %d: %w", i, truncated(err))
		}
		if d == 0 || d > 1<<28 || size > (1<<31)/int(d) {
			return nil, fmt.Errorf("dimension %d is %d: not a plausible size", i, d)
		}
		dims[i], size = int(d), size*int(d)
	}
	x := &IDX{Dims: dims, Data: make([]byte, size)}
	if n, err := io.ReadFull(br, x.Data); err != nil {
		return nil, fmt.Errorf("dimensions %v need %d bytes of data, the file has %d: truncated", dims, size, n)
	}
	if n, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("after the data: %w", truncated(err))
	} else if n > 0 {
		return nil, fmt.Errorf("%d bytes after the %d bytes that dimensions %v hold", n, size, dims)
	}
	return x, nil
}

// truncated names an unexpected end of file as truncation.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated")
	}
	return err
}

// EncodeIDX is x in the idx format, uncompressed (for tests and tools).
func EncodeIDX(x *IDX) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, idxUbyte, byte(len(x.Dims))})
	for _, d := range x.Dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(x.Data)
	return b.Bytes()
}
