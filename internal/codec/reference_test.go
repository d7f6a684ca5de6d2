package codec

// The decoder before the one-pass rewrite (encoding/json into map[string]any, then a protoreflect walk),
// kept as the reference of FuzzDecodeDifferential: verbatim but for the one rule added since (a
// one-element list into a singular *_id field is its element).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
)

// refDecode is the decoder before the one-pass rewrite, kept as the reference of the differential fuzz test; it fills msg from a QingCloud JSON response body; msg is reset first. It is tolerant:
//
//   - JSON keys are matched to fields by wire name (also by proto and JSON name); unknown keys are ignored;
//   - null, and "" for a non-string field, leave the field unset;
//   - a number into a string field becomes its text, an object or list its compact JSON text;
//   - a numeric string into a numeric field is parsed, as is an integral float ("5.0", "1e3") into an
//     integer field; true/false become 1/0 there;
//   - 0, 1, "0", "1", "true", "false" (and true/false) fill a bool;
//   - timestamps take RFC 3339 with or without fractional seconds and offset (also with a space for
//     "T", and without a zone, read as UTC);
//   - Struct takes an object, ListValue any JSON (a non-list becomes a one-element list), Value any
//     JSON; a message, Struct or map field also takes a string holding a JSON object;
//   - a single value where a list is expected is read as a one-element list.
//
// Values that cannot be made to fit (an object into an int, an int32 overflow, an unparsable timestamp)
// are skipped; after everything else is filled refDecode returns a *MismatchError listing them.
// Malformed JSON, trailing data, or a top level that is not an object is a plain error.
func refDecode(data []byte, msg proto.Message) error {
	if msg == nil {
		return errors.New("codec: refDecode into a nil message")
	}
	m := msg.ProtoReflect()
	if !m.IsValid() {
		return errors.New("codec: refDecode into a nil message pointer")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		if err == io.EOF {
			return errors.New("codec: response body is empty")
		}
		return fmt.Errorf("codec: response is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("codec: response has data after the JSON value")
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return fmt.Errorf("codec: response is %s, not a JSON object", refDescribe(root))
	}
	proto.Reset(msg)
	var d refDecoder
	d.object(m, obj)
	if len(d.mismatches) == 0 {
		return nil
	}
	slices.SortFunc(d.mismatches, func(a, b FieldMismatch) int { return strings.Compare(a.Path, b.Path) })
	return &MismatchError{Fields: d.mismatches, Omitted: d.omitted}
}

// refDecoder fills messages from decoded JSON (map[string]any, []any, json.Number, string, bool, nil) and
// collects mismatches.
type refDecoder struct {
	mismatches []FieldMismatch
	omitted    int
	// stack is the path to the value being decoded; it is rendered only when a mismatch is recorded.
	stack []pathStep
}

func (d *refDecoder) push(s pathStep) { d.stack = append(d.stack, s) }
func (d *refDecoder) pop()            { d.stack = d.stack[:len(d.stack)-1] }

// path renders the current path, e.g. instance_set[3].eip.bandwidth or role_count["master"].
func (d *refDecoder) path() string {
	var b strings.Builder
	for _, s := range d.stack {
		switch s.kind {
		case indexElem:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case mapKeyElem:
			b.WriteString("[" + strconv.Quote(s.key) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		}
	}
	return b.String()
}

// skip records a value that did not fit.
func (d *refDecoder) skip(reason string) {
	if len(d.mismatches) >= maxMismatches {
		d.omitted++
		return
	}
	d.mismatches = append(d.mismatches, FieldMismatch{Path: d.path(), Reason: reason})
}

// object fills the fields of m from obj.
func (d *refDecoder) object(m protoreflect.Message, obj map[string]any) {
	ix := indexOf(m.Descriptor())
	for k, v := range obj {
		ent, ok := ix.byKey[k]
		if !ok {
			continue
		}
		if ent.alias {
			// The wire name wins over an alias for the same field.
			if _, both := obj[ix.wire[ent.fd.Index()]]; both {
				continue
			}
		}
		d.push(pathStep{key: k})
		d.field(m, ent.fd, v)
		d.pop()
	}
}

// field fills one field of m from v.
func (d *refDecoder) field(m protoreflect.Message, fd protoreflect.FieldDescriptor, v any) {
	if v == nil {
		return
	}
	switch {
	case fd.IsMap():
		d.mapField(m, fd, v)
	case fd.IsList():
		d.listField(m, fd, v)
	default:
		if val, ok := d.single(m.NewField(fd), fd, v); ok {
			m.Set(fd, val)
		}
	}
}

// listField fills a repeated field from an array (or a single value, as a one-element list).
func (d *refDecoder) listField(m protoreflect.Message, fd protoreflect.FieldDescriptor, v any) {
	arr, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr && s == "" {
			return
		}
		arr = []any{v}
	}
	if len(arr) == 0 {
		return
	}
	l := m.Mutable(fd).List()
	for i, el := range arr {
		if el == nil && !refHoldsValue(fd) {
			continue
		}
		d.push(pathStep{index: i, kind: indexElem})
		if val, ok := d.single(l.NewElement(), fd, el); ok {
			l.Append(val)
		}
		d.pop()
	}
	if l.Len() == 0 {
		m.Clear(fd)
	}
}

// mapField fills a map field from an object.
func (d *refDecoder) mapField(m protoreflect.Message, fd protoreflect.FieldDescriptor, v any) {
	obj, ok := refAsObject(v)
	if !ok {
		if s, isStr := v.(string); isStr && s == "" {
			return
		}
		d.skip("want an object, got " + refDescribe(v))
		return
	}
	if len(obj) == 0 {
		return
	}
	mp := m.Mutable(fd).Map()
	for k, el := range obj {
		key, reason := refMapKey(fd.MapKey().Kind(), k)
		if reason != "" {
			d.push(pathStep{key: k, kind: mapKeyElem})
			d.skip(reason)
			d.pop()
			continue
		}
		if el == nil && !refHoldsValue(fd.MapValue()) {
			continue
		}
		var zero protoreflect.Value
		if isMessage(fd.MapValue()) {
			zero = mp.NewValue()
		}
		d.push(pathStep{key: k, kind: mapKeyElem})
		if val, ok := d.single(zero, fd.MapValue(), el); ok {
			mp.Set(key, val)
		}
		d.pop()
	}
	if mp.Len() == 0 {
		m.Clear(fd)
	}
}

// refHoldsValue reports whether fd holds google.protobuf.Value, where null is a value of its own.
func refHoldsValue(fd protoreflect.FieldDescriptor) bool {
	return isMessage(fd) && fd.Message().FullName() == valueName
}

// single converts v to one value of fd's kind: a singular field, a list element or a map value. For
// message kinds, fresh is a new empty message to fill. ok is false when the value is skipped (a mismatch
// is then recorded, except for null and "" which simply mean unset).
func (d *refDecoder) single(fresh protoreflect.Value, fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, bool) {
	if isMessage(fd) {
		if ok := d.message(fresh.Message(), v); ok {
			return fresh, true
		}
		return protoreflect.Value{}, false
	}
	val, reason := refScalarValue(fd, v)
	switch reason {
	case "":
		return val, true
	case unset:
	default:
		d.skip(reason)
	}
	return protoreflect.Value{}, false
}

// message fills m from v and reports whether m should be stored.
func (d *refDecoder) message(m protoreflect.Message, v any) bool {
	switch fn := m.Descriptor().FullName(); {
	case fn == timestampName:
		s, ok := v.(string)
		if !ok {
			d.skip("want an RFC 3339 timestamp string, got " + refDescribe(v))
			return false
		}
		if strings.TrimSpace(s) == "" {
			return false
		}
		t, err := parseTime(s)
		if err != nil {
			d.skip(err.Error())
			return false
		}
		fields := m.Descriptor().Fields()
		m.Set(fields.ByNumber(1), protoreflect.ValueOfInt64(t.Unix()))
		m.Set(fields.ByNumber(2), protoreflect.ValueOfInt32(int32(t.Nanosecond())))
		return true
	case fn == structName:
		obj, ok := refAsObject(v)
		if !ok {
			if s, isStr := v.(string); isStr && s == "" {
				return false
			}
			d.skip("want an object, got " + refDescribe(v))
			return false
		}
		d.fillStruct(m, obj)
		return true
	case fn == valueName:
		return d.fillValue(m, v)
	case fn == listValueName:
		arr, ok := v.([]any)
		if !ok {
			arr = []any{v}
		}
		d.fillList(m, arr)
		return true
	case isWrapper(fn):
		fd := m.Descriptor().Fields().ByNumber(1)
		val, reason := refScalarValue(fd, v)
		switch reason {
		case "":
			m.Set(fd, val)
			return true
		case unset:
		default:
			d.skip(reason)
		}
		return false
	case fn.Parent() == "google.protobuf":
		// Other well-known types (Duration, FieldMask, Any, Empty): their canonical JSON form.
		b, err := json.Marshal(v)
		if err == nil {
			err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m.Interface())
		}
		if err != nil {
			d.skip(fmt.Sprintf("not a valid %s: %v", fn.Name(), err))
			return false
		}
		return true
	}
	obj, ok := refAsObject(v)
	if !ok {
		if s, isStr := v.(string); isStr && s == "" {
			return false
		}
		d.skip("want an object, got " + refDescribe(v))
		return false
	}
	d.object(m, obj)
	return true
}

