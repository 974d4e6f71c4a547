package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vktrain/vktrain/shaders"
)

// The check of the Go contract (shaders/contract.go) against each shader: the push struct's
// fields against the push-constant block's members in the SPIR-V (count, offset, size, scalar
// kind, total size) and the GLSL (names), the spec struct's `spec:"ID"` tags against the SPIR-V
// SpecId decorations (ids, scalar kinds) and the GLSL constant_id declarations (names).
//
// glslc drops the specialization constants a shader does not use. A Go field whose constant is
// missing from the SPIR-V is accepted only when tagged `spec:"ID,optional"` and declared in the
// GLSL; and an optional mark must be needed, by at least one shader of the struct type
// (checkOptionalMarks).

var workgroupType = reflect.TypeFor[shaders.Workgroup]()

// scalar is a 4-byte scalar type of a push-constant member or a specialization constant.
type scalar string

const (
	scalarUint  scalar = "uint"
	scalarInt   scalar = "int"
	scalarFloat scalar = "float"
	scalarBool  scalar = "bool"
)

// goKind is the Go field kind that stands for s (bool: VkBool32, uint32).
func (s scalar) goKind() reflect.Kind {
	switch s {
	case scalarUint, scalarBool:
		return reflect.Uint32
	case scalarInt:
		return reflect.Int32
	case scalarFloat:
		return reflect.Float32
	}
	return reflect.Invalid
}

// scalarOf is the scalar type id stands for, or an error for anything but a 32-bit int, 32-bit
// float or bool.
func (m *module) scalarOf(id uint32) (scalar, error) {
	t := m.types[id]
	switch {
	case len(t) == 1 && t[0] == opTypeBool:
		return scalarBool, nil
	case len(t) == 3 && t[0] == opTypeInt && t[1] == 32:
		if t[2] != 0 {
			return scalarInt, nil
		}
		return scalarUint, nil
	case len(t) >= 2 && t[0] == opTypeFloat && t[1] == 32:
		return scalarFloat, nil
	}
	return "", fmt.Errorf("type %%%d is not a 32-bit scalar (uint, int, float or bool)", id)
}

// pushBlock is the struct type of the module's push-constant block; ok is false when it has none.
func (m *module) pushBlock() (id uint32, ok bool, err error) {
	for _, v := range m.variables {
		if v.storage != storagePushConstant {
			continue
		}
		if ok {
			return 0, false, errors.New("more than one push-constant block")
		}
		id, ok = m.pointee(v), true
	}
	return id, ok, nil
}

// specConstants maps the SpecId of every specialization constant to its scalar type.
func (m *module) specConstants() (map[uint32]scalar, error) {
	out := map[uint32]scalar{}
	for c, typ := range m.specConst {
		s, ok := m.decor[c][decorationSpecID]
		if !ok || len(s) == 0 {
			continue // a constant computed from others (OpSpecConstantOp) has no SpecId
		}
		k, err := m.scalarOf(typ)
		if err != nil {
			return nil, fmt.Errorf("specialization constant %d: %v", s[0], err)
		}
		out[s[0]] = k
	}
	return out, nil
}

// glslDecls is what the GLSL source (with its includes) declares: the push-constant block's
// member names and the names of the constant_id constants.
type glslDecls struct {
	push []string          // nil: no push-constant block
	spec map[uint32]string // constant_id -> name
}

var (
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	includeLine  = regexp.MustCompile(`(?m)^[ \t]*#[ \t]*include[ \t]+"([^"]+)"`)
	pushDecl     = regexp.MustCompile(`layout\s*\(\s*push_constant\s*\)\s*uniform\s+\w+\s*\{([^}]*)\}`)
	specDecl     = regexp.MustCompile(`layout\s*\(\s*constant_id\s*=\s*(\d+)\s*\)\s*const\s+\w+\s+(\w+)`)
)

