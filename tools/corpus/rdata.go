package main

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// This file decodes the subset of R's serialization format (R Internals,
// "Serialization Formats"; XDR big-endian, versions 2 and 3) that R data
// packages use: character, integer, logical, double and generic vectors,
// pairlists, symbols and attributes. Anything else (environments, closures,
// ALTREP, byte code, ...) is refused with the type named, so a surprising
// input fails loudly instead of decoding into something wrong.

// RType is an R SEXP type code.
type RType uint8

// The SEXP types the decoder understands (codes as in R's Rinternals.h).
const (
	RNil     RType = 0  // NILSXP, R's NULL
	RSymbol  RType = 1  // SYMSXP, a name
	RList    RType = 2  // LISTSXP, a pairlist
	RChar    RType = 9  // CHARSXP, one string
	RLogical RType = 10 // LGLSXP
	RInt     RType = 13 // INTSXP
	RReal    RType = 14 // REALSXP
	RString  RType = 16 // STRSXP, a character vector
	RVector  RType = 19 // VECSXP, a generic vector (an R list)
)

// Pseudo-types and flag bits of the serialization stream.
const (
	sxpRef      = 255 // REFSXP: back reference to an earlier symbol
	sxpNilValue = 254 // NILVALUE_SXP: R_NilValue

	flagObject = 1 << 8
	flagAttr   = 1 << 9
	flagTag    = 1 << 10

	charBytes  = 1 << 1 // CHARSXP level bits: raw bytes,
	charLatin1 = 1 << 2 // Latin-1,
	charUTF8   = 1 << 3 // UTF-8,
	charASCII  = 1 << 6 // ASCII

	maxRDepth = 512 // nesting limit, a guard against hostile input
)

// rTypeNames names SEXP codes in error messages, including the types the
// decoder refuses.
var rTypeNames = map[int]string{
	0: "NILSXP", 1: "SYMSXP", 2: "LISTSXP", 3: "CLOSXP", 4: "ENVSXP", 5: "PROMSXP",
	6: "LANGSXP", 7: "SPECIALSXP", 8: "BUILTINSXP", 9: "CHARSXP", 10: "LGLSXP",
	13: "INTSXP", 14: "REALSXP", 15: "CPLXSXP", 16: "STRSXP", 17: "DOTSXP",
	18: "ANYSXP", 19: "VECSXP", 20: "EXPRSXP", 21: "BCODESXP", 22: "EXTPTRSXP",
	23: "WEAKREFSXP", 24: "RAWSXP", 25: "S4SXP",
	238: "ALTREP_SXP", 239: "ATTRLISTSXP", 240: "ATTRLANGSXP", 241: "BASEENV_SXP",
	242: "EMPTYENV_SXP", 243: "BCREPREF", 244: "BCREPDEF", 245: "GENERICREFSXP",
	246: "CLASSREFSXP", 247: "PERSISTSXP", 248: "PACKAGESXP", 249: "NAMESPACESXP",
	250: "BASENAMESPACE_SXP", 251: "MISSINGARG_SXP", 252: "UNBOUNDVALUE_SXP",
	253: "GLOBALENV_SXP", 254: "NILVALUE_SXP", 255: "REFSXP",
}

func rTypeName(code int) string {
	if n, ok := rTypeNames[code]; ok {
		return fmt.Sprintf("%s (%d)", n, code)
	}
	return fmt.Sprintf("unknown SEXP type %d", code)
}

// String returns R's name for the type, e.g. "STRSXP".
func (t RType) String() string {
	if n, ok := rTypeNames[int(t)]; ok {
		return n
	}
	return fmt.Sprintf("SEXP(%d)", uint8(t))
}

// RObject is one decoded R value.
type RObject struct {
	Type RType
	// Str is the text of a CHARSXP (converted to UTF-8) or a symbol's name.
	Str string
	// NA marks a CHARSXP that is NA_character_.
	NA bool
	// Ints holds INTSXP and LGLSXP data (NA is math.MinInt32).
	Ints []int32
	// Reals holds REALSXP data.
	Reals []float64
	// Elems holds the CHARSXP elements of a STRSXP, the elements of a VECSXP
	// and the values of a pairlist.
	Elems []*RObject
	// Tags holds a pairlist's tags ("" where a node has none).
	Tags []string
	// Attr is the attribute pairlist (type RList), nil when there is none.
	Attr *RObject
	// IsObject reports R's OBJECT bit (the value has a class attribute).
	IsObject bool
}

