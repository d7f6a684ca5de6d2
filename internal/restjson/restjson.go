// Package restjson writes messages as the REST API's JSON: the same JSON as protojson with
// UseProtoNames and EmitDefaultValues (QingCloud's snake_case names; scalars without presence always,
// unset fields with presence never, empty lists and maps as [] and {}), from a plan compiled once per
// message type instead of protojson's per-call reflection, field sorting and closures. The fields of
// generated messages are read straight from their Go structs where package protolayout says where
// they are (scalars, strings, messages and lists of strings or messages); other fields, and messages
// without generated Go types (dynamicpb), are read through protoreflect. The output
// differs from protojson's only in whitespace, which protojson randomizes on purpose: restjson writes
// none. Whatever the plan does not cover (well-known types other than Timestamp, Struct, Value and
// ListValue; extensions; values protojson refuses, such as invalid UTF-8) is left to protojson, so the
// answer or the error is protojson's.
package restjson

import (
	"cmp"
	"encoding/base64"
	"errors"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/datetime"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/protolayout"
)

// Options are the protojson options whose output restjson reproduces.
var Options = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}

// errFallback makes Marshal hand the message to protojson.
var errFallback = errors.New("restjson: left to protojson")

// Marshal returns the JSON of m, in a buffer of the size of the last answer of its type.
func Marshal(m proto.Message) ([]byte, error) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return Options.Marshal(m)
	}
	rm := m.ProtoReflect()
	p := planOf(rm.Descriptor())
	out, err := p.append(make([]byte, 0, min(max(p.lastSize.Load(), 256), 4<<20)), rm)
	if err != nil {
		return Options.Marshal(m)
	}
	p.lastSize.Store(int64(len(out) + len(out)/8))
	return out, nil
}

// Append appends the JSON of m to b.
func Append(b []byte, m proto.Message) ([]byte, error) {
	if m == nil || !m.ProtoReflect().IsValid() { // a nil message
		return Options.MarshalAppend(b, m)
	}
	rm := m.ProtoReflect()
	out, err := planOf(rm.Descriptor()).append(b, rm)
	if err != nil {
		return Options.MarshalAppend(b, m)
	}
	return out, nil
}

// kind is how a message type is written.
type kind uint8

const (
	kindObject    kind = iota // its fields, as an object
	kindTimestamp             // RFC 3339, Z, 0/3/6/9 fractional digits
	kindStruct                // google.protobuf.Struct: an object of Values
	kindValue                 // google.protobuf.Value: the JSON value of its kind
	kindList                  // google.protobuf.ListValue: an array of Values
	kindOther                 // another well-known type, or extensions: protojson
)

// plan is how to write one message type.
type plan struct {
	lastSize atomic.Int64 // bytes: the size of the last JSON written (plus an eighth), to size the next buffer

	kind   kind
	fields []field
	// For Timestamp: seconds and nanos. For Struct: fields. For Value: its oneof. For ListValue: values.
	a, b protoreflect.FieldDescriptor
	od   protoreflect.OneofDescriptor
	// lay is where the fields of the message type's generated Go struct are (nil without one): the
	// messages of that Go type are written by appendAt. For Timestamp, offA and offB are the offsets
	// of seconds and nanos when direct says they can be read straight.
	lay        *protolayout.Layout
	direct     bool
	offA, offB uintptr
}

// field is one field of a kindObject message, in declaration order.
type field struct {
	// op says how appendAt reads the field from the Go struct, at offset off; OpReflect: through
	// protoreflect. ptr: the Go field is a pointer, nil when the field is unset (OpPtr…, OpMsg).
	op       protolayout.Op
	ptr      bool
	optional bool // skipped when unset: it has presence or belongs to a oneof
	off      uintptr
	name     string // `"name":`
	elem     *plan  // the plan of a message field, list element or map value
	fd       protoreflect.FieldDescriptor
	// enum holds the JSON of the names of an enum field's values (protojson writes a number the
	// enum does not name as a number).
	enum map[protoreflect.EnumNumber]string
	mt   protoreflect.MessageType // the type of an OpMsgs field's elements, for a nil element
}

var plans sync.Map // protoreflect.FullName → *plan

func planOf(md protoreflect.MessageDescriptor) *plan {
	if p, ok := plans.Load(md.FullName()); ok {
		return p.(*plan)
	}
	building := map[protoreflect.FullName]*plan{}
	p := compile(md, building)
	for n, q := range building {
		plans.LoadOrStore(n, q)
	}
	return p
}

