package protolayout

import (
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

func TestOf(t *testing.T) {
	tests := []struct {
		msg   protoreflect.ProtoMessage
		field protoreflect.Name
		op    Op
		goFld string // the Go field it is at
	}{
		{&iaasv1.Zone{}, "zone_id", OpPtrString, "ZoneId"},
		{&iaasv1.DescribeZonesResponse{}, "zone_set", OpMsgs, "ZoneSet"},
		{&iaasv1.DescribeZonesResponse{}, "total_count", OpPtrInt32, "TotalCount"},
		{&iaasv1.Instance{}, "create_time", OpMsg, "CreateTime"},
		{&iaasv1.DescribeZonesRequest{}, "zones", OpStrings, "Zones"},
		{&structpb.Struct{}, "fields", OpReflect, ""},      // a map
		{&structpb.Value{}, "string_value", OpReflect, ""}, // a oneof member
	}
	for _, tt := range tests {
		md := tt.msg.ProtoReflect().Descriptor()
		lay := Of(md)
		if lay == nil {
			t.Fatalf("Of(%s) = nil", md.FullName())
		}
		if lay.Type != reflect.TypeOf(tt.msg) {
			t.Errorf("Of(%s).Type = %v", md.FullName(), lay.Type)
		}
		fd := md.Fields().ByName(tt.field)
		f := lay.Fields[fd.Index()]
		if f.Op != tt.op {
			t.Errorf("%s.%s: op %d, want %d", md.FullName(), tt.field, f.Op, tt.op)
		}
		if tt.goFld != "" {
			sf, _ := reflect.TypeOf(tt.msg).Elem().FieldByName(tt.goFld)
			if f.Off != sf.Offset {
				t.Errorf("%s.%s: offset %d, want %d", md.FullName(), tt.field, f.Off, sf.Offset)
			}
		}
		if (f.Op == OpMsg || f.Op == OpMsgs) && f.MT.Descriptor() != fd.Message() {
			t.Errorf("%s.%s: message type %s", md.FullName(), tt.field, f.MT.Descriptor().FullName())
		}
	}
	// A message type without generated Go code has no layout.
	file, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("dyn.proto"), Package: proto.String("dyn"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M"), Field: []*descriptorpb.FieldDescriptorProto{{
			Name: proto.String("s"), Number: proto.Int32(1),
			Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		}}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lay := Of(file.Messages().Get(0)); lay != nil {
		t.Errorf("Of(a dynamic message type) = %+v, want nil", lay)
	}
}

