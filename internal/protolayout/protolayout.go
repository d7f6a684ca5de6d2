// Package protolayout says where the fields of generated message types live in their Go structs, so
// that code writing or reading many messages of a known type (the codec's decoder, the REST encoder)
// can access the common fields directly, as code using the generated type does, instead of through
// protoreflect's getters and setters, which box every value and allocate a pointer and a list view
// each time. Fields a layout does not cover (maps, bytes, oneofs, other lists) and messages of other
// Go types (dynamicpb) are left to protoreflect.
package protolayout

import (
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Layout says where the fields of a generated message type live in its Go struct: the common ones
// (scalars, strings, messages and lists of strings or messages) have an Op other than OpReflect.
type Layout struct {
	Type   reflect.Type // the *T of the generated type
	Fields []Field      // by fd.Index()
}

// Op is how a field is accessed directly; OpReflect means through protoreflect. OpPtr… fields are
// the pointers of proto3 optional scalars (nil when unset).
type Op uint8

const (
	OpReflect Op = iota
	OpString
	OpPtrString
	OpBool
	OpPtrBool
	OpInt32
	OpPtrInt32
	OpEnum
	OpPtrEnum
	OpInt64
	OpPtrInt64
	OpUint32
	OpPtrUint32
	OpUint64
	OpPtrUint64
	OpFloat32
	OpPtrFloat32
	OpFloat64
	OpPtrFloat64
	OpStrings // []string
	OpMsg     // *M
	OpMsgs    // []*M
)

// Field is the direct access to one field.
type Field struct {
	Op  Op
	Off uintptr // the field's offset in the struct
	// MT makes the messages of OpMsg and OpMsgs.
	MT protoreflect.MessageType
}

// Of returns the layout of md's generated Go type, or nil when md has none linked in.
func Of(md protoreflect.MessageDescriptor) *Layout {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil || mt.Descriptor() != md {
		return nil
	}
	t := reflect.TypeOf(mt.Zero().Interface())
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	lay := &Layout{Type: t, Fields: make([]Field, md.Fields().Len())}
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
		ff := Field{Op: opFor(fd, sf.Type), Off: sf.Offset}
		if ff.Op == OpMsg || ff.Op == OpMsgs {
			ptrType := sf.Type
			if ff.Op == OpMsgs {
				ptrType = sf.Type.Elem()
			}
			sub, err := protoregistry.GlobalTypes.FindMessageByName(fd.Message().FullName())
			if err != nil || sub.Descriptor() != fd.Message() || reflect.TypeOf(sub.Zero().Interface()) != ptrType {
				continue
			}
			ff.MT = sub
		}
		lay.Fields[fd.Index()] = ff
	}
	return lay
}

// opFor chooses the direct write of a field of Go type t.
func opFor(fd protoreflect.FieldDescriptor, t reflect.Type) Op {
	switch {
	case fd.IsMap():
		return OpReflect
	case fd.IsList():
		switch {
		case fd.Kind() == protoreflect.StringKind && t == reflect.TypeFor[[]string]():
			return OpStrings
		case isMessage(fd) && t.Kind() == reflect.Slice && isStructPtr(t.Elem()):
			return OpMsgs
		}
		return OpReflect
	case isMessage(fd):
		if isStructPtr(t) {
			return OpMsg
		}
		return OpReflect
	}
	ptr := t.Kind() == reflect.Pointer
	if ptr {
		t = t.Elem()
	}
	pick := func(want reflect.Kind, plain, pointer Op) Op {
		switch {
		case t.Kind() != want:
			return OpReflect
		case ptr:
			return pointer
		}
		return plain
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return pick(reflect.String, OpString, OpPtrString)
	case protoreflect.BoolKind:
		return pick(reflect.Bool, OpBool, OpPtrBool)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return pick(reflect.Int32, OpInt32, OpPtrInt32)
	case protoreflect.EnumKind:
		return pick(reflect.Int32, OpEnum, OpPtrEnum)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return pick(reflect.Int64, OpInt64, OpPtrInt64)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return pick(reflect.Uint32, OpUint32, OpPtrUint32)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return pick(reflect.Uint64, OpUint64, OpPtrUint64)
	case protoreflect.FloatKind:
		return pick(reflect.Float32, OpFloat32, OpPtrFloat32)
	case protoreflect.DoubleKind:
		return pick(reflect.Float64, OpFloat64, OpPtrFloat64)
	}
	return OpReflect
}

