package emulator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// renderMap is how the emulator rendered messages before the writer of render.go: a map[string]any
// of the populated fields by wire name, which appendJSON (encoding/json's bytes) then wrote. It is
// the reference the writer is held to, byte for byte.
func renderMap(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		out[api.WireName(fd)] = renderMapField(fd, v)
		return true
	})
	return out
}

func renderMapField(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range out {
			out[i] = renderMapValue(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		out := map[string]any{}
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			out[k.String()] = renderMapValue(fd.MapValue(), mv)
			return true
		})
		return out
	}
	return renderMapValue(fd, v)
}

func renderMapValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		switch m.Descriptor().FullName() {
		case "google.protobuf.Timestamp":
			fields := m.Descriptor().Fields() // a generated or a dynamicpb Timestamp
			ts := &timestamppb.Timestamp{Seconds: m.Get(fields.ByNumber(1)).Int(), Nanos: int32(m.Get(fields.ByNumber(2)).Int())}
			return jtime(ts.AsTime())
		case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
			b, err := protojson.Marshal(m.Interface())
			if err != nil {
				return nil
			}
			return json.RawMessage(b)
		}
		return renderMap(m)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int32(v.Enum())
	case protoreflect.BytesKind:
		return v.Bytes()
	}
	return v.Interface()
}

// renderRoots are the message types the differential test and fuzz target fill (as generated
// messages, read straight from their Go structs, or as dynamicpb messages, read through
// protoreflect): every message of
// qingcloud.iaas.v1 (maps, Struct, Value, timestamps) and descriptorpb's (enums, bytes, doubles,
// 64-bit integers, which the answers' messages do not have).
var renderRoots = func() []protoreflect.MessageType {
	_ = iaasv1.File_qingcloud_iaas_v1_instance_proto
	_ = descriptorpb.File_google_protobuf_descriptor_proto
	_ = structpb.File_google_protobuf_struct_proto
	var out []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if pkg := mt.Descriptor().ParentFile().Package(); pkg == "qingcloud.iaas.v1" || pkg == "google.protobuf" {
			out = append(out, mt)
		}
		return true
	})
	slices.SortFunc(out, func(x, y protoreflect.MessageType) int {
		return cmp.Compare(x.Descriptor().FullName(), y.Descriptor().FullName())
	})
	return out
}()

// filler fills messages with random values, strings cut from s.
type filler struct {
	rng *rand.Rand
	s   string
}

func (f *filler) str() string {
	if len(f.s) == 0 {
		return ""
	}
	i := f.rng.IntN(len(f.s))
	return f.s[i : i+f.rng.IntN(len(f.s)-i+1)]
}

// fill sets about half of m's fields (each member of a oneof may replace the last).
func (f *filler) fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if f.rng.IntN(2) == 0 || depth <= 0 && (fd.Kind() == protoreflect.MessageKind || fd.IsList() || fd.IsMap()) {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range f.rng.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					f.fill(e.Message(), depth-1)
					l.Append(e)
				} else {
					l.Append(f.scalar(fd))
				}
			}
		case fd.IsMap():
			mm := m.Mutable(fd).Map()
			for range f.rng.IntN(4) {
				k := f.scalar(fd.MapKey()).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v := mm.NewValue()
					f.fill(v.Message(), depth-1)
					mm.Set(k, v)
				} else {
					mm.Set(k, f.scalar(fd.MapValue()))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			sub := m.Mutable(fd).Message()
			if sub.Descriptor().FullName() == "google.protobuf.Timestamp" {
				secs := f.rng.Int64N(1<<36) - 1<<35
				if f.rng.IntN(8) == 0 {
					secs = -62135596800 // year 1: the zero time
				}
				sub.Set(sub.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfInt64(secs))
				sub.Set(sub.Descriptor().Fields().ByNumber(2), protoreflect.ValueOfInt32(f.rng.Int32N(1e9)))
				continue
			}
			f.fill(sub, depth-1)
		default:
			m.Set(fd, f.scalar(fd))
		}
	}
}

func (f *filler) scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	n := f.rng.Int64() >> f.rng.IntN(64)
	if f.rng.IntN(2) == 0 {
		n = -n
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(f.str())
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(f.str()))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(n&1 == 0)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(n)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(n))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(f.float()))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(f.float())
	case protoreflect.EnumKind:
		if vals := fd.Enum().Values(); vals.Len() > 0 && n&3 != 0 {
			return protoreflect.ValueOfEnum(vals.Get(f.rng.IntN(vals.Len())).Number())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(int32(n)))
	}
	panic("filler: kind " + fd.Kind().String())
}