func TestSlabStore(t *testing.T) {
	var s Slab
	var (
		str      string
		pstr     *string
		b        bool
		pb       *bool
		i32, e   int32
		pi32, pe *int32
		i64      int64
		pi64     *int64
		u32      uint32
		pu32     *uint32
		u64      uint64
		pu64     *uint64
		f32      float32
		pf32     *float32
		f64      float64
		pf64     *float64
	)
	tests := []struct {
		op   Op
		p    unsafe.Pointer
		v    protoreflect.Value
		read func() any
		want any
	}{
		{OpString, unsafe.Pointer(&str), protoreflect.ValueOfString("a"), func() any { return str }, "a"},
		{OpPtrString, unsafe.Pointer(&pstr), protoreflect.ValueOfString("b"), func() any { return *pstr }, "b"},
		{OpBool, unsafe.Pointer(&b), protoreflect.ValueOfBool(true), func() any { return b }, true},
		{OpPtrBool, unsafe.Pointer(&pb), protoreflect.ValueOfBool(true), func() any { return *pb }, true},
		{OpInt32, unsafe.Pointer(&i32), protoreflect.ValueOfInt32(-3), func() any { return i32 }, int32(-3)},
		{OpPtrInt32, unsafe.Pointer(&pi32), protoreflect.ValueOfInt32(-4), func() any { return *pi32 }, int32(-4)},
		{OpEnum, unsafe.Pointer(&e), protoreflect.ValueOfEnum(5), func() any { return e }, int32(5)},
		{OpPtrEnum, unsafe.Pointer(&pe), protoreflect.ValueOfEnum(6), func() any { return *pe }, int32(6)},
		{OpInt64, unsafe.Pointer(&i64), protoreflect.ValueOfInt64(-1 << 40), func() any { return i64 }, int64(-1 << 40)},
		{OpPtrInt64, unsafe.Pointer(&pi64), protoreflect.ValueOfInt64(1 << 41), func() any { return *pi64 }, int64(1 << 41)},
		{OpUint32, unsafe.Pointer(&u32), protoreflect.ValueOfUint32(7), func() any { return u32 }, uint32(7)},
		{OpPtrUint32, unsafe.Pointer(&pu32), protoreflect.ValueOfUint32(8), func() any { return *pu32 }, uint32(8)},
		{OpUint64, unsafe.Pointer(&u64), protoreflect.ValueOfUint64(1 << 63), func() any { return u64 }, uint64(1 << 63)},
		{OpPtrUint64, unsafe.Pointer(&pu64), protoreflect.ValueOfUint64(9), func() any { return *pu64 }, uint64(9)},
		{OpFloat32, unsafe.Pointer(&f32), protoreflect.ValueOfFloat32(1.5), func() any { return f32 }, float32(1.5)},
		{OpPtrFloat32, unsafe.Pointer(&pf32), protoreflect.ValueOfFloat32(2.5), func() any { return *pf32 }, float32(2.5)},
		{OpFloat64, unsafe.Pointer(&f64), protoreflect.ValueOfFloat64(3.5), func() any { return f64 }, 3.5},
		{OpPtrFloat64, unsafe.Pointer(&pf64), protoreflect.ValueOfFloat64(4.5), func() any { return *pf64 }, 4.5},
	}
	for _, tt := range tests {
		s.Store(tt.op, tt.p, tt.v)
		if got := tt.read(); got != tt.want {
			t.Errorf("op %d: read %v (%T), want %v (%T)", tt.op, got, got, tt.want, tt.want)
		}
	}
}

// TestSlabValuesAreDistinct: every pointer field gets a value of its own, across chunk boundaries,
// and changing one through its pointer leaves the others as they were.
func TestSlabValuesAreDistinct(t *testing.T) {
	var s Slab
	const n = 3*maxChunk + 5
	ptrs := make([]*int32, n)
	for i := range ptrs {
		s.Store(OpPtrInt32, unsafe.Pointer(&ptrs[i]), protoreflect.ValueOfInt32(int32(i)))
	}
	*ptrs[0] = -1
	*ptrs[maxChunk] = -1
	for i, p := range ptrs {
		want := int32(i)
		if i == 0 || i == maxChunk {
			want = -1
		}
		if *p != want {
			t.Fatalf("value %d = %d, want %d", i, *p, want)
		}
		for j := range i {
			if ptrs[j] == p {
				t.Fatalf("values %d and %d share a pointer", j, i)
			}
		}
	}
}

// TestSlabAllocations: a page of optional strings costs an allocation per chunk, not per value.
func TestSlabAllocations(t *testing.T) {
	ptrs := make([]*string, 1000)
	allocs := testing.AllocsPerRun(20, func() {
		var s Slab
		for i := range ptrs {
			s.Store(OpPtrString, unsafe.Pointer(&ptrs[i]), protoreflect.ValueOfString("v"))
		}
	})
	// 4, 8, 16, 32, 64 and then chunks of 128: 13 chunks for 1000 values.
	if allocs > 13 {
		t.Errorf("%v allocations for 1000 values, want at most 13", allocs)
	}
}