// Len returns the number of elements of a vector or pairlist.
func (o *RObject) Len() int {
	switch o.Type {
	case RInt, RLogical:
		return len(o.Ints)
	case RReal:
		return len(o.Reals)
	default:
		return len(o.Elems)
	}
}

// Get returns the value tagged name in a pairlist, or nil.
func (o *RObject) Get(name string) *RObject {
	if o == nil || o.Type != RList {
		return nil
	}
	for i, t := range o.Tags {
		if t == name {
			return o.Elems[i]
		}
	}
	return nil
}

// Attribute returns the attribute called name, or nil.
func (o *RObject) Attribute(name string) *RObject {
	return o.Attr.Get(name)
}

// Strings returns the elements of a character vector; NA elements become "".
func (o *RObject) Strings() ([]string, error) {
	if o.Type != RString {
		return nil, fmt.Errorf("R value is %s, not a character vector (STRSXP)", o.Type)
	}
	out := make([]string, len(o.Elems))
	for i, e := range o.Elems {
		out[i] = e.Str
	}
	return out, nil
}

// Names returns the "names" attribute, or nil when the value has none.
func (o *RObject) Names() ([]string, error) {
	n := o.Attribute("names")
	if n == nil {
		return nil, nil
	}
	s, err := n.Strings()
	if err != nil {
		return nil, fmt.Errorf("names attribute: %w", err)
	}
	return s, nil
}

// DecodeR decodes one R object from an uncompressed serialization stream in
// XDR format ("X\n" header), version 2 or 3.
func DecodeR(b []byte) (*RObject, error) {
	d := &rDecoder{b: b}
	if len(b) < 2 || b[0] != 'X' || b[1] != '\n' {
		if len(b) >= 2 && (b[0] == 'A' || b[0] == 'B') && b[1] == '\n' {
			return nil, fmt.Errorf("R serialization: format %q is not supported, only XDR (\"X\\n\")", b[:1])
		}
		return nil, errors.New(`R serialization: missing "X\n" header (not an XDR stream)`)
	}
	d.p = 2
	version, err := d.int()
	if err != nil {
		return nil, fmt.Errorf("R serialization header: %w", err)
	}
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("R serialization: version %d is not supported (want 2 or 3)", version)
	}
	// Writer's R version and the minimal reader version: not needed.
	if _, err := d.bytes(8); err != nil {
		return nil, fmt.Errorf("R serialization header: %w", err)
	}
	if version == 3 {
		n, err := d.int()
		if err != nil {
			return nil, fmt.Errorf("R serialization header: %w", err)
		}
		if n < 0 || n > 256 {
			return nil, fmt.Errorf("R serialization header: native encoding name length %d", n)
		}
		enc, err := d.bytes(int(n))
		if err != nil {
			return nil, fmt.Errorf("R serialization header: %w", err)
		}
		d.native = string(enc)
	}
	obj, err := d.item(0)
	if err != nil {
		return nil, fmt.Errorf("R serialization: %w", err)
	}
	return obj, nil
}

// rDecoder reads an XDR serialization stream held in memory, so every
// length can be checked against the bytes that are left before allocating.
type rDecoder struct {
	b      []byte
	p      int
	native string
	refs   []*RObject
}

func (d *rDecoder) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.p {
		return nil, fmt.Errorf("truncated at byte %d: need %d more bytes, have %d", d.p, n, len(d.b)-d.p)
	}
	s := d.b[d.p : d.p+n]
	d.p += n
	return s, nil
}

func (d *rDecoder) int() (int32, error) {
	s, err := d.bytes(4)
	if err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(s)), nil
}

// length reads a vector length (a long length is -1 then two ints) and checks
// that at least elemSize*length bytes remain.
func (d *rDecoder) length(elemSize int) (int, error) {
	n, err := d.int()
	if err != nil {
		return 0, err
	}
	var l int64 = int64(n)
	if n == -1 {
		hi, err := d.int()
		if err != nil {
			return 0, err
		}
		lo, err := d.int()
		if err != nil {
			return 0, err
		}
		l = int64(uint32(hi))<<32 | int64(uint32(lo))
	} else if n < 0 {
		return 0, fmt.Errorf("negative vector length %d at byte %d", n, d.p-4)
	}
	if l > int64(len(d.b)-d.p)/int64(elemSize) {
		return 0, fmt.Errorf("vector length %d at byte %d exceeds the %d bytes left", l, d.p, len(d.b)-d.p)
	}
	return int(l), nil
}