func (f *filler) float() float64 {
	switch f.rng.IntN(8) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return 0
	}
	return f.rng.NormFloat64() * math.Pow(10, float64(f.rng.IntN(60)-30))
}

// checkRender writes a random message of a random root type as an object with random keys set and
// removed, and compares the bytes with appendJSON of renderMap's map changed the same way.
func checkRender(t *testing.T, s string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	f := &filler{rng: rng, s: s}
	mt := renderRoots[rng.IntN(len(renderRoots))]
	m := mt.New()
	if rng.IntN(3) == 0 {
		m = dynamicpb.NewMessage(mt.Descriptor()) // read through protoreflect, not its Go struct
	}
	f.fill(m, 3)

	o := &object{msg: m, emptyLists: rng.IntN(2) == 0}
	want := renderMap(m)
	if o.emptyLists {
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			if fd := fields.Get(i); isStringList(fd) && !m.Has(fd) {
				want[api.WireName(fd)] = []any{}
			}
		}
	}
	// Keys: the message's own names and others, set to values of every kind appendJSON writes, or
	// removed.
	var names []string
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		names = append(names, api.WireName(fields.Get(i)))
	}
	for range 1 + rng.IntN(6) {
		names = append(names, f.str())
	}
	for range rng.IntN(8) {
		name := names[rng.IntN(len(names))]
		switch rng.IntN(7) {
		case 0:
			o.remove(name)
			delete(want, name)
		case 1:
			v := f.str()
			o.put(objectKey{name: name, kind: keyString, s: v})
			want[name] = v
		case 2:
			v := time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(1e9))
			if rng.IntN(8) == 0 {
				v = time.Time{}
			}
			o.time(name, v)
			want[name] = jtime(v)
		case 5:
			v := rng.Int64() >> rng.IntN(64)
			o.num(name, v)
			want[name] = v
		case 3:
			sub := renderRoots[rng.IntN(len(renderRoots))].New()
			f.fill(sub, 1)
			o.set(name, &object{msg: sub})
			want[name] = renderMap(sub)
		default:
			v := randomAnswer(rng, s, 2)
			o.set(name, v)
			want[name] = v
		}
	}
	got, gerr := appendJSON(nil, o)
	wantb, werr := appendJSON(nil, want)
	if (gerr != nil) != (werr != nil) || !bytes.Equal(got, wantb) {
		t.Fatalf("%s:\n got %s, %v\nwant %s, %v", mt.Descriptor().FullName(), got, gerr, wantb, werr)
	}
	if gerr == nil {
		viaJSON, err := json.Marshal(o)
		if err != nil || !bytes.Equal(viaJSON, got) {
			t.Fatalf("json.Marshal of the object = %s, %v; appendJSON: %s", viaJSON, err, got)
		}
	}
	// get answers what the written object holds.
	for name, v := range want {
		g, ok := o.get(name)
		gb, gerr := appendJSON(nil, g)
		vb, verr := appendJSON(nil, v)
		if !ok || (gerr != nil) != (verr != nil) || !bytes.Equal(gb, vb) {
			t.Fatalf("get(%q) = %s, %v, %v; want %s", name, gb, ok, gerr, vb)
		}
	}
	for _, name := range names {
		if _, in := want[name]; !in {
			if g, ok := o.get(name); ok {
				t.Fatalf("get(%q) = %v, want none", name, g)
			}
		}
	}
}

// TestRenderMatchesMaps holds the writer to renderMap and appendJSON on random messages of every
// root type.
func TestRenderMatchesMaps(t *testing.T) {
	for seed := range uint64(3000) {
		checkRender(t, "<a>&\u2028 \"q\" \\ \xff 中文 plain", seed)
	}
}

// FuzzRender compares the writer with renderMap and appendJSON on messages filled from the fuzzer's
// bytes.
func FuzzRender(f *testing.F) {
	f.Add("seed", uint64(1))
	f.Add("\xff<\u2028>\x00\"\\", uint64(7))
	f.Fuzz(checkRender)
}

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Unix(0, 0), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", -3600)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 3, 4, 5, 6, time.FixedZone("y", 8*3600))} {
		want, _ := json.Marshal(jtime(tm))
		if got := appendTime(nil, tm); !bytes.Equal(got, want) {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
