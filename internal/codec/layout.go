package codec

import (
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// layout says where the fields of a generated message type live in its Go struct, so that Decode can
// write the common ones (scalars, strings, messages and lists of strings or messages) directly, as
// code using the generated type does, instead of through protoreflect's setters, which box every
// value and allocate a pointer and a list view each time. Fields it does not cover (maps, bytes,
// oneofs, other lists) and messages of other Go types (dynamicpb) go through protoreflect.
type layout struct {
	typ    reflect.Type // the *T of the generated type
	fields []fastField  // by fd.Index()
}

// fastOp is how a field is written directly; opReflect means through protoreflect.
type fastOp uint8

const (
	opReflect fastOp = iota
	opString
	opPtrString
	opBool
	opPtrBool
	opInt32
	opPtrInt32
	opEnum
	opPtrEnum
	opInt64
	opPtrInt64
	opUint32
	opPtrUint32
	opUint64
	opPtrUint64
	opFloat32
	opPtrFloat32
	opFloat64
	opPtrFloat64
	opStrings // []string
	opMsg     // *M
	opMsgs    // []*M
)

// fastField is the direct write of one field.
type fastField struct {
	op  fastOp
	off uintptr
	// mt makes the messages of opMsg and opMsgs.
	mt protoreflect.MessageType
}

// buildLayout returns the layout of md's generated Go type, or nil when md has none linked in.
func buildLayout(md protoreflect.MessageDescriptor) *layout {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil || mt.Descriptor() != md {
		return nil
	}
	t := reflect.TypeOf(mt.Zero().Interface())
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	lay := &layout{typ: t, fields: make([]fastField, md.Fields().Len())}
	st := t.Elem()
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		// protoc-gen-go tags each field `protobuf:"<wire type>,<number>,..."`; a oneof's members have
		// no field of their own (the oneof's interface field is tagged protobuf_oneof).
		parts := strings.Split(sf.Tag.Get("protobuf"), ",")
		if len(parts) < 2 {
			continue
		}
		num, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		fd := md.Fields().ByNumber(protoreflect.FieldNumber(num))
		if fd == nil || (fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic()) {
			continue
		}
		ff := fastField{op: opFor(fd, sf.Type), off: sf.Offset}
		if ff.op == opMsg || ff.op == opMsgs {
			ptrType := sf.Type
			if ff.op == opMsgs {
				ptrType = sf.Type.Elem()
			}
			sub, err := protoregistry.GlobalTypes.FindMessageByName(fd.Message().FullName())
			if err != nil || sub.Descriptor() != fd.Message() || reflect.TypeOf(sub.Zero().Interface()) != ptrType {
				continue
			}
			ff.mt = sub
		}
		lay.fields[fd.Index()] = ff
	}
	return lay
}

// opFor chooses the direct write of a field of Go type t.
func opFor(fd protoreflect.FieldDescriptor, t reflect.Type) fastOp {
	switch {
	case fd.IsMap():
		return opReflect
	case fd.IsList():
		switch {
		case fd.Kind() == protoreflect.StringKind && t == reflect.TypeFor[[]string]():
			return opStrings
		case isMessage(fd) && t.Kind() == reflect.Slice && isStructPtr(t.Elem()):
			return opMsgs
		}
		return opReflect
	case isMessage(fd):
		if isStructPtr(t) {
			return opMsg
		}
		return opReflect
	}
	ptr := t.Kind() == reflect.Pointer
	if ptr {
		t = t.Elem()
	}
	pick := func(want reflect.Kind, plain, pointer fastOp) fastOp {
		switch {
		case t.Kind() != want:
			return opReflect
		case ptr:
			return pointer
		}
		return plain
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return pick(reflect.String, opString, opPtrString)
	case protoreflect.BoolKind:
		return pick(reflect.Bool, opBool, opPtrBool)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return pick(reflect.Int32, opInt32, opPtrInt32)
	case protoreflect.EnumKind:
		return pick(reflect.Int32, opEnum, opPtrEnum)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return pick(reflect.Int64, opInt64, opPtrInt64)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return pick(reflect.Uint32, opUint32, opPtrUint32)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return pick(reflect.Uint64, opUint64, opPtrUint64)
	case protoreflect.FloatKind:
		return pick(reflect.Float32, opFloat32, opPtrFloat32)
	case protoreflect.DoubleKind:
		return pick(reflect.Float64, opFloat64, opPtrFloat64)
	}
	return opReflect
}

func isStructPtr(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct
}

// structOf returns the layout and the struct address of m when p's layout covers m's Go type.
func (p *msgPlan) structOf(m protoreflect.Message) (*layout, unsafe.Pointer) {
	if p == nil || p.lay == nil || m == nil {
		return nil, nil
	}
	x := m.Interface()
	if reflect.TypeOf(x) != p.lay.typ {
		return nil, nil
	}
	return p.lay, reflect.ValueOf(x).UnsafePointer()
}

// addressOf returns the address of the struct of a generated message.
func addressOf(m protoreflect.Message) unsafe.Pointer {
	return reflect.ValueOf(m.Interface()).UnsafePointer()
}

// store writes a converted scalar to a field at p.
func store(op fastOp, p unsafe.Pointer, v protoreflect.Value) {
	switch op {
	case opString:
		*(*string)(p) = v.String()
	case opPtrString:
		x := v.String()
		*(**string)(p) = &x
	case opBool:
		*(*bool)(p) = v.Bool()
	case opPtrBool:
		x := v.Bool()
		*(**bool)(p) = &x
	case opInt32:
		*(*int32)(p) = int32(v.Int())
	case opPtrInt32:
		x := int32(v.Int())
		*(**int32)(p) = &x
	case opEnum:
		*(*int32)(p) = int32(v.Enum())
	case opPtrEnum:
		x := int32(v.Enum())
		*(**int32)(p) = &x
	case opInt64:
		*(*int64)(p) = v.Int()
	case opPtrInt64:
		x := v.Int()
		*(**int64)(p) = &x
	case opUint32:
		*(*uint32)(p) = uint32(v.Uint())
	case opPtrUint32:
		x := uint32(v.Uint())
		*(**uint32)(p) = &x
	case opUint64:
		*(*uint64)(p) = v.Uint()
	case opPtrUint64:
		x := v.Uint()
		*(**uint64)(p) = &x
	case opFloat32:
		*(*float32)(p) = float32(v.Float())
	case opPtrFloat32:
		x := float32(v.Float())
		*(**float32)(p) = &x
	case opFloat64:
		*(*float64)(p) = v.Float()
	case opPtrFloat64:
		x := v.Float()
		*(**float64)(p) = &x
	}
}