// readDecls reads dir/name.comp and the files it includes (from dir, each once).
func readDecls(dir, name string) (glslDecls, error) {
	var d glslDecls
	seen := map[string]bool{}
	var src strings.Builder
	var read func(file string) error
	read = func(file string) error {
		if seen[file] {
			return nil
		}
		seen[file] = true
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		text := blockComment.ReplaceAllString(lineComment.ReplaceAllString(string(b), ""), "")
		for _, m := range includeLine.FindAllStringSubmatch(text, -1) {
			if err := read(m[1]); err != nil {
				return err
			}
		}
		src.WriteString(includeLine.ReplaceAllString(text, ""))
		src.WriteByte('\n')
		return nil
	}
	if err := read(name + ".comp"); err != nil {
		return d, err
	}
	text := src.String()
	switch blocks := pushDecl.FindAllStringSubmatch(text, -1); len(blocks) {
	case 0:
	case 1:
		d.push = []string{}
		for _, decl := range strings.Split(blocks[0][1], ";") {
			fields := strings.Fields(strings.ReplaceAll(decl, ",", " , "))
			if len(fields) < 2 {
				continue
			}
			for _, n := range strings.Split(strings.Join(fields[1:], ""), ",") {
				d.push = append(d.push, n)
			}
		}
	default:
		return d, fmt.Errorf("%s.comp declares %d push-constant blocks", name, len(blocks))
	}
	d.spec = map[uint32]string{}
	for _, m := range specDecl.FindAllStringSubmatch(text, -1) {
		id, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return d, fmt.Errorf("constant_id %s: %v", m[1], err)
		}
		d.spec[uint32(id)] = m[2]
	}
	return d, nil
}

// sameName compares a GLSL name with a Go field name, ignoring case and underscores.
func sameName(glsl, goName string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	return norm(glsl) == norm(goName)
}

// typeName names a Go type in messages (a reflect.StructOf type has no name).
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		return t.Name()
	}
	return "struct"
}

// checkContract compares shader's SPIR-V module and GLSL declarations with its Go contract. It
// returns the ids of the optional spec fields that the SPIR-V lacks.
func checkContract(shader string, m *module, src glslDecls, c shaders.Contract) (absent []uint32, err error) {
	errs := checkPush(shader, m, src, c.Push)
	absent, specErrs := checkSpec(shader, m, src, c.Spec)
	return absent, errors.Join(append(errs, specErrs...)...)
}

