package codec_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
)

const apiPackage protoreflect.FullName = "qingcloud.iaas.v1"

// messagesWithSuffix lists the message types of the API package whose names end in suffix.
func messagesWithSuffix(t testing.TB, suffix string) []protoreflect.MessageType {
	t.Helper()
	var out []protoreflect.MessageType
	protoregistry.GlobalFiles.RangeFilesByPackage(apiPackage, func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Messages().Len(); i++ {
			md := fd.Messages().Get(i)
			if !strings.HasSuffix(string(md.Name()), suffix) {
				continue
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, mt)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Descriptor().FullName() < out[j].Descriptor().FullName() })
	if len(out) < 100 {
		t.Fatalf("only %d %s messages in %s: is the generated package linked?", len(out), suffix, apiPackage)
	}
	return out
}

// filler populates every field of a message with deterministic values that differ by field.
type filler struct {
	// nanos adds sub-second precision to timestamps (responses carry it, requests drop it).
	nanos bool
	// seq makes values differ between fields and elements.
	seq int
}

func (f *filler) next() int { f.seq++; return f.seq }

func (f *filler) fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && od.Fields().Get(0) != fd {
			continue // one member per real oneof
		}
		if isMsg(fd) && !fd.IsMap() && depth > 3 && !isWKT(fd.Message()) {
			continue // recursive types
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := 0; j < 2; j++ {
				mp.Set(f.mapKey(fd.MapKey(), j), f.value(mp.NewValue, fd.MapValue(), depth))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for j := 0; j < 2; j++ {
				l.Append(f.value(l.NewElement, fd, depth))
			}
		default:
			m.Set(fd, f.value(func() protoreflect.Value { return m.NewField(fd) }, fd, depth))
		}
	}
}

func (f *filler) mapKey(fd protoreflect.FieldDescriptor, j int) protoreflect.MapKey {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("key-%d", j)).MapKey()
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(j == 1).MapKey()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(j + 10)).MapKey()
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(j + 10)).MapKey()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(j + 10)).MapKey()
	}
	return protoreflect.ValueOfUint64(uint64(j + 10)).MapKey()
}

func (f *filler) value(newMsg func() protoreflect.Value, fd protoreflect.FieldDescriptor, depth int) protoreflect.Value {
	n := f.next()
	switch fd.Kind() {
	case protoreflect.StringKind:
		// Characters that need escaping on the wire and in JSON, but no ',' (the element-list separator).
		return protoreflect.ValueOfString(fmt.Sprintf("v%d é&=+/~|\"\\<\n", n))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(n%2 == 0)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(n*7 - 50))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(1)<<53 + 1 + int64(n)) // beyond float64 precision
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(n))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(1)<<63 + uint64(n))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(n) + 0.1)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(n) + 0.5)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{byte(n), 0xff, 0})
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(n % vals.Len()).Number())
	}
	v := newMsg()
	m := v.Message()
	switch m.Descriptor().FullName() {
	case "google.protobuf.Timestamp":
		m.Set(m.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(1377613810+int64(n)*3607))
		if f.nanos {
			m.Set(m.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(n*1000+7)))
		}
	case "google.protobuf.Struct":
		jsonInto(m, fmt.Sprintf(`{"n":%d,"f":0.5,"s":"x%d, y","b":true,"z":null,"l":[1,"a",{"k":false}],"o":{"p":[]}}`, n, n))
	case "google.protobuf.Value":
		jsonInto(m, fmt.Sprintf(`{"id":"v-%d","count":%d}`, n, n))
	case "google.protobuf.ListValue":
		jsonInto(m, fmt.Sprintf(`[%d,"b",{"c":null}]`, n))
	default:
		f.fill(m, depth+1)
	}
	return v
}

func jsonInto(m protoreflect.Message, s string) {
	if err := protojson.Unmarshal([]byte(s), m.Interface()); err != nil {
		panic(err)
	}
}

func isMsg(fd protoreflect.FieldDescriptor) bool {
	return fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
}

func isWKT(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile().Package() == "google.protobuf"
}

