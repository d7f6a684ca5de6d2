package codec

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonText renders messages and values as the compact JSON text that QingCloud takes for object-valued
// parameters. It differs from protojson on purpose: keys are wire names, 64-bit integers are JSON numbers
// (QingCloud's JSON has no quoted integers), timestamps use TimeLayout, and the output is deterministic
// (fields in declaration order, Struct and map keys sorted). HTML characters are not escaped.
type jsonText struct {
	b []byte
}

// message renders m; Struct, Value, ListValue, Timestamp and the wrappers by their JSON
// meaning, other messages as objects of their populated fields.
func (w *jsonText) message(m protoreflect.Message) error {
	switch name := m.Descriptor().FullName(); {
	case name == structName:
		return w.structObject(m)
	case name == valueName:
		return w.value(m)
	case name == listValueName:
		return w.listValue(m)
	case name == timestampName:
		s, err := formatTimestamp(m)
		if err != nil {
			return err
		}
		w.str(s)
		return nil
	case isWrapper(name):
		fd := m.Descriptor().Fields().ByNumber(1)
		return w.single(fd, m.Get(fd))
	case name.Parent() == "google.protobuf":
		// Other well-known types (Duration, FieldMask, Any, Empty) keep their canonical JSON form.
		b, err := protojson.Marshal(m.Interface())
		if err != nil {
			return err
		}
		w.b = append(w.b, b...)
		return nil
	}
	w.b = append(w.b, '{')
	first := true
	fields := m.Descriptor().Fields()
	ix := indexOf(m.Descriptor())
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		w.str(ix.wire[i])
		w.b = append(w.b, ':')
		if err := w.field(fd, m.Get(fd)); err != nil {
			return fmt.Errorf("%s: %w", ix.wire[i], err)
		}
	}
	w.b = append(w.b, '}')
	return nil
}

// field renders the value of any field: list, map or single value.
func (w *jsonText) field(fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch {
	case fd.IsMap():
		return w.mapObject(fd, v.Map())
	case fd.IsList():
		l := v.List()
		w.b = append(w.b, '[')
		for i := 0; i < l.Len(); i++ {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			if err := w.single(fd, l.Get(i)); err != nil {
				return err
			}
		}
		w.b = append(w.b, ']')
		return nil
	}
	return w.single(fd, v)
}

// single renders one value of fd's kind (a list element, a map value or a singular field).
func (w *jsonText) single(fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return w.message(v.Message())
	case protoreflect.StringKind:
		w.str(v.String())
	case protoreflect.BytesKind:
		w.str(base64.StdEncoding.EncodeToString(v.Bytes()))
	case protoreflect.BoolKind:
		w.b = strconv.AppendBool(w.b, v.Bool())
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		s, err := formatFloat(v.Float(), bits)
		if err != nil {
			return err
		}
		w.b = append(w.b, s...)
	case protoreflect.EnumKind:
		w.b = strconv.AppendInt(w.b, int64(v.Enum()), 10)
	default:
		w.b = append(w.b, scalarText(fd.Kind(), v)...)
	}
	return nil
}

// mapObject renders a map field as an object with sorted keys.
func (w *jsonText) mapObject(fd protoreflect.FieldDescriptor, m protoreflect.Map) error {
	type entry struct {
		key string
		val protoreflect.Value
	}
	entries := make([]entry, 0, m.Len())
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		entries = append(entries, entry{scalarText(fd.MapKey().Kind(), k.Value()), v})
		return true
	})
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	w.b = append(w.b, '{')
	for i, e := range entries {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.str(e.key)
		w.b = append(w.b, ':')
		if err := w.single(fd.MapValue(), e.val); err != nil {
			return fmt.Errorf("[%q]: %w", e.key, err)
		}
	}
	w.b = append(w.b, '}')
	return nil
}

// structObject renders a google.protobuf.Struct with sorted keys.
func (w *jsonText) structObject(m protoreflect.Message) error {
	fields := structFields(m)
	keys := make([]string, 0, fields.Len())
	fields.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k.String())
		return true
	})
	slices.Sort(keys)
	w.b = append(w.b, '{')
	for i, k := range keys {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.str(k)
		w.b = append(w.b, ':')
		if err := w.value(fields.Get(protoreflect.ValueOfString(k).MapKey()).Message()); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	w.b = append(w.b, '}')
	return nil
}

// listValue renders a google.protobuf.ListValue.
func (w *jsonText) listValue(m protoreflect.Message) error {
	l := listValues(m)
	w.b = append(w.b, '[')
	for i := 0; i < l.Len(); i++ {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		if err := w.value(l.Get(i).Message()); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	w.b = append(w.b, ']')
	return nil
}

// value renders a google.protobuf.Value; an unset Value is null.
func (w *jsonText) value(m protoreflect.Message) error {
	kind, v := valueOf(m)
	switch kind {
	case kindNumber:
		s, err := formatFloat(v.Float(), 64)
		if err != nil {
			return err
		}
		w.b = append(w.b, s...)
	case kindString:
		w.str(v.String())
	case kindBool:
		w.b = strconv.AppendBool(w.b, v.Bool())
	case kindStruct:
		return w.structObject(v.Message())
	case kindList:
		return w.listValue(v.Message())
	default:
		w.b = append(w.b, "null"...)
	}
	return nil
}

// str appends s as a JSON string. Control characters, quote and backslash are escaped, as are U+2028
// and U+2029; invalid UTF-8 becomes U+FFFD. HTML characters stay literal.
func (w *jsonText) str(s string) {
	const hex = "0123456789abcdef"
	w.b = append(w.b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.b = append(w.b, '\\', c)
			case c == '\n':
				w.b = append(w.b, '\\', 'n')
			case c == '\r':
				w.b = append(w.b, '\\', 'r')
			case c == '\t':
				w.b = append(w.b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				w.b = append(w.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				w.b = append(w.b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.b = append(w.b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			w.b = append(w.b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			w.b = append(w.b, s[i:i+size]...)
		}
		i += size
	}
	w.b = append(w.b, '"')
}

// scalarText formats an integer, bool or string value as text (booleans as true/false).
func scalarText(kind protoreflect.Kind, v protoreflect.Value) string {
	switch kind {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.StringKind:
		return v.String()
	}
	return v.String()
}