// fillStruct fills a google.protobuf.Struct from obj.
func (d *refDecoder) fillStruct(m protoreflect.Message, obj map[string]any) {
	fields := m.Mutable(m.Descriptor().Fields().ByNumber(1)).Map()
	for k, el := range obj {
		val := fields.NewValue()
		d.push(pathStep{key: k})
		if d.fillValue(val.Message(), el) {
			fields.Set(protoreflect.ValueOfString(k).MapKey(), val)
		}
		d.pop()
	}
}

// fillList fills a google.protobuf.ListValue from arr.
func (d *refDecoder) fillList(m protoreflect.Message, arr []any) {
	l := m.Mutable(m.Descriptor().Fields().ByNumber(1)).List()
	for i, el := range arr {
		val := l.NewElement()
		d.push(pathStep{index: i, kind: indexElem})
		if d.fillValue(val.Message(), el) {
			l.Append(val)
		}
		d.pop()
	}
}

// fillValue fills a google.protobuf.Value from any JSON value (null included).
func (d *refDecoder) fillValue(m protoreflect.Message, v any) bool {
	fields := m.Descriptor().Fields()
	switch x := v.(type) {
	case nil:
		m.Set(fields.ByNumber(valueNullField), protoreflect.ValueOfEnum(0))
	case bool:
		m.Set(fields.ByNumber(valueBoolField), protoreflect.ValueOfBool(x))
	case string:
		m.Set(fields.ByNumber(valueStringField), protoreflect.ValueOfString(x))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			d.skip(fmt.Sprintf("number %s does not fit a double", clip(string(x))))
			return false
		}
		m.Set(fields.ByNumber(valueNumberField), protoreflect.ValueOfFloat64(f))
	case map[string]any:
		fd := fields.ByNumber(valueStructField)
		s := m.NewField(fd)
		d.fillStruct(s.Message(), x)
		m.Set(fd, s)
	case []any:
		fd := fields.ByNumber(valueListField)
		l := m.NewField(fd)
		d.fillList(l.Message(), x)
		m.Set(fd, l)
	default:
		d.skip("unexpected JSON value")
		return false
	}
	return true
}