func checkPush(shader string, m *module, src glslDecls, t reflect.Type) []error {
	block, has, err := m.pushBlock()
	if err != nil {
		return []error{fmt.Errorf("%s.comp: %v", shader, err)}
	}
	switch {
	case !has && t == nil:
		return nil
	case !has:
		return []error{fmt.Errorf("%s.comp: Go push type %s, the SPIR-V has no push-constant block (none declared, or unused)", shader, typeName(t))}
	case t == nil:
		return []error{fmt.Errorf("%s.comp: the SPIR-V has a push-constant block, the contract's Push is nil", shader)}
	case t.Kind() != reflect.Struct:
		return []error{fmt.Errorf("%s.comp: Go push type %v is not a struct", shader, t)}
	}
	members := m.types[block]
	if len(members) == 0 || members[0] != opTypeStruct {
		return []error{fmt.Errorf("%s.comp: the push-constant block %%%d is not a struct", shader, block)}
	}
	members = members[1:]
	var errs []error
	if len(members) != t.NumField() {
		errs = append(errs, fmt.Errorf("%s.comp: the push-constant block has %d members, Go %s has %d fields", shader, len(members), typeName(t), t.NumField()))
	}
	if src.push != nil && len(src.push) != len(members) {
		errs = append(errs, fmt.Errorf("%s.comp: the GLSL push-constant block reads as %d members %v, the SPIR-V has %d", shader, len(src.push), src.push, len(members)))
	}
	for i := range max(len(members), t.NumField()) {
		what := fmt.Sprintf("%s.comp: push constant %d", shader, i)
		if i < len(src.push) && len(src.push) == len(members) {
			what += fmt.Sprintf(" %q", src.push[i])
		}
		if i >= t.NumField() {
			errs = append(errs, fmt.Errorf("%s: no Go field (%s has %d)", what, typeName(t), t.NumField()))
			continue
		}
		f := t.Field(i)
		goSide := fmt.Sprintf("Go %s.%s at offset %d %v", typeName(t), f.Name, f.Offset, f.Type)
		if i >= len(members) {
			errs = append(errs, fmt.Errorf("%s: %s, the SPIR-V block has %d members", what, goSide, len(members)))
			continue
		}
		off := m.memberOff[block][uint32(i)]
		size, serr := m.size(members[i])
		kind, kerr := m.scalarOf(members[i])
		switch {
		case kerr != nil || serr != nil:
			errs = append(errs, fmt.Errorf("%s: %s, SPIR-V offset %d: %v", what, goSide, off, errors.Join(kerr, serr)))
		case kind == scalarBool:
			errs = append(errs, fmt.Errorf("%s: %s, SPIR-V bool: a block member must be uint, int or float", what, goSide))
		case uintptr(off) != f.Offset || uintptr(size) != f.Type.Size() || kind.goKind() != f.Type.Kind():
			errs = append(errs, fmt.Errorf("%s: %s (%d bytes), SPIR-V offset %d %s (%d bytes)", what, goSide, f.Type.Size(), off, kind, size))
		}
		if len(src.push) == len(members) && !sameName(src.push[i], f.Name) {
			errs = append(errs, fmt.Errorf("%s: Go field %s.%s has another name", what, typeName(t), f.Name))
		}
	}
	if size, err := m.size(block); err == nil && uintptr(size) != t.Size() {
		errs = append(errs, fmt.Errorf("%s.comp: the push-constant block is %d bytes, Go %s %d", shader, size, typeName(t), t.Size()))
	}
	return errs
}

// specField is one field of a spec struct.
type specField struct {
	name     string
	id       uint32
	optional bool
	kind     reflect.Kind
}

// specTag reads a spec field's tag `spec:"ID"` or `spec:"ID,optional"`. vk reads it the same way.
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

// specFields lists a spec struct's constants (those of its embedded Workgroup included).
func specFields(t reflect.Type) ([]specField, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("spec type %v is not a struct", t)
	}
	if t != workgroupType {
		if f, ok := t.FieldByName("Workgroup"); !ok || !f.Anonymous || f.Type != workgroupType || len(f.Index) != 1 {
			return nil, fmt.Errorf("spec type %s does not embed shaders.Workgroup", typeName(t))
		}
	}
	var out []specField
	var errs []error
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type == workgroupType {
				walk(f.Type)
				continue
			}
			id, opt, err := specTag(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", typeName(t), err))
				continue
			}
			switch f.Type.Kind() {
			case reflect.Uint32, reflect.Int32, reflect.Float32:
			default:
				errs = append(errs, fmt.Errorf("%s.%s is %v: constants are uint32, int32 or float32", typeName(t), f.Name, f.Type))
				continue
			}
			out = append(out, specField{name: typeName(t) + "." + f.Name, id: id, optional: opt, kind: f.Type.Kind()})
		}
	}
	walk(t)
	ids := map[uint32]string{}
	for _, f := range out {
		if other, dup := ids[f.id]; dup {
			errs = append(errs, fmt.Errorf("%s and %s both have spec:\"%d\"", other, f.name, f.id))
		}
		ids[f.id] = f.name
	}
	return out, errors.Join(errs...)
}

