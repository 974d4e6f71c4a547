package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
)

// rEnc is a tiny writer of R's XDR serialization, enough to build test
// inputs by hand.
type rEnc struct{ bytes.Buffer }

func newREnc(version int) *rEnc {
	e := &rEnc{}
	e.WriteString("X\n")
	e.int(int32(version))
	e.int(0x040201) // writer: R 4.2.1
	e.int(0x030500) // minimal reader: R 3.5.0
	if version == 3 {
		e.int(5)
		e.WriteString("UTF-8")
	}
	return e
}

func (e *rEnc) int(v int32) *rEnc {
	_ = binary.Write(&e.Buffer, binary.BigEndian, v)
	return e
}

func (e *rEnc) flags(typ int, attr, tag bool, levels int) *rEnc {
	f := typ | levels<<12
	if attr {
		f |= flagAttr
	}
	if tag {
		f |= flagTag
	}
	return e.int(int32(f))
}

func (e *rEnc) char(s string) *rEnc {
	e.flags(9, false, false, charUTF8)
	e.int(int32(len(s)))
	e.WriteString(s)
	return e
}

func (e *rEnc) na() *rEnc { return e.flags(9, false, false, 0).int(-1) }

func (e *rEnc) nil() *rEnc { return e.int(sxpNilValue) }

// strs writes a STRSXP; attr says attributes follow (the caller writes them).
func (e *rEnc) strs(attr bool, ss ...string) *rEnc {
	e.flags(16, attr, false, 0)
	e.int(int32(len(ss)))
	for _, s := range ss {
		e.char(s)
	}
	return e
}

func (e *rEnc) ints(typ int, vs ...int32) *rEnc {
	e.flags(typ, false, false, 0)
	e.int(int32(len(vs)))
	for _, v := range vs {
		e.int(v)
	}
	return e
}

// names writes an attribute pairlist holding only "names"; sym is true for
// the first use of the symbol, false to write a back reference to ref.
func (e *rEnc) names(sym bool, ref int, ns ...string) *rEnc {
	e.flags(2, false, true, 0)
	if sym {
		e.flags(1, false, false, 0).char("names")
	} else {
		e.int(int32(ref<<8 | sxpRef))
	}
	e.strs(false, ns...)
	return e.nil()
}

func TestDecodeRStrings(t *testing.T) {
	for _, version := range []int{2, 3} {
		e := newREnc(version)
		e.flags(16, false, false, 0).int(4)
		e.char("EMMA").char("").na().char("Woodhouse, handsome, clever")
		obj, err := DecodeR(e.Bytes())
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		got, err := obj.Strings()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"EMMA", "", "", "Woodhouse, handsome, clever"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("version %d: got %q, want %q", version, got, want)
		}
		if !obj.Elems[2].NA || obj.Elems[1].NA {
			t.Errorf("version %d: NA flags wrong", version)
		}
	}
}