// refScalarValue converts v for a non-message field. The reason is "" on success, unset when v means
// "not set", and otherwise says why v does not fit.
func refScalarValue(fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, string) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfString(x), ""
		case json.Number:
			return protoreflect.ValueOfString(string(x)), ""
		case bool:
			return protoreflect.ValueOfString(strconv.FormatBool(x)), ""
		case map[string]any, []any:
			// A one-element list of a string into a singular *_id field is its element (CreateSnapshots'
			// job_id); the rule was added after this decoder was replaced, and kept here to compare.
			if l, ok := x.([]any); ok && len(l) == 1 && !fd.IsList() && strings.HasSuffix(api.WireName(fd), "_id") {
				if s, ok := l[0].(string); ok {
					return protoreflect.ValueOfString(s), ""
				}
			}
			b, err := compactJSON(x)
			if err != nil {
				return protoreflect.Value{}, "cannot render the value as text: " + err.Error()
			}
			return protoreflect.ValueOfString(b), ""
		}
	case protoreflect.BoolKind:
		return refBoolValue(v)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, reason := refIntValue(v, 32, fd.Kind())
		return protoreflect.ValueOfInt32(int32(n)), reason
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, reason := refIntValue(v, 64, fd.Kind())
		return protoreflect.ValueOfInt64(n), reason
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, reason := refUintValue(v, 32, fd.Kind())
		return protoreflect.ValueOfUint32(uint32(n)), reason
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, reason := refUintValue(v, 64, fd.Kind())
		return protoreflect.ValueOfUint64(n), reason
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		return refFloatValue(v, fd.Kind())
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok {
			return protoreflect.Value{}, "want a base64 string, got " + refDescribe(v)
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				return protoreflect.ValueOfBytes(b), ""
			}
		}
		return protoreflect.Value{}, fmt.Sprintf("%q is not base64", clip(s))
	case protoreflect.EnumKind:
		switch x := v.(type) {
		case string:
			if ev := fd.Enum().Values().ByName(protoreflect.Name(x)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), ""
			}
		}
		n, reason := refIntValue(v, 32, fd.Kind())
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), reason
	}
	return protoreflect.Value{}, fmt.Sprintf("want %s, got %s", fd.Kind(), refDescribe(v))
}

// refNumberText returns the text of a JSON number or string, reporting unset for "".
func refNumberText(v any, kind protoreflect.Kind) (string, string) {
	switch x := v.(type) {
	case json.Number:
		return string(x), ""
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return "", unset
		}
		return s, ""
	}
	return "", fmt.Sprintf("want %s, got %s", kind, refDescribe(v))
}