// TestSlabString: strings of every length up to past the chunk sizes come back whole and stay as they
// were while others are added.
func TestSlabString(t *testing.T) {
	src := make([]byte, 2*maxSlabString)
	for i := range src {
		src[i] = byte('a' + i%26)
	}
	// Each round adds strings of every length, longest first in odd rounds, with steps of 1+round.
	lengths := func(round int) []int {
		var ns []int
		for n := 0; n <= len(src); n += 1 + round {
			ns = append(ns, n)
		}
		if round%2 == 1 {
			slices.Reverse(ns)
		}
		return ns
	}
	var got []string
	for round := range 4 {
		var s Slab // a new one each round: the first string sizes the first chunk
		for _, n := range lengths(round) {
			got = append(got, s.String(src[:n]))
		}
	}
	src[0] = '!' // the strings are copies
	i := 0
	for round := range 4 {
		for _, n := range lengths(round) {
			want := ""
			if n > 0 {
				want = "a" + string(src[1:n])
			}
			if got[i] != want {
				t.Fatalf("round %d, length %d: got %q", round, n, got[i])
			}
			i++
		}
	}
}

// TestRead: Pointer gives the struct of a message of the layout's Go type only; Get reads each kind of
// field there as the generated code does; Message gives back the same message.
func TestRead(t *testing.T) {
	inst := &iaasv1.Instance{
		InstanceId: proto.String("i-1"), VcpusCurrent: proto.Int32(0), KeypairIds: []string{"kp-1", "kp-2"},
		Eip: &iaasv1.Eip{EipId: proto.String("eip-1")}, Tags: []*iaasv1.Tag{{TagId: proto.String("tag-1")}, nil},
	}
	md := inst.ProtoReflect().Descriptor()
	lay := Of(md)
	p, ok := lay.Pointer(inst.ProtoReflect())
	if !ok || p != unsafe.Pointer(inst) {
		t.Fatalf("Pointer = %p, %v; want %p, true", p, ok, inst)
	}
	off := func(name protoreflect.Name) uintptr { return lay.Fields[md.Fields().ByName(name).Index()].Off }
	if got := Get[*string](p, off("instance_id")); got != inst.InstanceId {
		t.Errorf("instance_id: %p, want %p", got, inst.InstanceId)
	}
	if got := Get[*int32](p, off("vcpus_current")); got == nil || *got != 0 {
		t.Errorf("vcpus_current: %v, want a pointer to 0", got)
	}
	if got := Get[*string](p, off("status")); got != nil {
		t.Errorf("unset status: %v, want nil", got)
	}
	if got := Get[[]string](p, off("keypair_ids")); !slices.Equal(got, inst.KeypairIds) {
		t.Errorf("keypair_ids: %v", got)
	}
	if got := Get[unsafe.Pointer](p, off("eip")); got != unsafe.Pointer(inst.Eip) {
		t.Errorf("eip: %p, want %p", got, inst.Eip)
	}
	if got := Get[unsafe.Pointer](p, off("image")); got != nil {
		t.Errorf("unset image: %p, want nil", got)
	}
	if got := Get[[]unsafe.Pointer](p, off("tags")); len(got) != 2 || got[0] != unsafe.Pointer(inst.Tags[0]) || got[1] != nil {
		t.Errorf("tags: %v", got)
	}
	if got := lay.Message(p).Interface(); got != proto.Message(inst) {
		t.Errorf("Message: %v, want the instance", got)
	}
	// A dynamicpb message of the same type, a nil message and another type have no struct to read.
	for _, m := range []protoreflect.Message{
		dynamicpb.NewMessage(md), (*iaasv1.Instance)(nil).ProtoReflect(), (&iaasv1.Eip{}).ProtoReflect(),
	} {
		if p, ok := lay.Pointer(m); ok {
			t.Errorf("Pointer(%T) = %p, true", m.Interface(), p)
		}
	}
}

