package restjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/restjson"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/testutil"
)

// responseTypes are the answers of every RPC of the API and of the Operations service.
func responseTypes(t testing.TB) []protoreflect.MessageType {
	t.Helper()
	seen := map[protoreflect.FullName]bool{}
	var out []protoreflect.MessageType
	add := func(sd protoreflect.ServiceDescriptor) {
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i).Output()
			if seen[md.FullName()] {
				continue
			}
			seen[md.FullName()] = true
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				t.Fatalf("%s: %v", md.FullName(), err)
			}
			out = append(out, mt)
		}
	}
	protoregistry.GlobalFiles.RangeFilesByPackage(api.Package, func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			add(fd.Services().Get(i))
		}
		return true
	})
	add(longrunningpb.File_google_longrunning_operations_proto.Services().ByName("Operations"))
	if len(out) < 100 {
		t.Fatalf("only %d response types found", len(out))
	}
	return out
}

// strs are the strings the filled messages hold: escapes, control characters, non-ASCII, HTML.
var strs = []string{"plain", "", "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f nul\x00 unit\x1f", "<a href='x'>&amp;</a> é 中文 😀 \u2028\u2029 \x7f"}

// fill sets the fields of m (variant picks the values; depth bounds nesting).
func fill(m protoreflect.Message, variant, depth int) {
	md := m.Descriptor()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		secs := []int64{0, 1700000000, -62135596800, 253402300799}[variant%4]
		nanos := []int64{0, 500000000, 123000, 7}[variant%4]
		m.Set(md.Fields().ByName("seconds"), protoreflect.ValueOfInt64(secs))
		m.Set(md.Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(nanos)))
		return
	case "google.protobuf.Struct":
		s, _ := structpb.NewStruct(map[string]any{
			"b": true, "a": 1.5, "n": nil, "s": strs[variant%len(strs)], "z": []any{1e-7, 1e21, "x", false, nil, map[string]any{"k": -0.0}},
			"nested": map[string]any{"y": 2.0, "x": []any{}}, "": "empty key", "é": 3.0,
		})
		proto.Merge(m.Interface(), s)
		return
	case "google.protobuf.Value":
		v, _ := structpb.NewValue([]any{1.0, "v", map[string]any{"q": nil}}[variant%3])
		proto.Merge(m.Interface(), v)
		return
	case "google.protobuf.Any":
		return // left unset: an Any needs a registered type; protojson's job anyway
	}
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		if variant == 3 && i%2 == 1 {
			continue
		}
		if od := fd.ContainingOneof(); od != nil && od.Fields().Get(variant%od.Fields().Len()) != fd {
			continue
		}
		switch {
		case fd.IsList():
			if fd.Message() != nil && depth > 2 {
				continue
			}
			l := m.Mutable(fd).List()
			for j := range 2 {
				if fd.Message() != nil {
					e := l.NewElement()
					fill(e.Message(), variant+j, depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(fd, variant+j))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := range 3 {
				k := scalar(fd.MapKey(), variant+j).MapKey()
				if fd.MapValue().Message() != nil {
					v := mp.NewValue()
					fill(v.Message(), variant, depth+1)
					mp.Set(k, v)
				} else {
					mp.Set(k, scalar(fd.MapValue(), variant+j))
				}
			}
		case fd.Message() != nil:
			if depth > 2 {
				continue
			}
			fill(m.Mutable(fd).Message(), variant, depth+1)
		default:
			m.Set(fd, scalar(fd, variant))
		}
	}
}

// scalar is a value of fd's kind; variant 1 is the zero value.
func scalar(fd protoreflect.FieldDescriptor, variant int) protoreflect.Value {
	v := variant % 4
	zero := v == 1
	pick := func(xs ...float64) float64 {
		if zero {
			return 0
		}
		return xs[v%len(xs)]
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(!zero)
	case protoreflect.StringKind:
		if zero {
			return protoreflect.ValueOfString("")
		}
		return protoreflect.ValueOfString(strs[(v+2)%len(strs)])
	case protoreflect.BytesKind:
		if zero {
			return protoreflect.ValueOfBytes(nil)
		}
		return protoreflect.ValueOfBytes([]byte("\x00\xffbytes?>"))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(pick(-1, math.MaxInt32, math.MinInt32, 42)))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(pick(1, math.MaxUint32, 7)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if zero {
			return protoreflect.ValueOfInt64(0)
		}
		return protoreflect.ValueOfInt64([]int64{math.MinInt64, math.MaxInt64, -5, 1 << 60}[v])
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if zero {
			return protoreflect.ValueOfUint64(0)
		}
		return protoreflect.ValueOfUint64(math.MaxUint64 - uint64(v))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(pick(1.5e-7, 3.25, float64(math.Inf(1)), 1e22)))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(pick(1e-7, math.NaN(), 1e21, 0.1))
	case protoreflect.EnumKind:
		if v == 3 {
			return protoreflect.ValueOfEnum(999) // a number the enum does not name
		}
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(v % vals.Len()).Number())
	}
	panic(fmt.Sprintf("no scalar for %v", fd.Kind()))
}