func isStructPtr(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct
}

// Address returns the address of the struct of a generated message.
func Address(m protoreflect.Message) unsafe.Pointer {
	return reflect.ValueOf(m.Interface()).UnsafePointer()
}

// Pointer returns the address of m's struct when m is a message of the layout's Go type (not, say, a
// dynamicpb message of the same descriptor, nor a nil *T), for its fields to be read with Get.
func (l *Layout) Pointer(m protoreflect.Message) (unsafe.Pointer, bool) {
	x := m.Interface()
	if reflect.TypeOf(x) != l.Type {
		return nil, false
	}
	p := reflect.ValueOf(x).UnsafePointer()
	return p, p != nil
}

// Message returns the message whose struct is at p (a non-nil address of a struct of the layout's
// type), for the fields the layout leaves to protoreflect.
func (l *Layout) Message(p unsafe.Pointer) protoreflect.Message {
	return reflect.NewAt(l.Type.Elem(), p).Interface().(protoreflect.ProtoMessage).ProtoReflect()
}

// Get reads the field at offset off of the struct at p as a T, which must have the memory layout of
// the field's Go type as its Op says: string, *string, bool, *bool, int32 (OpInt32, OpEnum), *int32
// (OpPtrInt32, OpPtrEnum), int64, …, []string (OpStrings), unsafe.Pointer (OpMsg: the *M, nil when
// unset) or []unsafe.Pointer (OpMsgs: the []*M).
func Get[T any](p unsafe.Pointer, off uintptr) T {
	return *(*T)(unsafe.Add(p, off))
}

// Slab hands out the values the OpPtr… fields point to from shared chunks, so that a decoder
// filling many messages makes one allocation per chunk of values instead of one per field. Each field
// gets a value of its own (setting one never changes another); a chunk stays alive while any field
// points into it. The zero Slab is ready to use; a Slab is not safe for concurrent use.
type Slab struct {
	text     chunk[byte] // the bytes of String's strings
	strings  chunk[string]
	bools    chunk[bool]
	int32s   chunk[int32]
	int64s   chunk[int64]
	uint32s  chunk[uint32]
	uint64s  chunk[uint64]
	float32s chunk[float32]
	float64s chunk[float64]
	pointers chunk[unsafe.Pointer] // the elements of Pointers' lists
	// structs holds a chunk of message structs for each layout New was asked for (a decode meets
	// few types: a short list searched in order).
	structs []structChunk
}

// structChunk is the last chunk of structs of one layout and how much of it is used. (Handing out a
// value only changes integers: a chunk's pointer is written once, when it is made, so that the write
// barrier is not paid for every value.)
type structChunk struct {
	lay  *Layout
	elem reflect.Type
	size uintptr
	base unsafe.Pointer // the chunk
	used int
	n    int // structs in the chunk
	next int // structs in the next chunk
}

// maxStructBytes bounds a chunk of structs: a message kept after the others are dropped keeps at most
// this much memory of its siblings alive (and what they point to).
const maxStructBytes = 4096

// chunk is the last chunk of Ts, how much of it is used, and the size of the next one.
type chunk[T any] struct {
	buf  []T
	used int
	next int
}

// Chunks grow from minChunk values to maxChunk, so that a small message takes little memory and a
// large page few allocations.
const (
	minChunk = 4
	maxChunk = 128
)

func (c *chunk[T]) new(v T) *T {
	if c.used == len(c.buf) {
		n := max(c.next, minChunk)
		c.next = min(2*n, maxChunk)
		c.buf, c.used = make([]T, n), 0
	}
	p := &c.buf[c.used]
	*p = v
	c.used++
	return p
}

// String copies strings of up to maxSlabString bytes into chunks of minText to maxText bytes; longer
// ones get memory of their own.
const (
	maxSlabString = 256
	minText       = 64
	maxText       = 4096
)

// String returns a string with the bytes of b. Short strings share chunks of memory (a chunk stays alive
// while any of its strings does; it is never written again once handed out).
func (s *Slab) String(b []byte) string {
	n := len(b)
	switch {
	case n == 0:
		return ""
	case n > maxSlabString:
		return string(b)
	}
	c := &s.text
	if len(c.buf)-c.used < n {
		size := max(c.next, minText, n)
		c.next = min(2*size, maxText)
		c.buf, c.used = make([]byte, size), 0
	}
	copy(c.buf[c.used:], b)
	out := unsafe.String(&c.buf[c.used], n)
	c.used += n
	return out
}