func (d *rDecoder) item(depth int) (*RObject, error) {
	if depth > maxRDepth {
		return nil, fmt.Errorf("objects nested deeper than %d", maxRDepth)
	}
	at := d.p
	f, err := d.int()
	if err != nil {
		return nil, err
	}
	flags := int(uint32(f))
	typ := flags & 0xff
	levels := flags >> 12
	hasAttr := flags&flagAttr != 0
	hasTag := flags&flagTag != 0
	isObj := flags&flagObject != 0

	switch typ {
	case sxpNilValue:
		return &RObject{Type: RNil}, nil
	case sxpRef:
		idx := flags >> 8
		if idx == 0 {
			i, err := d.int()
			if err != nil {
				return nil, err
			}
			idx = int(i)
		}
		if idx < 1 || idx > len(d.refs) {
			return nil, fmt.Errorf("byte %d: reference %d out of range (%d known)", at, idx, len(d.refs))
		}
		return d.refs[idx-1], nil
	case int(RSymbol):
		name, err := d.item(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("symbol at byte %d: %w", at, err)
		}
		if name.Type != RChar {
			return nil, fmt.Errorf("symbol at byte %d: name is %s, not CHARSXP", at, name.Type)
		}
		s := &RObject{Type: RSymbol, Str: name.Str}
		d.refs = append(d.refs, s)
		return s, nil
	case int(RList):
		return d.pairlist(flags, depth)
	case int(RChar):
		n, err := d.int()
		if err != nil {
			return nil, err
		}
		if n == -1 {
			return &RObject{Type: RChar, NA: true}, nil
		}
		if n < 0 {
			return nil, fmt.Errorf("byte %d: CHARSXP length %d", at, n)
		}
		s, err := d.bytes(int(n))
		if err != nil {
			return nil, fmt.Errorf("CHARSXP at byte %d: %w", at, err)
		}
		return &RObject{Type: RChar, Str: d.text(s, levels)}, nil
	}

	obj := &RObject{Type: RType(typ), IsObject: isObj}
	switch typ {
	case int(RInt), int(RLogical):
		n, err := d.length(4)
		if err != nil {
			return nil, fmt.Errorf("%s at byte %d: %w", rTypeName(typ), at, err)
		}
		obj.Ints = make([]int32, n)
		for i := range obj.Ints {
			obj.Ints[i], _ = d.int() // length checked above
		}
	case int(RReal):
		n, err := d.length(8)
		if err != nil {
			return nil, fmt.Errorf("REALSXP at byte %d: %w", at, err)
		}
		obj.Reals = make([]float64, n)
		for i := range obj.Reals {
			s, _ := d.bytes(8)
			obj.Reals[i] = math.Float64frombits(binary.BigEndian.Uint64(s))
		}
	case int(RString), int(RVector):
		n, err := d.length(4) // every element takes at least its 4-byte flags
		if err != nil {
			return nil, fmt.Errorf("%s at byte %d: %w", rTypeName(typ), at, err)
		}
		obj.Elems = make([]*RObject, n)
		for i := range obj.Elems {
			e, err := d.item(depth + 1)
			if err != nil {
				return nil, fmt.Errorf("%s at byte %d, element %d: %w", rTypeName(typ), at, i, err)
			}
			if typ == int(RString) && e.Type != RChar {
				return nil, fmt.Errorf("STRSXP at byte %d, element %d: %s, not CHARSXP", at, i, e.Type)
			}
			obj.Elems[i] = e
		}
	default:
		return nil, fmt.Errorf("byte %d: %s is not supported", at, rTypeName(typ))
	}
	if hasTag {
		return nil, fmt.Errorf("byte %d: %s with a tag", at, rTypeName(typ))
	}
	if hasAttr {
		a, err := d.item(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("attributes of %s at byte %d: %w", rTypeName(typ), at, err)
		}
		if a.Type != RList {
			return nil, fmt.Errorf("attributes of %s at byte %d: %s, not a pairlist", rTypeName(typ), at, a.Type)
		}
		obj.Attr = a
	}
	return obj, nil
}