func compile(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]*plan) *plan {
	if p, ok := building[md.FullName()]; ok {
		return p // a recursive type: the plan is being filled
	}
	if p, ok := plans.Load(md.FullName()); ok {
		return p.(*plan)
	}
	p := &plan{lay: protolayout.Of(md)}
	building[md.FullName()] = p
	fds := md.Fields()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		p.kind, p.a, p.b = kindTimestamp, fds.ByName("seconds"), fds.ByName("nanos")
		if p.lay != nil {
			a, b := p.lay.Fields[p.a.Index()], p.lay.Fields[p.b.Index()]
			p.direct, p.offA, p.offB = a.Op == protolayout.OpInt64 && b.Op == protolayout.OpInt32, a.Off, b.Off
		}
		return p
	case "google.protobuf.Struct":
		p.kind, p.a = kindStruct, fds.ByName("fields")
		return p
	case "google.protobuf.Value":
		p.kind, p.od = kindValue, md.Oneofs().ByName("kind")
		return p
	case "google.protobuf.ListValue":
		p.kind, p.a = kindList, fds.ByName("values")
		return p
	}
	if md.ParentFile().Package() == "google.protobuf" || md.ExtensionRanges().Len() > 0 {
		p.kind = kindOther
		return p
	}
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if fd.Cardinality() == protoreflect.Required {
			p.kind, p.fields = kindOther, nil // protojson checks that required fields are set
			return p
		}
		f := field{fd: fd, name: quotedName(fd.TextName()), optional: fd.HasPresence() || fd.ContainingOneof() != nil}
		vd := fd
		if fd.IsMap() {
			vd = fd.MapValue()
		}
		if vd.Kind() == protoreflect.MessageKind || vd.Kind() == protoreflect.GroupKind {
			f.elem = compile(vd.Message(), building)
		}
		if fd.Kind() == protoreflect.EnumKind && fd.Enum().FullName() != "google.protobuf.NullValue" {
			f.enum = map[protoreflect.EnumNumber]string{}
			for j := 0; j < fd.Enum().Values().Len(); j++ {
				ev := fd.Enum().Values().Get(j)
				if _, ok := f.enum[ev.Number()]; !ok { // the first name of an alias, as ByNumber
					f.enum[ev.Number()] = strconv.Quote(string(ev.Name()))
				}
			}
		}
		if p.lay != nil {
			f.op, f.off, f.mt = directOp(&f, p.lay.Fields[fd.Index()])
			f.ptr = f.op == protolayout.OpMsg || f.op != protolayout.OpReflect && f.optional
		}
		p.fields = append(p.fields, f)
	}
	return p
}

// directOp is how appendAt reads f (lf is its layout): OpReflect unless reading the Go field gives
// what protoreflect would, presence included (a nil pointer for an unset optional field; no
// presence for a plain scalar), and a message field's type has a layout too.
func directOp(f *field, lf protolayout.Field) (protolayout.Op, uintptr, protoreflect.MessageType) {
	switch lf.Op {
	case protolayout.OpReflect:
	case protolayout.OpMsg, protolayout.OpMsgs:
		if f.elem != nil && f.elem.lay != nil && lf.MT != nil {
			return lf.Op, lf.Off, lf.MT
		}
	case protolayout.OpStrings:
		return lf.Op, lf.Off, nil
	case protolayout.OpPtrString, protolayout.OpPtrBool, protolayout.OpPtrInt32, protolayout.OpPtrEnum,
		protolayout.OpPtrInt64, protolayout.OpPtrUint32, protolayout.OpPtrUint64, protolayout.OpPtrFloat32,
		protolayout.OpPtrFloat64:
		if f.optional {
			return lf.Op, lf.Off, nil
		}
	default: // a plain scalar
		if !f.optional {
			return lf.Op, lf.Off, nil
		}
	}
	return protolayout.OpReflect, 0, nil
}

// quotedName is `"name":`. Field names are ASCII identifiers: nothing to escape.
func quotedName(name string) string { return strconv.Quote(name) + ":" }

// append writes m: straight from its Go struct when it is of p's generated type, else through
// protoreflect.
func (p *plan) append(b []byte, m protoreflect.Message) ([]byte, error) {
	if p.lay != nil {
		if ptr, ok := p.lay.Pointer(m); ok {
			return p.appendAt(b, ptr)
		}
	}
	return p.appendReflect(b, m)
}