// same checks that restjson writes m as protojson does (whitespace aside), or fails as it does, and
// writes a dynamicpb copy of m (read through protoreflect, not from Go structs) the same.
func same(t testing.TB, m proto.Message) {
	t.Helper()
	want, wantErr := restjson.Options.Marshal(m)
	got, err := restjson.Marshal(m)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v, protojson's %v", m.ProtoReflect().Descriptor().FullName(), err, wantErr)
	}
	if m.ProtoReflect().IsValid() {
		dyn := dynamicpb.NewMessage(m.ProtoReflect().Descriptor())
		proto.Merge(dyn, m)
		gotDyn, errDyn := restjson.Marshal(dyn)
		if (errDyn != nil) != (err != nil) || !bytes.Equal(gotDyn, got) {
			t.Fatalf("%s: dynamicpb copy written differently (error %v, generated's %v):\n dynamic   %.200s\n generated %.200s",
				m.ProtoReflect().Descriptor().FullName(), errDyn, err, gotDyn, got)
		}
	}
	if err != nil {
		return
	}
	// protojson adds spaces at random (per build); restjson adds none, but what it leaves to
	// protojson (an Any, for one) comes back as protojson wrote it.
	var compact, gotCompact bytes.Buffer
	if err := json.Compact(&compact, want); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&gotCompact, got); err != nil {
		t.Fatalf("%s: invalid JSON: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
	got = gotCompact.Bytes()
	if !bytes.Equal(got, compact.Bytes()) {
		i := 0
		for i < len(got) && i < compact.Len() && got[i] == compact.Bytes()[i] {
			i++
		}
		t.Fatalf("%s differs from protojson at byte %d:\n got  …%s\n want …%s", m.ProtoReflect().Descriptor().FullName(), i,
			clip(got[i:]), clip(compact.Bytes()[i:]))
	}
}

func clip(b []byte) string {
	if len(b) > 120 {
		b = b[:120]
	}
	return string(b)
}

func TestSameAsProtojsonOnEveryResponse(t *testing.T) {
	types := responseTypes(t)
	for _, mt := range types {
		for variant := range 5 {
			m := mt.New()
			if variant < 4 {
				fill(m, variant, 0)
			} // variant 4: the empty message
			same(t, m.Interface())
		}
	}
	t.Logf("%d response types, 5 variants each", len(types))
}

// The messages of a real answer: instances with tags, timestamps and nested lists.
func TestSameAsProtojsonOnAnAnswer(t *testing.T) {
	resp := &iaasv1.DescribeInstancesResponse{TotalCount: proto.Int32(2)}
	for i := range 2 {
		inst := &iaasv1.Instance{InstanceId: proto.String(fmt.Sprintf("i-%08d", i)), CreateTime: timestamppb.New(timestamppb.Now().AsTime()), VcpusCurrent: proto.Int32(2)}
		resp.InstanceSet = append(resp.InstanceSet, inst)
	}
	same(t, resp)
	same(t, (*iaasv1.DescribeInstancesResponse)(nil))
}

// The edges of reading fields from Go structs: optional scalars set to their zero value are written
// (a non-nil pointer is set), unset ones are not; empty lists, nil or not, are written as []; a nil
// message in a list is written as an empty message of its type; a set but empty message as {} with
// its defaults.
func TestSameAsProtojsonOnFieldEdges(t *testing.T) {
	zeros := &iaasv1.Instance{
		InstanceId: proto.String(""), VcpusCurrent: proto.Int32(0), MemoryCurrent: proto.Int64(0),
		KeypairIds: []string{}, Tags: []*iaasv1.Tag{}, Eip: &iaasv1.Eip{}, CreateTime: &timestamppb.Timestamp{},
	}
	tests := []struct {
		name string
		m    proto.Message
		want []string // in the JSON, besides being protojson's
		not  []string // not in the JSON
	}{
		{"zero optionals", zeros, []string{`"instance_id":""`, `"vcpus_current":0`, `"memory_current":"0"`, `"keypair_ids":[]`,
			`"tags":[]`, `"eip":{`, `"create_time":"1970-01-01T00:00:00Z"`}, []string{`"status"`, `"image"`}},
		{"unset", &iaasv1.Instance{}, []string{`"keypair_ids":[]`, `"tags":[]`}, []string{`"instance_id"`, `"eip"`, `"create_time"`}},
		{"nil element", &iaasv1.DescribeInstancesResponse{InstanceSet: []*iaasv1.Instance{nil, {InstanceId: proto.String("i-1")}, nil}},
			[]string{`"instance_set":[{"dns_aliases":[]`, `"instance_id":"i-1"`}, nil},
		{"unset message in an element", &iaasv1.Eip{Tags: []*iaasv1.Tag{{CreateTime: nil}}}, []string{`"tags":[{`}, []string{`"create_time"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := restjson.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("no %s in %s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(string(got), w) {
					t.Errorf("%s in %s", w, got)
				}
			}
			if tt.name != "nil element" { // dynamicpb cannot hold a nil element: compared with protojson only
				same(t, tt.m)
				return
			}
			want, err := restjson.Options.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, compact.Bytes()) {
				t.Errorf("got  %s\nwant %s", got, compact.Bytes())
			}
		})
	}
}

// TestPageWithoutAllocations: a page of generated messages is read straight from their Go structs:
// written into a buffer large enough, it costs no allocation (protoreflect would box values and
// wrap lists).
func TestPageWithoutAllocations(t *testing.T) {
	resp := page100(t)
	buf, err := restjson.Append(nil, resp)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := restjson.Append(buf[:0], resp); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per page, want 0", allocs)
	}
	same(t, resp)
}

// What protojson refuses, restjson refuses: invalid UTF-8, timestamps out of range, Values without a
// kind or with NaN.
func TestRefusesWhatProtojsonRefuses(t *testing.T) {
	for _, m := range []proto.Message{
		&iaasv1.Instance{InstanceId: proto.String("bad \xff utf-8")},
		&iaasv1.Instance{CreateTime: &timestamppb.Timestamp{Seconds: 253402300800}},
		&iaasv1.Instance{CreateTime: &timestamppb.Timestamp{Nanos: -1}},
		&structpb.Struct{Fields: map[string]*structpb.Value{"x": {}}},
		&structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(math.NaN())}},
		&structpb.Struct{Fields: map[string]*structpb.Value{"bad \xff": structpb.NewNullValue()}},
	} {
		if _, err := restjson.Marshal(m); err == nil {
			t.Errorf("%v: no error", m)
		}
		same(t, m)
	}
}

// FuzzSameAsProtojson decodes arbitrary bytes as an answer and compares both writers.
func FuzzSameAsProtojson(f *testing.F) {
	for variant := range 4 {
		for _, m := range []proto.Message{&iaasv1.DescribeInstancesResponse{}, &structpb.Struct{}, &iaasv1.DescribeJobsResponse{}} {
			fill(m.ProtoReflect(), variant, 0)
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []proto.Message{&iaasv1.DescribeInstancesResponse{}, &structpb.Struct{}, &iaasv1.DescribeJobsResponse{}} {
			if proto.Unmarshal(b, m) != nil {
				continue
			}
			same(t, m)
		}
	})
}

var sink []byte

// page100 is the page of the codec's benchmarks (testutil.InstancesPage) as the backend decodes it.
func page100(t testing.TB) *iaasv1.DescribeInstancesResponse {
	t.Helper()
	resp := &iaasv1.DescribeInstancesResponse{}
	if err := codec.Decode(testutil.InstancesPage(100), resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// BenchmarkMarshalPage compares restjson with protojson on page100, the size of a real answer.
// cpu-µs/op is the process's CPU time (user and system, garbage collection included) per page, which
// other processes on a shared machine disturb less than the wall time of ns/op.
func BenchmarkMarshalPage(b *testing.B) {
	resp := page100(b)
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		t0 := cpuTime()
		for b.Loop() {
			sink, _ = restjson.Options.Marshal(resp)
		}
		b.ReportMetric(float64((cpuTime()-t0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
	b.Run("restjson", func(b *testing.B) {
		b.ReportAllocs()
		t0 := cpuTime()
		for b.Loop() {
			sink, _ = restjson.Marshal(resp)
		}
		b.ReportMetric(float64((cpuTime()-t0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
	if !json.Valid(sink) || !strings.HasPrefix(string(sink), `{"action":"DescribeInstancesResponse","instance_set":[{`) ||
		!strings.Contains(string(sink), `"instance_id":"i-00000099"`) {
		b.Fatalf("not the page: %.80s", sink)
	}
}

// BenchmarkMarshal compares restjson with protojson on a 100-instance page.
func BenchmarkMarshal(b *testing.B) {
	resp := &iaasv1.DescribeInstancesResponse{}
	for range 100 {
		inst := &iaasv1.Instance{}
		fill(inst.ProtoReflect(), 0, 1)
		resp.InstanceSet = append(resp.InstanceSet, inst)
	}
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = restjson.Options.Marshal(resp)
		}
	})
	b.Run("restjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = restjson.Marshal(resp)
		}
	})
	if !json.Valid(sink) || !strings.HasPrefix(string(sink), `{"action":"DescribeInstancesResponse","instance_set":[{`) ||
		!strings.Contains(string(sink), `"instance_id":"i-00000099"`) {
		b.Fatalf("not the page: %.80s", sink)
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