// pairlist reads a LISTSXP chain iteratively (the CDR of each node is the
// next node), flattening it into Elems and Tags. Attributes on inner nodes
// are read and dropped; those of the first node are kept.
func (d *rDecoder) pairlist(flags, depth int) (*RObject, error) {
	obj := &RObject{Type: RList, IsObject: flags&flagObject != 0}
	first := true
	for {
		at := d.p - 4
		if flags&flagAttr != 0 {
			a, err := d.item(depth + 1)
			if err != nil {
				return nil, fmt.Errorf("pairlist attributes at byte %d: %w", at, err)
			}
			if first {
				obj.Attr = a
			}
		}
		tag := ""
		if flags&flagTag != 0 {
			t, err := d.item(depth + 1)
			if err != nil {
				return nil, fmt.Errorf("pairlist tag at byte %d: %w", at, err)
			}
			if t.Type != RSymbol && t.Type != RNil {
				return nil, fmt.Errorf("pairlist tag at byte %d: %s, not a symbol", at, t.Type)
			}
			tag = t.Str
		}
		car, err := d.item(depth + 1)
		if err != nil {
			return nil, fmt.Errorf("pairlist value %q at byte %d: %w", tag, at, err)
		}
		obj.Elems = append(obj.Elems, car)
		obj.Tags = append(obj.Tags, tag)
		first = false

		f, err := d.int()
		if err != nil {
			return nil, err
		}
		flags = int(uint32(f))
		switch flags & 0xff {
		case sxpNilValue:
			return obj, nil
		case int(RList):
			continue
		default:
			return nil, fmt.Errorf("pairlist at byte %d: tail is %s", d.p-4, rTypeName(flags&0xff))
		}
	}
}

// text converts a CHARSXP's bytes to a Go string: Latin-1 strings (by their
// level bit, or by a Latin-1 native encoding when unmarked) become UTF-8;
// UTF-8, ASCII and byte strings are kept as they are.
func (d *rDecoder) text(s []byte, levels int) string {
	latin1 := levels&charLatin1 != 0
	if levels&(charLatin1|charBytes|charUTF8|charASCII) == 0 && !utf8.Valid(s) {
		switch d.native {
		case "ISO-8859-1", "latin1", "ISO8859-1", "CP1252":
			latin1 = true
		}
	}
	if !latin1 {
		return string(s)
	}
	var sb strings.Builder
	sb.Grow(2 * len(s))
	for _, c := range s {
		sb.WriteRune(rune(c)) // Latin-1 bytes are the first 256 code points
	}
	return sb.String()
}

// RLazyDB is an R lazy-load database: the .rdb file of compressed
// serialized objects and the .rdx index that names them (the data/Rdata.rdb
// and data/Rdata.rdx of an installed R data package).
type RLazyDB struct {
	rdb      []byte
	compress int
	vars     map[string][2]int
}