// wireName reads the wire_name option, independently of the codec.
func wireName(fd protoreflect.FieldDescriptor) string {
	if w := proto.GetExtension(fd.Options(), iaasv1.E_WireName).(string); w != "" {
		return w
	}
	return string(fd.Name())
}

// unflattener rebuilds a request message from QingCloud parameters: the inverse of the wire rules,
// written independently of the encoder.
type unflattener struct {
	params map[string]string
	used   map[string]bool
}

func (u *unflattener) take(name string) (string, bool) {
	v, ok := u.params[name]
	if ok {
		u.used[name] = true
	}
	return v, ok
}

func (u *unflattener) message(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := wireName(fd)
		switch {
		case fd.IsMap():
			if text, ok := u.take(name); ok {
				if err := fromJSON(m, fd, text); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		case fd.IsList() && isMsg(fd) && !isScalarWKT(fd.Message()):
			for n := 1; ; n++ {
				prefix := name + "." + strconv.Itoa(n)
				if !u.hasPrefix(prefix + ".") {
					break
				}
				el := m.Mutable(fd).List().NewElement()
				if err := u.element(el.Message(), prefix+"."); err != nil {
					return err
				}
				m.Mutable(fd).List().Append(el)
			}
		case fd.IsList():
			for n := 1; ; n++ {
				text, ok := u.take(name + "." + strconv.Itoa(n))
				if !ok {
					break
				}
				v, err := parseScalar(fd, text, m.Mutable(fd).List().NewElement)
				if err != nil {
					return fmt.Errorf("%s.%d: %w", name, n, err)
				}
				m.Mutable(fd).List().Append(v)
			}
		default:
			text, ok := u.take(name)
			if !ok {
				continue
			}
			if isMsg(fd) && !isScalarWKT(fd.Message()) {
				if err := fromJSON(m, fd, text); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				continue
			}
			v, err := parseScalar(fd, text, func() protoreflect.Value { return m.NewField(fd) })
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			m.Set(fd, v)
		}
	}
	return nil
}

// element rebuilds one list element from prefix+field parameters.
func (u *unflattener) element(m protoreflect.Message, prefix string) error {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := prefix + wireName(fd)
		text, ok := u.take(name)
		if !ok {
			continue
		}
		switch {
		case fd.IsMap(), isMsg(fd) && !isScalarWKT(fd.Message()):
			if err := fromJSON(m, fd, text); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for _, part := range strings.Split(text, ",") {
				v, err := parseScalar(fd, part, l.NewElement)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				l.Append(v)
			}
		default:
			v, err := parseScalar(fd, text, func() protoreflect.Value { return m.NewField(fd) })
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			m.Set(fd, v)
		}
	}
	return nil
}

func (u *unflattener) hasPrefix(p string) bool {
	for k := range u.params {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func isScalarWKT(md protoreflect.MessageDescriptor) bool {
	return md.FullName() == "google.protobuf.Timestamp"
}

// parseScalar reads one parameter value of fd's kind.
func parseScalar(fd protoreflect.FieldDescriptor, s string, newMsg func() protoreflect.Value) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		switch s {
		case "1":
			return protoreflect.ValueOfBool(true), nil
		case "0":
			return protoreflect.ValueOfBool(false), nil
		}
		return protoreflect.Value{}, fmt.Errorf("bool %q is not 1 or 0", s)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(s, 10, 32)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(s, 10, 64)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(s, 10, 64)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.DoubleKind:
		if strings.ContainsAny(s, "eE") {
			return protoreflect.Value{}, fmt.Errorf("double %q has an exponent", s)
		}
		f, err := strconv.ParseFloat(s, 64)
		return protoreflect.ValueOfFloat64(f), err
	case protoreflect.FloatKind:
		f, err := strconv.ParseFloat(s, 32)
		return protoreflect.ValueOfFloat32(float32(f)), err
	case protoreflect.MessageKind:
		t, err := time.Parse("2006-01-02T15:04:05Z", s)
		if err != nil {
			return protoreflect.Value{}, err
		}
		v := newMsg()
		v.Message().Set(fd.Message().Fields().ByName("seconds"), protoreflect.ValueOfInt64(t.Unix()))
		return v, nil
	}
	return protoreflect.Value{}, fmt.Errorf("kind %s not expected in requests", fd.Kind())
}