// TestSlabNew: structs from New are zero, distinct across chunk boundaries, usable as messages of
// their type (the message state set on first use), and a page of them costs an allocation per chunk.
func TestSlabNew(t *testing.T) {
	zoneLay := Of((&iaasv1.Zone{}).ProtoReflect().Descriptor())
	instLay := Of((&iaasv1.Instance{}).ProtoReflect().Descriptor())
	var s Slab
	const n = 200
	zones := make([]*iaasv1.Zone, n)
	insts := make([]*iaasv1.Instance, n)
	for i := range n {
		zones[i] = (*iaasv1.Zone)(s.New(zoneLay))
		insts[i] = (*iaasv1.Instance)(s.New(instLay)) // interleaved: each layout has chunks of its own
	}
	for i := range n {
		if !proto.Equal(zones[i], &iaasv1.Zone{}) || !proto.Equal(insts[i], &iaasv1.Instance{}) {
			t.Fatalf("struct %d is not zero", i)
		}
		zones[i].ZoneId = proto.String(string(rune('a' + i%26)))
		insts[i].InstanceId = proto.String("i-" + zones[i].GetZoneId())
		m := insts[i].ProtoReflect() // the message state is set here
		m.Set(m.Descriptor().Fields().ByName("alarm_status"), protoreflect.ValueOfString("x"))
	}
	for i := range n {
		want := string(rune('a' + i%26))
		if zones[i].GetZoneId() != want || insts[i].GetInstanceId() != "i-"+want || insts[i].GetAlarmStatus() != "x" {
			t.Fatalf("struct %d = %v / %v: a struct shares memory with another", i, zones[i], insts[i])
		}
		b, err := proto.Marshal(insts[i])
		if err != nil {
			t.Fatal(err)
		}
		var back iaasv1.Instance
		if err := proto.Unmarshal(b, &back); err != nil || !proto.Equal(&back, insts[i]) {
			t.Fatalf("struct %d does not round-trip as a message: %v", i, err)
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		var s Slab
		for range 1000 {
			s.New(zoneLay)
		}
	})
	// A Zone's struct is under 128 bytes: chunks of 1, 2, 4, ... 32 and then of at least 32 structs.
	if allocs > 40 {
		t.Errorf("%v allocations for 1000 structs, want at most 40", allocs)
	}
}

// TestSlabStrings: lists of strings have the asked length and capacity (appending copies), do not
// overlap, and a long one gets memory of its own.
func TestSlabStrings(t *testing.T) {
	var s Slab
	if l := s.Strings(0); l != nil {
		t.Fatalf("Strings(0) = %#v, want nil", l)
	}
	var lists [][]string
	for i := range 100 {
		n := 1 + i%7
		l := s.Strings(n)
		if len(l) != n || cap(l) != n {
			t.Fatalf("Strings(%d): len %d cap %d", n, len(l), cap(l))
		}
		for j := range l {
			l[j] = string(rune('a'+i%26)) + string(rune('0'+j))
		}
		lists = append(lists, l)
	}
	grown := append(lists[0], "more")
	grown[0] = "changed"
	for i, l := range lists {
		for j, v := range l {
			if want := string(rune('a'+i%26)) + string(rune('0'+j)); v != want {
				t.Fatalf("list %d[%d] = %q, want %q: lists overlap", i, j, v, want)
			}
		}
	}
	if l := s.Strings(maxChunk + 1); len(l) != maxChunk+1 || cap(l) != maxChunk+1 {
		t.Fatalf("long list: len %d cap %d", len(l), cap(l))
	}
}

// TestSlabPointers: lists of pointers have the asked length and capacity and do not overlap.
func TestSlabPointers(t *testing.T) {
	var s Slab
	vals := make([]int, 300)
	var lists [][]unsafe.Pointer
	k := 0
	for i := range 60 {
		l := s.Pointers(1 + i%9)
		if len(l) != 1+i%9 || cap(l) != len(l) {
			t.Fatalf("Pointers(%d): len %d cap %d", 1+i%9, len(l), cap(l))
		}
		for j := range l {
			if l[j] != nil {
				t.Fatalf("list %d[%d] is not zero", i, j)
			}
			l[j] = unsafe.Pointer(&vals[k])
			k++
		}
		lists = append(lists, l)
	}
	k = 0
	for i, l := range lists {
		for j := range l {
			if l[j] != unsafe.Pointer(&vals[k]) {
				t.Fatalf("list %d[%d] was overwritten: lists overlap", i, j)
			}
			k++
		}
	}
}