func checkSpec(shader string, m *module, src glslDecls, t reflect.Type) (absent []uint32, errs []error) {
	fields, err := specFields(t)
	if err != nil {
		return nil, []error{fmt.Errorf("%s.comp: %v", shader, err)}
	}
	spv, err := m.specConstants()
	if err != nil {
		return nil, []error{fmt.Errorf("%s.comp: %v", shader, err)}
	}
	what := func(id uint32) string {
		s := fmt.Sprintf("%s.comp: spec constant %d", shader, id)
		if n, ok := src.spec[id]; ok {
			s += fmt.Sprintf(" %q", n)
		}
		return s
	}
	goIDs := map[uint32]bool{}
	for _, f := range fields {
		goIDs[f.id] = true
		_, declared := src.spec[f.id]
		if f.id > 2 && src.spec != nil && !declared {
			errs = append(errs, fmt.Errorf("%s: Go %s, the GLSL declares no layout(constant_id = %d)", what(f.id), f.name, f.id))
			continue
		}
		kind, ok := spv[f.id]
		if !ok {
			if f.optional {
				absent = append(absent, f.id)
			} else {
				errs = append(errs, fmt.Errorf("%s: Go %s, not in the SPIR-V: glslc drops a constant the shader does not use; tag the field spec:\"%d,optional\" if that is why",
					what(f.id), f.name, f.id))
			}
			continue
		}
		if kind.goKind() != f.kind {
			errs = append(errs, fmt.Errorf("%s: Go %s is %v, SPIR-V %s", what(f.id), f.name, f.kind, kind))
		}
		if n, ok := src.spec[f.id]; ok && !sameName(n, f.name[strings.LastIndexByte(f.name, '.')+1:]) {
			errs = append(errs, fmt.Errorf("%s: Go field %s has another name", what(f.id), f.name))
		}
	}
	var missing []uint32
	for id := range spv {
		if !goIDs[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for _, id := range missing {
		errs = append(errs, fmt.Errorf("%s (%s): no field of Go %s has spec:\"%d\"", what(id), spv[id], typeName(t), id))
	}
	return absent, errs
}

// checkRegistry checks that contracts has an entry for every shader in names and none other.
func checkRegistry(names []string, contracts map[string]shaders.Contract) error {
	var errs []error
	for _, n := range names {
		errs = append(errs, missingContract(n, contracts))
	}
	return errors.Join(append(errs, extraContracts(names, contracts))...)
}

// missingContract fails when contracts has no entry for shader, or one without a Spec type.
func missingContract(shader string, contracts map[string]shaders.Contract) error {
	if c, ok := contracts[shader]; !ok || c.Spec == nil {
		return fmt.Errorf("%s.comp has no entry in shaders.Contracts (with at least its Spec type): declare it in shaders/contract.go", shader)
	}
	return nil
}

// extraContracts fails for each entry of contracts that names no shader in names.
func extraContracts(names []string, contracts map[string]shaders.Contract) error {
	var extra []string
	for n := range contracts {
		if !slices.Contains(names, n) {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	var errs []error
	for _, n := range extra {
		errs = append(errs, fmt.Errorf("shaders.Contracts has an entry %q, there is no %s.comp", n, n))
	}
	return errors.Join(errs...)
}

// checkOptionalMarks checks that every spec field tagged optional lacks from the SPIR-V of at
// least one shader of its type. absent holds, for each shader checked, the optional ids its
// SPIR-V lacks; a type with a shader that was not checked is skipped.
func checkOptionalMarks(contracts map[string]shaders.Contract, absent map[string][]uint32) error {
	users := map[reflect.Type][]string{}
	for n, c := range contracts {
		if c.Spec != nil {
			users[c.Spec] = append(users[c.Spec], n)
		}
	}
	var errs []error
	for t, names := range users {
		sort.Strings(names)
		fields, err := specFields(t)
		if err != nil {
			continue // reported with each shader
		}
		checked := true
		for _, n := range names {
			_, ok := absent[n]
			checked = checked && ok
		}
		if !checked {
			continue
		}
		for _, f := range fields {
			if !f.optional {
				continue
			}
			needed := false
			for _, n := range names {
				needed = needed || slices.Contains(absent[n], f.id)
			}
			if !needed {
				errs = append(errs, fmt.Errorf("%s is tagged spec:\"%d,optional\", but every shader of %s (%s) keeps constant %d: drop \",optional\"",
					f.name, f.id, typeName(t), strings.Join(names, ", "), f.id))
			}
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