// New returns the address of a new zero struct of l's Go type, to be filled and used as a *T (its
// message state is set on first use, as for a composite literal). Structs come from chunks of up to
// 4 KiB shared by the messages of one type, so that a decoder making many messages makes one
// allocation per chunk; each struct is distinct.
func (s *Slab) New(l *Layout) unsafe.Pointer {
	var c *structChunk
	for i := range s.structs {
		if s.structs[i].lay == l {
			c = &s.structs[i]
			break
		}
	}
	if c == nil {
		elem := l.Type.Elem()
		s.structs = append(s.structs, structChunk{lay: l, elem: elem, size: elem.Size(), next: 1})
		c = &s.structs[len(s.structs)-1]
	}
	if c.used == c.n {
		n := c.next
		c.next = max(1, min(2*n, maxStructBytes/int(max(c.size, 1))))
		if n == 1 {
			c.base = reflect.New(c.elem).UnsafePointer()
		} else {
			c.base = reflect.New(reflect.ArrayOf(n, c.elem)).UnsafePointer()
		}
		c.used, c.n = 0, n
	}
	p := unsafe.Add(c.base, uintptr(c.used)*c.size)
	c.used++
	return p
}

// Strings returns a []string of length and capacity n (appending to it copies it) from shared chunks
// like the values of OpPtrString fields; lists longer than maxChunk get memory of their own.
func (s *Slab) Strings(n int) []string { return s.strings.list(n) }

// Pointers returns a list of n pointers for an OpMsgs field (the []*M of its messages), of length and
// capacity n, from shared chunks like Strings. A list kept after the others are dropped keeps its
// chunk alive and the messages the chunk's other lists point to.
func (s *Slab) Pointers(n int) []unsafe.Pointer { return s.pointers.list(n) }

// list returns n consecutive zero values of length and capacity n.
func (c *chunk[T]) list(n int) []T {
	switch {
	case n == 0:
		return nil
	case n > maxChunk:
		return make([]T, n)
	case len(c.buf)-c.used < n:
		size := max(c.next, minChunk, n)
		c.next = min(2*size, maxChunk)
		c.buf, c.used = make([]T, size), 0
	}
	out := c.buf[c.used : c.used+n : c.used+n]
	c.used += n
	return out
}

// Store writes a converted scalar to a field at p, taking the values of pointer fields from s.
func (s *Slab) Store(op Op, p unsafe.Pointer, v protoreflect.Value) {
	switch op {
	case OpString:
		*(*string)(p) = v.String()
	case OpPtrString:
		*(**string)(p) = s.strings.new(v.String())
	case OpBool:
		*(*bool)(p) = v.Bool()
	case OpPtrBool:
		*(**bool)(p) = s.bools.new(v.Bool())
	case OpInt32:
		*(*int32)(p) = int32(v.Int())
	case OpPtrInt32:
		*(**int32)(p) = s.int32s.new(int32(v.Int()))
	case OpEnum:
		*(*int32)(p) = int32(v.Enum())
	case OpPtrEnum:
		*(**int32)(p) = s.int32s.new(int32(v.Enum()))
	case OpInt64:
		*(*int64)(p) = v.Int()
	case OpPtrInt64:
		*(**int64)(p) = s.int64s.new(v.Int())
	case OpUint32:
		*(*uint32)(p) = uint32(v.Uint())
	case OpPtrUint32:
		*(**uint32)(p) = s.uint32s.new(uint32(v.Uint()))
	case OpUint64:
		*(*uint64)(p) = v.Uint()
	case OpPtrUint64:
		*(**uint64)(p) = s.uint64s.new(v.Uint())
	case OpFloat32:
		*(*float32)(p) = float32(v.Float())
	case OpPtrFloat32:
		*(**float32)(p) = s.float32s.new(float32(v.Float()))
	case OpFloat64:
		*(*float64)(p) = v.Float()
	case OpPtrFloat64:
		*(**float64)(p) = s.float64s.new(v.Float())
	}
}

func isMessage(fd protoreflect.FieldDescriptor) bool {
	return fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
}