// OpenRLazyDB parses the .rdx index rdx (gzip- or zlib-compressed or plain
// serialization) and keeps rdb, the contents of the matching .rdb file.
func OpenRLazyDB(rdb, rdx []byte) (*RLazyDB, error) {
	raw, err := inflateAny(rdx)
	if err != nil {
		return nil, fmt.Errorf("rdx index: %w", err)
	}
	idx, err := DecodeR(raw)
	if err != nil {
		return nil, fmt.Errorf("rdx index: %w", err)
	}
	if idx.Type != RVector {
		return nil, fmt.Errorf("rdx index: top level is %s, want a list (VECSXP)", idx.Type)
	}
	names, err := idx.Names()
	if err != nil {
		return nil, fmt.Errorf("rdx index: %w", err)
	}
	get := func(name string) *RObject {
		for i, n := range names {
			if n == name && i < len(idx.Elems) {
				return idx.Elems[i]
			}
		}
		return nil
	}
	vars := get("variables")
	if vars == nil || vars.Type != RVector {
		return nil, errors.New(`rdx index: no "variables" list`)
	}
	varNames, err := vars.Names()
	if err != nil {
		return nil, fmt.Errorf("rdx index variables: %w", err)
	}
	if len(varNames) != len(vars.Elems) {
		return nil, fmt.Errorf("rdx index: %d variables but %d names", len(vars.Elems), len(varNames))
	}
	db := &RLazyDB{rdb: rdb, compress: 1, vars: make(map[string][2]int, len(varNames))}
	for i, v := range vars.Elems {
		if v.Type != RInt || len(v.Ints) != 2 || v.Ints[0] < 0 || v.Ints[1] < 0 {
			return nil, fmt.Errorf("rdx index: variable %q: want an (offset, length) integer pair, got %s of length %d",
				varNames[i], v.Type, v.Len())
		}
		off, n := int(v.Ints[0]), int(v.Ints[1])
		if off+n > len(rdb) {
			return nil, fmt.Errorf("rdx index: variable %q at bytes %d..%d lies past the end of the %d-byte rdb",
				varNames[i], off, off+n, len(rdb))
		}
		db.vars[varNames[i]] = [2]int{off, n}
	}
	if c := get("compressed"); c != nil {
		switch {
		case (c.Type == RLogical || c.Type == RInt) && len(c.Ints) == 1:
			db.compress = int(c.Ints[0])
		case c.Type == RReal && len(c.Reals) == 1:
			db.compress = int(c.Reals[0])
		default:
			return nil, fmt.Errorf("rdx index: \"compressed\" is %s of length %d", c.Type, c.Len())
		}
	}
	if db.compress < 0 || db.compress > 3 {
		return nil, fmt.Errorf("rdx index: unknown compression %d", db.compress)
	}
	return db, nil
}

// Names returns the names of the objects in the database, sorted.
func (db *RLazyDB) Names() []string {
	out := make([]string, 0, len(db.vars))
	for n := range db.vars {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get decompresses and decodes the object called name.
func (db *RLazyDB) Get(name string) (*RObject, error) {
	loc, ok := db.vars[name]
	if !ok {
		return nil, fmt.Errorf("R database has no object %q (has %v)", name, db.Names())
	}
	raw, err := db.blob(db.rdb[loc[0] : loc[0]+loc[1]])
	if err != nil {
		return nil, fmt.Errorf("R object %q: %w", name, err)
	}
	obj, err := DecodeR(raw)
	if err != nil {
		return nil, fmt.Errorf("R object %q: %w", name, err)
	}
	return obj, nil
}

// maxInflated bounds a decompressed blob, a guard against a corrupt length.
const maxInflated = 1 << 30

// blob decompresses one .rdb record: a 4-byte big-endian uncompressed length,
// then (compression 2 and 3) a method byte, then the compressed stream.
func (db *RLazyDB) blob(b []byte) ([]byte, error) {
	if db.compress == 0 {
		return b, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("record of %d bytes is too short", len(b))
	}
	n := int(binary.BigEndian.Uint32(b))
	if n > maxInflated {
		return nil, fmt.Errorf("record claims %d uncompressed bytes", n)
	}
	body := b[4:]
	method := byte('Z')
	if db.compress >= 2 {
		if len(body) < 1 {
			return nil, errors.New("record has no compression method byte")
		}
		method, body = body[0], body[1:]
	}
	var r io.Reader
	switch method {
	case 'Z':
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		defer zr.Close()
		r = zr
	case '2':
		r = bzip2.NewReader(bytes.NewReader(body))
	case '0':
		r = bytes.NewReader(body)
	case 'X':
		return nil, errors.New("xz-compressed records are not supported")
	default:
		return nil, fmt.Errorf("unknown compression method byte %q", method)
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("decompressing %d bytes: %w", n, err)
	}
	return out, nil
}

// inflateAny undoes gzip or zlib compression, recognised by magic bytes; a
// plain "X\n" stream is returned unchanged.
func inflateAny(b []byte) ([]byte, error) {
	var r io.ReadCloser
	var err error
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		r, err = gzip.NewReader(bytes.NewReader(b))
	case len(b) >= 2 && b[0] == 0x78:
		r, err = zlib.NewReader(bytes.NewReader(b))
	default:
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if len(out) > maxInflated {
		return nil, fmt.Errorf("decompresses to more than %d bytes", maxInflated)
	}
	return out, nil
}