// appendAt writes the message whose struct (of p's generated type) is at ptr, reading the fields
// directOp allows from the struct and the others through protoreflect.
func (p *plan) appendAt(b []byte, ptr unsafe.Pointer) ([]byte, error) {
	switch p.kind {
	case kindObject:
	case kindTimestamp:
		if p.direct {
			return appendTimestamp(b, protolayout.Get[int64](ptr, p.offA), int64(protolayout.Get[int32](ptr, p.offB)))
		}
		return p.appendReflect(b, p.lay.Message(ptr))
	default:
		return p.appendReflect(b, p.lay.Message(ptr))
	}
	b = append(b, '{')
	first := true
	var (
		rm  protoreflect.Message // ptr's message, for the fields left to protoreflect
		err error
	)
	for i := range p.fields {
		f := &p.fields[i]
		at := unsafe.Add(ptr, f.off)
		var v unsafe.Pointer // the value of an OpPtr… or OpMsg field; nil: unset
		if f.ptr {
			if v = *(*unsafe.Pointer)(at); v == nil {
				continue
			}
		} else if f.op == protolayout.OpReflect {
			if rm == nil {
				rm = p.lay.Message(ptr)
			}
			if b, err = appendReflectMember(b, rm, f, &first); err != nil {
				return nil, err
			}
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.name...)
		switch f.op {
		case protolayout.OpString:
			b, err = appendString(b, *(*string)(at))
		case protolayout.OpPtrString:
			b, err = appendString(b, *(*string)(v))
		case protolayout.OpBool:
			b = strconv.AppendBool(b, *(*bool)(at))
		case protolayout.OpPtrBool:
			b = strconv.AppendBool(b, *(*bool)(v))
		case protolayout.OpInt32:
			b = strconv.AppendInt(b, int64(*(*int32)(at)), 10)
		case protolayout.OpPtrInt32:
			b = strconv.AppendInt(b, int64(*(*int32)(v)), 10)
		case protolayout.OpEnum:
			b = f.appendEnum(b, *(*int32)(at))
		case protolayout.OpPtrEnum:
			b = f.appendEnum(b, *(*int32)(v))
		case protolayout.OpInt64:
			b = appendQuotedInt(b, *(*int64)(at))
		case protolayout.OpPtrInt64:
			b = appendQuotedInt(b, *(*int64)(v))
		case protolayout.OpUint32:
			b = strconv.AppendUint(b, uint64(*(*uint32)(at)), 10)
		case protolayout.OpPtrUint32:
			b = strconv.AppendUint(b, uint64(*(*uint32)(v)), 10)
		case protolayout.OpUint64:
			b = appendQuotedUint(b, *(*uint64)(at))
		case protolayout.OpPtrUint64:
			b = appendQuotedUint(b, *(*uint64)(v))
		case protolayout.OpFloat32:
			b = appendFloat(b, float64(*(*float32)(at)), 32)
		case protolayout.OpPtrFloat32:
			b = appendFloat(b, float64(*(*float32)(v)), 32)
		case protolayout.OpFloat64:
			b = appendFloat(b, *(*float64)(at), 64)
		case protolayout.OpPtrFloat64:
			b = appendFloat(b, *(*float64)(v), 64)
		case protolayout.OpStrings:
			b = append(b, '[')
			for j, s := range *(*[]string)(at) {
				if j > 0 {
					b = append(b, ',')
				}
				if b, err = appendString(b, s); err != nil {
					return nil, err
				}
			}
			b = append(b, ']')
		case protolayout.OpMsg:
			b, err = f.elem.appendAt(b, v)
		case protolayout.OpMsgs:
			b = append(b, '[')
			for j, e := range *(*[]unsafe.Pointer)(at) {
				if j > 0 {
					b = append(b, ',')
				}
				if e == nil { // a nil element reads as an empty message of its type, unset fields and all
					b, err = f.elem.appendReflect(b, f.mt.Zero())
				} else {
					b, err = f.elem.appendAt(b, e)
				}
				if err != nil {
					return nil, err
				}
			}
			b = append(b, ']')
		}
		if err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendEnum writes the name of an enum value, or its number when the enum does not name it.
func (f *field) appendEnum(b []byte, n int32) []byte {
	if name, ok := f.enum[protoreflect.EnumNumber(n)]; ok {
		return append(b, name...)
	}
	if f.enum == nil { // google.protobuf.NullValue
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func appendQuotedInt(b []byte, n int64) []byte {
	b = append(b, '"')
	return append(strconv.AppendInt(b, n, 10), '"')
}

func appendQuotedUint(b []byte, n uint64) []byte {
	b = append(b, '"')
	return append(strconv.AppendUint(b, n, 10), '"')
}

// appendReflect writes m through protoreflect.
func (p *plan) appendReflect(b []byte, m protoreflect.Message) ([]byte, error) {
	switch p.kind {
	case kindTimestamp:
		return appendTimestamp(b, m.Get(p.a).Int(), m.Get(p.b).Int())
	case kindStruct:
		return appendStruct(b, m.Get(p.a).Map())
	case kindValue:
		return appendValue(b, m, p.od)
	case kindList:
		return appendList(b, m.Get(p.a).List())
	case kindOther:
		return nil, errFallback
	}
	b = append(b, '{')
	first := true
	var err error
	for i := range p.fields {
		if b, err = appendReflectMember(b, m, &p.fields[i], &first); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendReflectMember writes the field f of m, read through protoreflect, as a member of the object
// being written (a comma first unless *first), or nothing when f has presence and is unset.
func appendReflectMember(b []byte, m protoreflect.Message, f *field, first *bool) ([]byte, error) {
	has := m.Has(f.fd)
	if f.optional && !has {
		return b, nil
	}
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, f.name...)
	return appendReflectField(b, m, f, has)
}

// appendReflectField writes the value of f in m (has: whether m has it) through protoreflect.
func appendReflectField(b []byte, m protoreflect.Message, f *field, has bool) ([]byte, error) {
	switch {
	case f.fd.IsList() && !has: // empty: no need for the list's reflection wrapper
		return append(b, '[', ']'), nil
	case f.fd.IsMap() && !has:
		return append(b, '{', '}'), nil
	case f.fd.IsList():
		return appendListField(b, m.Get(f.fd).List(), f)
	case f.fd.IsMap():
		return appendMapField(b, m.Get(f.fd).Map(), f)
	}
	return appendSingular(b, m.Get(f.fd), f.fd, f.elem)
}

func appendListField(b []byte, l protoreflect.List, f *field) ([]byte, error) {
	b = append(b, '[')
	var err error
	for i := 0; i < l.Len(); i++ {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendSingular(b, l.Get(i), f.fd, f.elem); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// mapEntry is a map entry, for sorting.
type mapEntry struct {
	k protoreflect.MapKey
	v protoreflect.Value
}

// sortedEntries returns the entries of m in protojson's order: false before true, numbers
// ascending, strings by UTF-8 bytes.
func sortedEntries(m protoreflect.Map) []mapEntry {
	es := make([]mapEntry, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		es = append(es, mapEntry{k, v})
		return true
	})
	slices.SortFunc(es, func(x, y mapEntry) int {
		switch xv := x.k.Interface().(type) {
		case bool:
			yv := y.k.Bool()
			switch {
			case xv == yv:
				return 0
			case !xv:
				return -1
			}
			return 1
		case int32, int64:
			return cmp.Compare(x.k.Int(), y.k.Int())
		case uint32, uint64:
			return cmp.Compare(x.k.Uint(), y.k.Uint())
		}
		return cmp.Compare(x.k.String(), y.k.String())
	})
	return es
}

func appendMapField(b []byte, m protoreflect.Map, f *field) ([]byte, error) {
	return appendObject(b, m, func(b []byte, v protoreflect.Value) ([]byte, error) {
		return appendSingular(b, v, f.fd.MapValue(), f.elem)
	})
}

// appendObject writes the entries of m as a JSON object, keys sorted as protojson sorts them, each
// value written by value.
func appendObject(b []byte, m protoreflect.Map, value func([]byte, protoreflect.Value) ([]byte, error)) ([]byte, error) {
	b = append(b, '{')
	var err error
	for i, e := range sortedEntries(m) {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendString(b, e.k.String()); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = value(b, e.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendSingular(b []byte, v protoreflect.Value, fd protoreflect.FieldDescriptor, elem *plan) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.StringKind:
		return appendString(b, v.String())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendInt(b, v.Int(), 10), '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendUint(b, v.Uint(), 10), '"'), nil
	case protoreflect.FloatKind:
		return appendFloat(b, v.Float(), 32), nil
	case protoreflect.DoubleKind:
		return appendFloat(b, v.Float(), 64), nil
	case protoreflect.BytesKind:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes())
		return append(b, '"'), nil
	case protoreflect.EnumKind:
		if fd.Enum().FullName() == "google.protobuf.NullValue" {
			return append(b, "null"...), nil
		}
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendString(b, string(ev.Name()))
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if elem == nil {
			return nil, errFallback
		}
		return elem.append(b, v.Message())
	}
	return nil, errFallback
}

// appendTimestamp writes a Timestamp as protojson does: RFC 3339 in UTC with 0, 3, 6 or 9 fractional
// digits; out of range, it leaves the message to protojson (which refuses it).
func appendTimestamp(b []byte, secs, nanos int64) ([]byte, error) {
	if secs < datetime.MinSeconds || secs > datetime.MaxSeconds || nanos < 0 || nanos > 999999999 {
		return nil, errFallback
	}
	b = datetime.Append(append(b, '"'), secs)
	switch {
	case nanos == 0:
	case nanos%1e6 == 0:
		b = appendFraction(b, nanos/1e6, 3)
	case nanos%1e3 == 0:
		b = appendFraction(b, nanos/1e3, 6)
	default:
		b = appendFraction(b, nanos, 9)
	}
	return append(b, 'Z', '"'), nil
}

// appendFraction appends "." and n in exactly digits digits.
func appendFraction(b []byte, n int64, digits int) []byte {
	b = append(b, '.')
	var buf [9]byte
	for i := digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, buf[:digits]...)
}

func appendStruct(b []byte, m protoreflect.Map) ([]byte, error) {
	return appendObject(b, m, func(b []byte, v protoreflect.Value) ([]byte, error) {
		vm := v.Message()
		return appendValue(b, vm, vm.Descriptor().Oneofs().ByName("kind"))
	})
}

func appendList(b []byte, l protoreflect.List) ([]byte, error) {
	b = append(b, '[')
	var err error
	for i := 0; i < l.Len(); i++ {
		if i > 0 {
			b = append(b, ',')
		}
		vm := l.Get(i).Message()
		if b, err = appendValue(b, vm, vm.Descriptor().Oneofs().ByName("kind")); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func appendValue(b []byte, m protoreflect.Message, od protoreflect.OneofDescriptor) ([]byte, error) {
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil, errFallback // protojson refuses a Value without a kind
	}
	v := m.Get(fd)
	switch fd.Name() {
	case "null_value":
		return append(b, "null"...), nil
	case "number_value":
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errFallback
		}
		return appendFloat(b, v.Float(), 64), nil
	case "string_value":
		return appendString(b, v.String())
	case "bool_value":
		return strconv.AppendBool(b, v.Bool()), nil
	case "struct_value":
		return appendStruct(b, v.Message().Get(v.Message().Descriptor().Fields().ByName("fields")).Map())
	case "list_value":
		return appendList(b, v.Message().Get(v.Message().Descriptor().Fields().ByName("values")).List())
	}
	return nil, errFallback
}

// appendFloat writes n as protojson does: NaN and infinities as strings, else the shortest
// representation, in exponent form below 1e-6 and from 1e21.
func appendFloat(b []byte, n float64, bitSize int) []byte {
	switch {
	case math.IsNaN(n):
		return append(b, `"NaN"`...)
	case math.IsInf(n, +1):
		return append(b, `"Infinity"`...)
	case math.IsInf(n, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(n); abs != 0 {
		if bitSize == 64 && (abs < 1e-6 || abs >= 1e21) || bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, n, format, -1, bitSize)
	if format == 'e' { // e-07 → e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// plain marks the bytes appendString copies as they are: ASCII other than control characters, '"' and
// '\\'.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string with protojson's escapes (\" \\ \b \f \n \r \t, other
// control characters as \u00XX in lower case, nothing else); invalid UTF-8 is left to protojson.
func appendString(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, errFallback
			}
			i += n
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\')
		switch c {
		case '"', '\\':
			b = append(b, c)
		case '\b':
			b = append(b, 'b')
		case '\f':
			b = append(b, 'f')
		case '\n':
			b = append(b, 'n')
		case '\r':
			b = append(b, 'r')
		case '\t':
			b = append(b, 't')
		default:
			b = append(b, 'u')
			b = append(b, "0000"[1+(bits.Len32(uint32(c))-1)/4:]...)
			b = strconv.AppendUint(b, uint64(c), 16)
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}
