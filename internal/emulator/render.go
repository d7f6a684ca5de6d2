package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/protolayout"
)

// This file writes generated qingcloud.iaas.v1 messages as the JSON objects QingCloud sends, straight
// into the answer's bytes: keys are the fields' wire names in sorted order (encoding/json's order of
// map keys, which answers always had), only populated fields are present, integers and floats are
// JSON numbers (protojson would quote 64-bit integers), timestamps are RFC 3339 UTC with whole
// seconds, enums are their names, and Struct, Value and ListValue are their JSON. What is known of a
// message type (wire names, sorted order, quoted keys, where protolayout says its fields live in the
// generated Go struct) is computed once per descriptor (msgPlan); the fields are read straight from
// the struct, protoreflect only reads what the layout leaves (maps, bytes, oneofs) and messages of
// other Go types (dynamicpb).
//
// An item of a Describe answer is an object: its stored message, merged with the keys that the store
// and the relation hooks set or remove by name.

// object is an answer object: the populated fields of msg (when valid) by their wire names, merged
// with the keys set or removed by name, which take the place of msg's field of the same name.
// appendJSON writes it with its keys sorted, byte for byte what encoding/json writes for the
// map[string]any of the same keys and values.
type object struct {
	msg protoreflect.Message
	// emptyLists writes unset repeated string fields of msg as [] (QingCloud sends an empty list of
	// ids as [] in the items it describes).
	emptyLists bool
	keys       []objectKey // set or removed keys, each once
}

// objectKey is a key of an object set to a value, or removed from it. Strings and times are held
// unboxed (an item has a dozen of them).
type objectKey struct {
	name string
	kind keyKind
	v    any    // keyValue
	s    string // keyString
	n    int64  // keyInt; keyTime: Unix seconds of a time that is not zero
}

// keyKind says what an objectKey holds.
type keyKind uint8

const (
	keyValue   keyKind = iota // v, an answer value
	keyString                 // s
	keyTime                   // n, written as a jtime
	keyInt                    // n
	keyRemoved                // nothing: the key is removed
)

// value returns the key's value as an answer value.
func (k *objectKey) value() any {
	switch k.kind {
	case keyString:
		return k.s
	case keyTime:
		return jtime(time.Unix(k.n, 0))
	case keyInt:
		return k.n
	}
	return k.v
}

// newObject returns an object of msg (nil: none) with room for n keys in the same allocation (an
// answer has an object per item and per NIC of an instance).
func newObject(msg protoreflect.Message, n int) *object {
	switch {
	case n <= 4:
		x := &struct {
			o object
			k [4]objectKey
		}{}
		x.o.msg, x.o.keys = msg, x.k[:0]
		return &x.o
	case n <= 8:
		x := &struct {
			o object
			k [8]objectKey
		}{}
		x.o.msg, x.o.keys = msg, x.k[:0]
		return &x.o
	case n <= 16:
		x := &struct {
			o object
			k [16]objectKey
		}{}
		x.o.msg, x.o.keys = msg, x.k[:0]
		return &x.o
	}
	return &object{msg: msg, keys: make([]objectKey, 0, n)}
}

// messageObject returns the object of a message's populated fields.
func messageObject(m proto.Message) *object { return &object{msg: m.ProtoReflect()} }

// find returns the place of the key name in o.keys, or -1.
func (o *object) find(name string) int {
	for i := range o.keys {
		if o.keys[i].name == name {
			return i
		}
	}
	return -1
}

// put sets or replaces the key k.name.
func (o *object) put(k objectKey) {
	if i := o.find(k.name); i >= 0 {
		o.keys[i] = k
	} else {
		o.keys = append(o.keys, k)
	}
}

// set sets the key name to v (an answer value appendJSON writes).
func (o *object) set(name string, v any) { o.put(objectKey{name: name, v: v}) }

// str sets the key name to the string v.
func (o *object) str(name, v string) { o.put(objectKey{name: name, kind: keyString, s: v}) }

// num sets the key name to the integer n.
func (o *object) num(name string, n int64) { o.put(objectKey{name: name, kind: keyInt, n: n}) }