func TestDecodeRLatin1(t *testing.T) {
	e := newREnc(3)
	e.flags(16, false, false, 0).int(1)
	e.flags(9, false, false, charLatin1).int(3)
	e.WriteString("\xa320") // "£20" in Latin-1
	obj, err := DecodeR(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.Elems[0].Str; got != "£20" {
		t.Errorf("got %q, want %q", got, "£20")
	}
}

// TestDecodeRIndex decodes the shape of an .rdx index: a named list of
// integer pairs, a second list reusing the "names" symbol by reference, and a
// logical.
func TestDecodeRIndex(t *testing.T) {
	e := newREnc(3)
	e.flags(19, true, false, 0).int(3)
	e.flags(19, true, false, 0).int(2)
	e.ints(13, 0, 100).ints(13, 100, 50)
	e.names(true, 0, "emma", "persuasion")
	e.flags(19, true, false, 0).int(0)
	e.names(false, 1)
	e.ints(10, 1)
	e.names(false, 1, "variables", "references", "compressed")
	obj, err := DecodeR(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	names, err := obj.Names()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"variables", "references", "compressed"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	vars := obj.Elems[0]
	if vn, _ := vars.Names(); !reflect.DeepEqual(vn, []string{"emma", "persuasion"}) {
		t.Errorf("variable names %q", vn)
	}
	if got := vars.Elems[1].Ints; !reflect.DeepEqual(got, []int32{100, 50}) {
		t.Errorf("persuasion entry %v", got)
	}
	if c := obj.Elems[2]; c.Type != RLogical || !reflect.DeepEqual(c.Ints, []int32{1}) {
		t.Errorf("compressed = %v %v", c.Type, c.Ints)
	}
}

func TestDecodeROtherTypes(t *testing.T) {
	e := newREnc(3)
	// A tagged pairlist of a double vector and a long-length int vector.
	e.flags(2, false, true, 0).flags(1, false, false, 0).char("x")
	e.flags(14, false, false, 0).int(2)
	for _, v := range []float64{1.5, math.Inf(-1)} {
		_ = binary.Write(&e.Buffer, binary.BigEndian, math.Float64bits(v))
	}
	e.flags(2, false, false, 0) // untagged second node
	e.flags(13, false, false, 0).int(-1).int(0).int(2).int(7).int(-8)
	e.nil()
	obj, err := DecodeR(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if obj.Type != RList || !reflect.DeepEqual(obj.Tags, []string{"x", ""}) {
		t.Fatalf("pairlist %v tags %q", obj.Type, obj.Tags)
	}
	if got := obj.Get("x").Reals; got[0] != 1.5 || !math.IsInf(got[1], -1) {
		t.Errorf("reals %v", got)
	}
	if got := obj.Elems[1].Ints; !reflect.DeepEqual(got, []int32{7, -8}) {
		t.Errorf("ints %v", got)
	}
}

func TestDecodeRErrors(t *testing.T) {
	env := newREnc(3).flags(4, false, false, 0) // ENVSXP
	clo := newREnc(3).flags(3, false, false, 0) // CLOSXP
	unknown := newREnc(3).flags(99, false, false, 0)
	trunc := newREnc(3).strs(false, "hello")
	huge := newREnc(3).flags(16, false, false, 0).int(1 << 30)
	badRef := newREnc(3).flags(2, false, true, 0).int(5<<8 | sxpRef)
	v1 := &rEnc{}
	v1.WriteString("X\n")
	v1.int(1)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"env", env.Bytes(), "ENVSXP"},
		{"closure", clo.Bytes(), "CLOSXP"},
		{"unknown", unknown.Bytes(), "unknown SEXP type 99"},
		{"truncated", trunc.Bytes()[:trunc.Len()-2], "truncated"},
		{"huge length", huge.Bytes(), "exceeds"},
		{"bad reference", badRef.Bytes(), "reference 5 out of range"},
		{"ascii format", []byte("A\n1\n"), "not supported"},
		{"no header", []byte("hello"), "header"},
		{"version 1", v1.Bytes(), "version 1"},
	}
	for _, c := range cases {
		_, err := DecodeR(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func zlibBlob(t *testing.T, raw []byte, method byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(raw)))
	switch method {
	case 0:
	case '0':
		buf.WriteByte('0')
		buf.Write(raw)
		return buf.Bytes()
	default:
		buf.WriteByte(method)
	}
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRLazyDB(t *testing.T) {
	for _, tc := range []struct {
		compress int32
		methods  [2]byte
	}{{1, [2]byte{0, 0}}, {3, [2]byte{'Z', '0'}}} {
		a := newREnc(3).strs(false, "It is a truth universally acknowledged,", "").Bytes()
		b := newREnc(3).strs(false, "Sir Walter Elliot").Bytes()
		blobA, blobB := zlibBlob(t, a, tc.methods[0]), zlibBlob(t, b, tc.methods[1])
		rdb := append(append([]byte{}, blobA...), blobB...)

		e := newREnc(3)
		e.flags(19, true, false, 0).int(3)
		e.flags(19, true, false, 0).int(2)
		e.ints(13, 0, int32(len(blobA))).ints(13, int32(len(blobA)), int32(len(blobB)))
		e.names(true, 0, "prideprejudice", "persuasion")
		e.flags(19, false, false, 0).int(0)
		e.ints(13, tc.compress)
		e.names(false, 1, "variables", "references", "compressed")
		var rdx bytes.Buffer
		zw := gzip.NewWriter(&rdx)
		_, _ = zw.Write(e.Bytes())
		_ = zw.Close()

		db, err := OpenRLazyDB(rdb, rdx.Bytes())
		if err != nil {
			t.Fatalf("compress %d: %v", tc.compress, err)
		}
		if got := db.Names(); !reflect.DeepEqual(got, []string{"persuasion", "prideprejudice"}) {
			t.Errorf("names %q", got)
		}
		obj, err := db.Get("persuasion")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := obj.Strings(); !reflect.DeepEqual(s, []string{"Sir Walter Elliot"}) {
			t.Errorf("persuasion = %q", s)
		}
		obj, err = db.Get("prideprejudice")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := obj.Strings(); len(s) != 2 || s[1] != "" {
			t.Errorf("prideprejudice = %q", s)
		}
		if _, err := db.Get("emma"); err == nil || !strings.Contains(err.Error(), "no object") {
			t.Errorf("missing object: error %v", err)
		}
	}
}