// fromJSON sets field fd of m from QingCloud JSON text: it renames wire names to proto names and hands
// the result to protojson.
func fromJSON(m protoreflect.Message, fd protoreflect.FieldDescriptor, text string) error {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return err
	}
	if strings.ContainsAny(text, "\n") {
		return fmt.Errorf("JSON text is not compact: %q", text)
	}
	wrapped := map[string]any{string(fd.Name()): renameWire(fd, v)}
	b, err := json.Marshal(wrapped)
	if err != nil {
		return err
	}
	tmp := m.New()
	if err := protojson.Unmarshal(b, tmp.Interface()); err != nil {
		return fmt.Errorf("%w in %s", err, b)
	}
	m.Set(fd, tmp.Get(fd))
	return nil
}

// renameWire rewrites the JSON keys of API messages from wire names to proto names.
func renameWire(fd protoreflect.FieldDescriptor, v any) any {
	if fd.IsMap() {
		obj, _ := v.(map[string]any)
		for k, x := range obj {
			obj[k] = renameSingle(fd.MapValue(), x)
		}
		return obj
	}
	if fd.IsList() {
		arr, _ := v.([]any)
		for i, x := range arr {
			arr[i] = renameSingle(fd, x)
		}
		return arr
	}
	return renameSingle(fd, v)
}

func renameSingle(fd protoreflect.FieldDescriptor, v any) any {
	if !isMsg(fd) || isWKT(fd.Message()) {
		return v
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	fields := fd.Message().Fields()
	for i := 0; i < fields.Len(); i++ {
		sub := fields.Get(i)
		if x, ok := obj[wireName(sub)]; ok {
			out[string(sub.Name())] = renameWire(sub, x)
		}
	}
	return out
}

// TestEncodeRoundTripAllRequests encodes a fully populated instance of every request message and
// rebuilds it from the parameters alone.
func TestEncodeRoundTripAllRequests(t *testing.T) {
	for _, mt := range messagesWithSuffix(t, "Request") {
		name := string(mt.Descriptor().Name())
		t.Run(name, func(t *testing.T) {
			msg := mt.New()
			(&filler{}).fill(msg, 0)
			params, err := codec.Encode(msg.Interface())
			if err != nil {
				t.Fatal(err)
			}
			u := &unflattener{params: params, used: map[string]bool{}}
			back := mt.New()
			if err := u.message(back); err != nil {
				t.Fatalf("unflatten: %v\nparams: %v", err, params)
			}
			for k := range params {
				if !u.used[k] {
					t.Errorf("parameter %s=%q does not belong to any field", k, params[k])
				}
			}
			if !proto.Equal(msg.Interface(), back.Interface()) {
				t.Errorf("round trip differs\nparams: %v\nwant: %v\n got: %v", params, msg, back)
			}
		})
	}
}

// TestDecodeRoundTripAllResponses decodes protojson's rendering (proto names) of a fully populated
// instance of every response message, and of every resource message.
func TestDecodeRoundTripAllResponses(t *testing.T) {
	types := append(messagesWithSuffix(t, "Response"), resourceTypes(t)...)
	for _, mt := range types {
		name := string(mt.Descriptor().Name())
		t.Run(name, func(t *testing.T) {
			msg := mt.New()
			(&filler{nanos: true}).fill(msg, 0)
			data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg.Interface())
			if err != nil {
				t.Fatal(err)
			}
			back := mt.New().Interface()
			if err := codec.Decode(data, back); err != nil {
				t.Fatalf("Decode: %v\njson: %s", err, data)
			}
			if !proto.Equal(msg.Interface(), back) {
				t.Errorf("round trip differs\njson: %s\nwant: %v\n got: %v", data, msg, back)
			}
		})
	}
}

// resourceTypes lists the resource messages of types.proto.
func resourceTypes(t testing.TB) []protoreflect.MessageType {
	var out []protoreflect.MessageType
	fd := iaasv1.File_qingcloud_iaas_v1_types_proto
	for i := 0; i < fd.Messages().Len(); i++ {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(fd.Messages().Get(i).FullName())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mt)
	}
	return out
}