// time sets the key name to t as a jtime (null when t is zero).
func (o *object) time(name string, t time.Time) {
	if t.IsZero() {
		o.set(name, nil)
		return
	}
	o.put(objectKey{name: name, kind: keyTime, n: t.Unix()})
}

// remove removes the key name.
func (o *object) remove(name string) { o.put(objectKey{name: name, kind: keyRemoved}) }

// get returns the value of the key name, as appendJSON writes it, and whether the object has it.
func (o *object) get(name string) (any, bool) {
	if i := o.find(name); i >= 0 {
		return o.keys[i].value(), o.keys[i].kind != keyRemoved
	}
	if o.msg == nil || !o.msg.IsValid() {
		return nil, false
	}
	fd := api.FieldByWireName(o.msg.Descriptor(), name)
	switch {
	case fd == nil:
		return nil, false
	case o.msg.Has(fd):
		return fieldValue{fd, o.msg.Get(fd)}, true
	case o.emptyLists && isStringList(fd):
		return []any{}, true
	}
	return nil, false
}

// MarshalJSON writes the object as appendJSON does (for an object inside a value that appendJSON
// hands to encoding/json).
func (o *object) MarshalJSON() ([]byte, error) { return appendObjectValue(nil, o) }

// fieldValue is the value of a populated field of a message, as an answer value.
type fieldValue struct {
	fd protoreflect.FieldDescriptor
	v  protoreflect.Value
}

// MarshalJSON writes the value as appendJSON does.
func (f fieldValue) MarshalJSON() ([]byte, error) { return appendField(nil, f.fd, f.v) }

// isStringList reports whether fd is a repeated string field (a list of ids).
func isStringList(fd protoreflect.FieldDescriptor) bool {
	return fd.IsList() && fd.Kind() == protoreflect.StringKind
}

// msgPlan is what writing the messages of one descriptor needs: its fields in the sorted order of
// their wire names, and where they live in the Go struct of the generated type (lay, nil for a
// descriptor without one linked in).
type msgPlan struct {
	fields []fieldPlan
	place  []int // the place in fields of each field, by its index in the descriptor
	lay    *protolayout.Layout
}

// fieldPlan is one field of a msgPlan.
type fieldPlan struct {
	fd         protoreflect.FieldDescriptor
	name       string // wire name
	key        []byte // the quoted name and a colon
	stringList bool
	op         protolayout.Op // how the field is read from the struct; OpReflect: through protoreflect
	off        uintptr
	special    special // what a message field is written as
}

// special is how the messages of a field are written.
type special uint8

const (
	specialNone special = iota // an object of its fields
	specialTime                // google.protobuf.Timestamp: a jtime
	specialJSON                // Struct, Value, ListValue: their JSON
)

var plans sync.Map // protoreflect.MessageDescriptor -> *msgPlan

// planOf returns the plan of md, made once.
func planOf(md protoreflect.MessageDescriptor) *msgPlan {
	if p, ok := plans.Load(md); ok {
		return p.(*msgPlan)
	}
	fields := md.Fields()
	p := &msgPlan{fields: make([]fieldPlan, fields.Len()), lay: protolayout.Of(md)}
	for i := range p.fields {
		fd := fields.Get(i)
		name := api.WireName(fd)
		f := fieldPlan{fd: fd, name: name, key: append(appendString(nil, name), ':'), stringList: isStringList(fd)}
		if p.lay != nil {
			f.op, f.off = p.lay.Fields[i].Op, p.lay.Fields[i].Off
		}
		if fd.Message() != nil {
			switch fd.Message().FullName() {
			case "google.protobuf.Timestamp":
				f.special = specialTime
			case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
				f.special = specialJSON
			}
		}
		p.fields[i] = f
	}
	slices.SortFunc(p.fields, func(x, y fieldPlan) int { return strings.Compare(x.name, y.name) })
	p.place = make([]int, len(p.fields))
	for i, f := range p.fields {
		p.place[f.fd.Index()] = i
	}
	actual, _ := plans.LoadOrStore(md, p)
	return actual.(*msgPlan)
}

