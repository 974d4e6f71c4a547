package vk

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vktrain/vktrain/shaders"
)

// The host side of the typed contract in shaders/contract.go: Kernel reads a spec struct's
// constants by their `spec:"ID"` tags, Dispatch encodes a push struct's fields in order.

var workgroupType = reflect.TypeFor[shaders.Workgroup]()

// contract returns shader's entry in shaders.Contracts.
func contract(shader string) (shaders.Contract, error) {
	c, ok := shaders.Contracts[shader]
	if !ok || c.Spec == nil {
		return c, fmt.Errorf("kernel %s: no contract in shaders.Contracts (declare its push and spec types in shaders/contract.go)", shader)
	}
	return c, nil
}

// specConst is one field of a spec struct.
type specConst struct {
	id    uint32
	index []int // reflect.Value.FieldByIndex
	kind  reflect.Kind
}

// specLayout is a spec struct type's constants in id order, and where its Workgroup is.
type specLayout struct {
	consts    []specConst
	workgroup []int // index of the Workgroup field; nil when the type is Workgroup
}

var specLayouts sync.Map // reflect.Type -> specLayout or error

// specLayoutOf reads (once per type) the constants of a spec struct type.
func specLayoutOf(t reflect.Type) (specLayout, error) {
	if v, ok := specLayouts.Load(t); ok {
		if err, bad := v.(error); bad {
			return specLayout{}, err
		}
		return v.(specLayout), nil
	}
	l, err := readSpecLayout(t)
	if err != nil {
		specLayouts.Store(t, err)
		return l, err
	}
	specLayouts.Store(t, l)
	return l, nil
}

func readSpecLayout(t reflect.Type) (specLayout, error) {
	var l specLayout
	if t.Kind() != reflect.Struct {
		return l, fmt.Errorf("spec type %v is not a struct", t)
	}
	if t != workgroupType {
		f, ok := t.FieldByName("Workgroup")
		if !ok || !f.Anonymous || f.Type != workgroupType {
			return l, fmt.Errorf("spec type %v does not embed shaders.Workgroup", t)
		}
		l.workgroup = f.Index
	}
	var walk func(t reflect.Type, index []int) error
	walk = func(t reflect.Type, index []int) error {
		for i := range t.NumField() {
			f := t.Field(i)
			at := append(slices.Clone(index), i)
			if f.Anonymous && f.Type == workgroupType {
				if err := walk(f.Type, at); err != nil {
					return err
				}
				continue
			}
			id, _, err := specTag(f)
			if err != nil {
				return fmt.Errorf("spec type %v: %w", t, err)
			}
			switch f.Type.Kind() {
			case reflect.Uint32, reflect.Int32, reflect.Float32:
			default:
				return fmt.Errorf("spec type %v: field %s is %v; constants are uint32, int32 or float32", t, f.Name, f.Type)
			}
			l.consts = append(l.consts, specConst{id: id, index: at, kind: f.Type.Kind()})
		}
		return nil
	}
	if err := walk(t, nil); err != nil {
		return l, err
	}
	slices.SortFunc(l.consts, func(a, b specConst) int { return cmp.Compare(a.id, b.id) })
	for i := 1; i < len(l.consts); i++ {
		if l.consts[i].id == l.consts[i-1].id {
			return l, fmt.Errorf("spec type %v: two fields have constant id %d", t, l.consts[i].id)
		}
	}
	return l, nil
}

// specTag reads a spec struct field's tag `spec:"ID"` or `spec:"ID,optional"` (the constant may
// be absent from the SPIR-V; see shaders/contract.go).
func specTag(f reflect.StructField) (id uint32, optional bool, err error) {
	tag, ok := f.Tag.Lookup("spec")
	if !ok {
		return 0, false, fmt.Errorf("field %s has no spec:\"ID\" tag", f.Name)
	}
	num, opt, hasOpt := strings.Cut(tag, ",")
	if hasOpt && opt != "optional" {
		return 0, false, fmt.Errorf("field %s: tag spec:%q: after the id only \"optional\" may follow", f.Name, tag)
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("field %s: tag spec:%q: the id is not a number", f.Name, tag)
	}
	return uint32(n), hasOpt, nil
}

// word is a 4-byte scalar field's bits.
func word(v reflect.Value) uint32 {
	switch v.Kind() {
	case reflect.Uint32:
		return uint32(v.Uint())
	case reflect.Int32:
		return uint32(int32(v.Int()))
	case reflect.Float32:
		return math.Float32bits(float32(v.Float()))
	}
	panic(fmt.Sprintf("vk: %v is not a 4-byte scalar", v.Type()))
}

// values returns spec's constants in id order: their ids, their bits and how they print.
func (l specLayout) values(spec reflect.Value) (ids, words []uint32, text string) {
	ids, words = make([]uint32, len(l.consts)), make([]uint32, len(l.consts))
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range l.consts {
		v := spec.FieldByIndex(c.index)
		ids[i], words[i] = c.id, word(v)
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, v.Interface())
	}
	b.WriteByte(']')
	return ids, words, b.String()
}

// workgroupOf is the workgroup size of a spec struct.
func (l specLayout) workgroupOf(spec reflect.Value) [3]uint32 {
	wg := spec.FieldByIndex(l.workgroup).Interface().(shaders.Workgroup)
	return [3]uint32{wg.X, wg.Y, wg.Z}
}

var pushChecked sync.Map // reflect.Type -> error (nil: a valid push type)

// checkPushType checks (once per type) that t is a struct of 4-byte scalar fields only.
func checkPushType(t reflect.Type) error {
	if v, ok := pushChecked.Load(t); ok {
		err, _ := v.(error)
		return err
	}
	var err error
	if t.Kind() != reflect.Struct {
		err = fmt.Errorf("push type %v is not a struct", t)
	} else {
		for i := range t.NumField() {
			switch f := t.Field(i); f.Type.Kind() {
			case reflect.Uint32, reflect.Int32, reflect.Float32:
			default:
				err = fmt.Errorf("push type %v: field %s is %v; members are uint32, int32 or float32", t, f.Name, f.Type)
			}
		}
	}
	pushChecked.Store(t, err)
	return err
}

// encodePush appends the push struct v's fields, 4 bytes each, little-endian, in order.
func encodePush(b []byte, v reflect.Value) []byte {
	for i := range v.NumField() {
		b = binary.LittleEndian.AppendUint32(b, word(v.Field(i)))
	}
	return b
}
