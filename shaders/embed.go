// Package shaders embeds vktrain's compiled compute shaders: the SPIR-V in spv/, built from the
// GLSL sources in this folder by tools/shaderbuild (make shaders). Conventions: common.glsl.
package shaders

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed spv/*.spv
var spv embed.FS

// index maps every embedded shader name to its SPIR-V, read once.
var index = sync.OnceValue(func() map[string][]byte {
	entries, err := fs.ReadDir(spv, "spv")
	if err != nil {
		panic(fmt.Sprintf("shaders: reading the embedded spv/: %v", err))
	}
	m := make(map[string][]byte, len(entries))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".spv")
		if !ok || e.IsDir() {
			continue
		}
		b, err := spv.ReadFile(path.Join("spv", e.Name()))
		if err != nil {
			panic(fmt.Sprintf("shaders: reading the embedded %s: %v", e.Name(), err))
		}
		m[name] = b
	}
	return m
})

// SPIRV returns the compiled SPIR-V of the compute shader name (file spv/name.spv) as bytes.
// The caller owns the returned slice.
func SPIRV(name string) ([]byte, error) {
	b, ok := index()[name]
	if !ok {
		return nil, fmt.Errorf("shader %q is not embedded (known: %s); add shaders/%s.comp and run make shaders",
			name, strings.Join(Names(), ", "), name)
	}
	return append([]byte(nil), b...), nil
}

// Names lists every embedded shader name, sorted.
func Names() []string {
	return sortedNames(index())
}

// KernelSetHash returns a hex SHA-256 over all embedded SPIR-V (names and bytes, sorted): tuning
// profiles and pipeline caches record it to tell kernel sets apart.
func KernelSetHash() string {
	return kernelSetHash()
}

var kernelSetHash = sync.OnceValue(func() string { return hashSet(index()) })

// hashSet hashes a set of named blobs: for each name in sorted order, the length-prefixed name
// and then the length-prefixed bytes, so no two different sets share an encoding.
func hashSet(files map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, name := range sortedNames(files) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.LittleEndian.PutUint64(n[:], uint64(len(files[name])))
		h.Write(n[:])
		h.Write(files[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