// fieldValues collects the values of a message's populated fields by their place in a plan; its
// visit method value is made once, so that Range does not allocate a closure per message.
type fieldValues struct {
	place []int
	vals  []protoreflect.Value
	visit func(protoreflect.FieldDescriptor, protoreflect.Value) bool
}

// valuesPool holds the fieldValues of messages read through protoreflect.
var valuesPool = sync.Pool{New: func() any {
	fv := &fieldValues{}
	fv.visit = func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !fd.IsExtension() { // the messages of answers have none
			fv.vals[fv.place[fd.Index()]] = v
		}
		return true
	}
	return fv
}}

// msgReader reads the fields of one message, by their place in its plan: straight from its Go
// struct p when its type has a layout, or from the values protoreflect's Range gave (vals).
type msgReader struct {
	plan *msgPlan
	p    unsafe.Pointer
	msg  protoreflect.Message // nil until a field the layout leaves is read
	vals []protoreflect.Value
}

// message returns the message read.
func (r *msgReader) message() protoreflect.Message {
	if r.msg == nil {
		r.msg = r.plan.lay.Message(r.p)
	}
	return r.msg
}

// has reports whether the field at place i is populated, as protoreflect's Has says.
func (r *msgReader) has(i int) bool {
	if r.p == nil {
		return r.vals[i].IsValid()
	}
	f, p := &r.plan.fields[i], r.p
	switch f.op {
	case protolayout.OpString:
		return protolayout.Get[string](p, f.off) != ""
	case protolayout.OpPtrString, protolayout.OpPtrBool, protolayout.OpPtrInt32, protolayout.OpPtrEnum,
		protolayout.OpPtrInt64, protolayout.OpPtrUint32, protolayout.OpPtrUint64, protolayout.OpPtrFloat32,
		protolayout.OpPtrFloat64, protolayout.OpMsg:
		return protolayout.Get[unsafe.Pointer](p, f.off) != nil
	case protolayout.OpBool:
		return protolayout.Get[bool](p, f.off)
	case protolayout.OpInt32, protolayout.OpEnum:
		return protolayout.Get[int32](p, f.off) != 0
	case protolayout.OpInt64:
		return protolayout.Get[int64](p, f.off) != 0
	case protolayout.OpUint32:
		return protolayout.Get[uint32](p, f.off) != 0
	case protolayout.OpUint64:
		return protolayout.Get[uint64](p, f.off) != 0
	case protolayout.OpFloat32:
		return math.Float32bits(protolayout.Get[float32](p, f.off)) != 0
	case protolayout.OpFloat64:
		return math.Float64bits(protolayout.Get[float64](p, f.off)) != 0
	case protolayout.OpStrings:
		return len(protolayout.Get[[]string](p, f.off)) > 0
	case protolayout.OpMsgs:
		return len(protolayout.Get[[]unsafe.Pointer](p, f.off)) > 0
	}
	return r.message().Has(f.fd)
}