// refIntValue converts v to a signed integer of the given size.
func refIntValue(v any, bits int, kind protoreflect.Kind) (int64, string) {
	if b, ok := v.(bool); ok {
		if b {
			return 1, ""
		}
		return 0, ""
	}
	s, reason := refNumberText(v, kind)
	if reason != "" {
		return 0, reason
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err == nil {
		return n, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Sprintf("%q is not a number", clip(s))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Sprintf("%s is not an integer", clip(s))
	}
	limit := math.Ldexp(1, bits-1)
	if f < -limit || f >= limit {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	return int64(f), ""
}

// refUintValue converts v to an unsigned integer of the given size.
func refUintValue(v any, bits int, kind protoreflect.Kind) (uint64, string) {
	if b, ok := v.(bool); ok {
		if b {
			return 1, ""
		}
		return 0, ""
	}
	s, reason := refNumberText(v, kind)
	if reason != "" {
		return 0, reason
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err == nil {
		return n, ""
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Sprintf("%q is not a number", clip(s))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Sprintf("%s is not an integer", clip(s))
	}
	if f < 0 || f >= math.Ldexp(1, bits) {
		return 0, fmt.Sprintf("%s overflows %s", clip(s), kind)
	}
	return uint64(f), ""
}

// refFloatValue converts v to a double or float.
func refFloatValue(v any, kind protoreflect.Kind) (protoreflect.Value, string) {
	s, reason := refNumberText(v, kind)
	if reason != "" {
		return protoreflect.Value{}, reason
	}
	bits := 64
	if kind == protoreflect.FloatKind {
		bits = 32
	}
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) && !math.IsInf(f, 0) {
			// Underflow to zero or a denormal: close enough.
			err = nil
		} else if errors.Is(err, strconv.ErrRange) {
			return protoreflect.Value{}, fmt.Sprintf("%s overflows %s", clip(s), kind)
		} else {
			return protoreflect.Value{}, fmt.Sprintf("%q is not a number", clip(s))
		}
	}
	if bits == 32 {
		return protoreflect.ValueOfFloat32(float32(f)), ""
	}
	return protoreflect.ValueOfFloat64(f), ""
}

// refBoolValue converts true/false, 0/1 (numbers or strings) and "true"/"false" to a bool.
func refBoolValue(v any) (protoreflect.Value, string) {
	switch x := v.(type) {
	case bool:
		return protoreflect.ValueOfBool(x), ""
	case json.Number:
		switch f, err := strconv.ParseFloat(string(x), 64); {
		case err == nil && f == 0:
			return protoreflect.ValueOfBool(false), ""
		case err == nil && f == 1:
			return protoreflect.ValueOfBool(true), ""
		}
		return protoreflect.Value{}, fmt.Sprintf("want a bool (0 or 1), got %s", clip(string(x)))
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "":
			return protoreflect.Value{}, unset
		case "1", "true":
			return protoreflect.ValueOfBool(true), ""
		case "0", "false":
			return protoreflect.ValueOfBool(false), ""
		}
		return protoreflect.Value{}, fmt.Sprintf("want a bool, got %q", clip(x))
	}
	return protoreflect.Value{}, "want a bool, got " + refDescribe(v)
}

// refMapKey converts a JSON object key to a map key of the given kind.
func refMapKey(kind protoreflect.Kind, k string) (protoreflect.MapKey, string) {
	switch kind {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(k).MapKey(), ""
	case protoreflect.BoolKind:
		v, reason := refBoolValue(k)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return v.MapKey(), ""
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, reason := refIntValue(k, 32, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfInt32(int32(n)).MapKey(), ""
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, reason := refIntValue(k, 64, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfInt64(n).MapKey(), ""
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, reason := refUintValue(k, 32, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfUint32(uint32(n)).MapKey(), ""
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, reason := refUintValue(k, 64, kind)
		if reason != "" {
			return protoreflect.MapKey{}, keyReason(reason)
		}
		return protoreflect.ValueOfUint64(n).MapKey(), ""
	}
	return protoreflect.MapKey{}, fmt.Sprintf("map keys of kind %s are not supported", kind)
}

// refAsObject returns v as an object; a string holding a JSON object counts too (QingCloud sends some
// objects as JSON text).
func refAsObject(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case string:
		t := strings.TrimSpace(x)
		if !strings.HasPrefix(t, "{") {
			return nil, false
		}
		dec := json.NewDecoder(strings.NewReader(t))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return nil, false
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, false
		}
		return obj, true
	}
	return nil, false
}

// refDescribe names the JSON type of v for messages.
func refDescribe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a JSON bool"
	case json.Number:
		return "the number " + clip(string(x))
	case string:
		return fmt.Sprintf("the string %q", clip(x))
	case map[string]any:
		return "a JSON object"
	case []any:
		return "a JSON array"
	}
	return fmt.Sprintf("%T", v)
}