// write appends the JSON of the populated field at place i.
func (r *msgReader) write(b []byte, i int) ([]byte, error) {
	if r.p == nil {
		return appendField(b, r.plan.fields[i].fd, r.vals[i])
	}
	f, p := &r.plan.fields[i], r.p
	switch f.op {
	case protolayout.OpString:
		return appendString(b, protolayout.Get[string](p, f.off)), nil
	case protolayout.OpPtrString:
		return appendString(b, *protolayout.Get[*string](p, f.off)), nil
	case protolayout.OpBool:
		return strconv.AppendBool(b, protolayout.Get[bool](p, f.off)), nil
	case protolayout.OpPtrBool:
		return strconv.AppendBool(b, *protolayout.Get[*bool](p, f.off)), nil
	case protolayout.OpInt32:
		return strconv.AppendInt(b, int64(protolayout.Get[int32](p, f.off)), 10), nil
	case protolayout.OpPtrInt32:
		return strconv.AppendInt(b, int64(*protolayout.Get[*int32](p, f.off)), 10), nil
	case protolayout.OpEnum:
		return appendValue(b, f.fd, protoreflect.ValueOfEnum(protoreflect.EnumNumber(protolayout.Get[int32](p, f.off))))
	case protolayout.OpPtrEnum:
		return appendValue(b, f.fd, protoreflect.ValueOfEnum(protoreflect.EnumNumber(*protolayout.Get[*int32](p, f.off))))
	case protolayout.OpInt64:
		return strconv.AppendInt(b, protolayout.Get[int64](p, f.off), 10), nil
	case protolayout.OpPtrInt64:
		return strconv.AppendInt(b, *protolayout.Get[*int64](p, f.off), 10), nil
	case protolayout.OpUint32:
		return strconv.AppendUint(b, uint64(protolayout.Get[uint32](p, f.off)), 10), nil
	case protolayout.OpPtrUint32:
		return strconv.AppendUint(b, uint64(*protolayout.Get[*uint32](p, f.off)), 10), nil
	case protolayout.OpUint64:
		return strconv.AppendUint(b, protolayout.Get[uint64](p, f.off), 10), nil
	case protolayout.OpPtrUint64:
		return strconv.AppendUint(b, *protolayout.Get[*uint64](p, f.off), 10), nil
	case protolayout.OpFloat32:
		return appendJSON(b, protolayout.Get[float32](p, f.off))
	case protolayout.OpPtrFloat32:
		return appendJSON(b, *protolayout.Get[*float32](p, f.off))
	case protolayout.OpFloat64:
		return appendJSON(b, protolayout.Get[float64](p, f.off))
	case protolayout.OpPtrFloat64:
		return appendJSON(b, *protolayout.Get[*float64](p, f.off))
	case protolayout.OpStrings:
		b = append(b, '[')
		for i, s := range protolayout.Get[[]string](p, f.off) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case protolayout.OpMsg:
		return appendStruct(b, f, protolayout.Get[unsafe.Pointer](p, f.off))
	case protolayout.OpMsgs:
		var err error
		b = append(b, '[')
		for i, m := range protolayout.Get[[]unsafe.Pointer](p, f.off) {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendStruct(b, f, m); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	return appendField(b, f.fd, r.message().Get(f.fd))
}

// appendStruct appends the JSON of the message at p (nil: one without fields) of the message field
// f.
func appendStruct(b []byte, f *fieldPlan, p unsafe.Pointer) ([]byte, error) {
	sub := planOf(f.fd.Message())
	switch {
	case p == nil && f.special == specialNone:
		return append(b, '{', '}'), nil
	case p == nil: // as protoreflect reads a nil *Timestamp (the Unix epoch) or *Struct
		return appendValue(b, f.fd, protoreflect.ValueOfMessage(sub.lay.Message(p)))
	case f.special == specialTime:
		ts := (*timestamppb.Timestamp)(p)
		return appendTime(b, time.Unix(ts.GetSeconds(), int64(ts.GetNanos())).UTC()), nil
	case f.special == specialJSON:
		return appendValue(b, f.fd, protoreflect.ValueOfMessage(sub.lay.Message(p)))
	}
	return appendMerged(b, &object{}, nil, &msgReader{plan: sub, p: p})
}

// appendObjectValue appends the JSON object of o.
func appendObjectValue(b []byte, o *object) ([]byte, error) {
	// The keys' places in o.keys in the order of their names (insertion sort: a dozen keys, mostly
	// in order already).
	var small [32]uint8
	var order []uint8
	if len(o.keys) <= len(small) {
		order = small[:len(o.keys)]
	} else {
		order = make([]uint8, len(o.keys))
		if len(o.keys) > 255 {
			return nil, fmt.Errorf("emulator: an object of %d keys", len(o.keys))
		}
	}
	for i := range order {
		order[i] = uint8(i)
		for j := i; j > 0 && o.keys[order[j]].name < o.keys[order[j-1]].name; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	msg := o.msg
	if msg == nil || !msg.IsValid() {
		return appendMerged(b, o, order, nil)
	}
	rd := &msgReader{plan: planOf(msg.Descriptor()), msg: msg}
	if rd.plan.lay != nil {
		rd.p, _ = rd.plan.lay.Pointer(msg)
	}
	if rd.p == nil { // a message of another Go type (dynamicpb)
		fv := valuesPool.Get().(*fieldValues)
		defer func() {
			clear(fv.vals)
			fv.place = nil
			valuesPool.Put(fv)
		}()
		fv.place, fv.vals = rd.plan.place, slices.Grow(fv.vals[:0], len(rd.plan.fields))[:len(rd.plan.fields)]
		msg.Range(fv.visit)
		rd.vals = fv.vals
	}
	return appendMerged(b, o, order, rd)
}

// appendMerged appends the JSON object of the fields rd reads (none when rd is nil) merged with the
// keys of o, in order.
func appendMerged(b []byte, o *object, order []uint8, rd *msgReader) ([]byte, error) {
	var fields []fieldPlan
	if rd != nil {
		fields = rd.plan.fields
	}
	b = append(b, '{')
	first := true
	var err error
	i, j := 0, 0
	for i < len(fields) || j < len(order) {
		if j < len(order) && (i == len(fields) || o.keys[order[j]].name <= fields[i].name) {
			k := &o.keys[order[j]]
			j++
			if i < len(fields) && fields[i].name == k.name {
				i++ // the key takes the field's place
			}
			if k.kind == keyRemoved {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k.name)
			b = append(b, ':')
			switch k.kind {
			case keyString:
				b = appendString(b, k.s)
			case keyTime:
				b = appendTime(b, time.Unix(k.n, 0))
			case keyInt:
				b = strconv.AppendInt(b, k.n, 10)
			default:
				if b, err = appendJSON(b, k.v); err != nil {
					return nil, err
				}
			}
			continue
		}
		f := &fields[i]
		i++
		switch {
		case rd.has(i - 1):
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, f.key...)
			if b, err = rd.write(b, i-1); err != nil {
				return nil, err
			}
		case o.emptyLists && f.stringList:
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, f.key...)
			b = append(b, '[', ']')
		}
	}
	return append(b, '}'), nil
}

// appendMessage appends the JSON object of m's populated fields.
func appendMessage(b []byte, m protoreflect.Message) ([]byte, error) {
	return appendObjectValue(b, &object{msg: m})
}

// appendField appends the JSON of the value v of field fd: an array for a list, an object with
// sorted keys for a map.
func appendField(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) ([]byte, error) {
	var err error
	switch {
	case fd.IsList():
		l := v.List()
		b = append(b, '[')
		for i := 0; i < l.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, fd, l.Get(i)); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case fd.IsMap():
		m := v.Map()
		keys := make([]protoreflect.MapKey, 0, m.Len())
		m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k)
			return true
		})
		slices.SortFunc(keys, func(x, y protoreflect.MapKey) int { return strings.Compare(x.String(), y.String()) })
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k.String())
			b = append(b, ':')
			if b, err = appendValue(b, fd.MapValue(), m.Get(k)); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return appendValue(b, fd, v)
}

// appendValue appends the JSON of one value of field fd (an element, for a list or map field).
func appendValue(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return appendString(b, v.String()), nil
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendString(b, string(ev.Name())), nil
		}
		return strconv.AppendInt(b, int64(v.Enum()), 10), nil
	case protoreflect.BytesKind:
		if v.Bytes() == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes())
		return append(b, '"'), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		switch m.Descriptor().FullName() {
		case "google.protobuf.Timestamp":
			return appendTime(b, timestampOf(m)), nil
		case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
			raw, err := protojson.Marshal(m.Interface())
			if err != nil {
				return append(b, "null"...), nil
			}
			return appendJSON(b, json.RawMessage(raw))
		}
		return appendMessage(b, m)
	}
	return appendJSON(b, v.Interface()) // float32, float64: encoding/json's format and errors
}

// timestampOf returns the time of a google.protobuf.Timestamp message, as its AsTime does.
func timestampOf(m protoreflect.Message) time.Time {
	fields := m.Descriptor().Fields()
	secs, nanos := m.Get(fields.ByNumber(1)).Int(), m.Get(fields.ByNumber(2)).Int()
	return time.Unix(secs, nanos).UTC()
}
