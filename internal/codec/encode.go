package codec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// Encode flattens a request message into QingCloud parameters, following the rules in the package
// documentation. A nil message pointer gives no parameters. Errors name the parameter: a NaN or infinite
// number, a timestamp outside years 1..9999, or two fields that map to the same parameter name.
func Encode(msg proto.Message) (map[string]string, error) {
	if msg == nil {
		return nil, errors.New("codec: Encode of a nil message")
	}
	e := encoder{out: map[string]string{}}
	m := msg.ProtoReflect()
	if !m.IsValid() {
		return e.out, nil
	}
	if err := e.message(m); err != nil {
		return nil, err
	}
	return e.out, nil
}

// EncodeStruct flattens generic parameters (CallService's google.protobuf.Struct) by the same rules as
// Encode: strings as they are, numbers as decimals (integral numbers without a decimal point), booleans
// as 1/0, a list of scalars as name.N, a list of objects as name.N.field (where a list of scalars is
// joined with "," and anything nested deeper is JSON text), a nested object as JSON text. Nulls, also
// inside lists and objects, are not sent; a list element keeps its position in N. A nil Struct gives no
// parameters. Errors name the parameter: an empty name, a NaN or infinite number, or two keys that map to
// the same parameter name (e.g. "a.1" next to the list "a").
func EncodeStruct(s *structpb.Struct) (map[string]string, error) {
	e := encoder{out: map[string]string{}}
	if s == nil {
		return e.out, nil
	}
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			return nil, errors.New("codec: parameter with an empty name")
		}
		if err := e.structParam(k, s.GetFields()[k].ProtoReflect()); err != nil {
			return nil, err
		}
	}
	return e.out, nil
}

// encoder accumulates parameters.
type encoder struct {
	out map[string]string
}

// set adds one parameter; a name set twice is an error.
func (e *encoder) set(name, value string) error {
	if _, dup := e.out[name]; dup {
		return fmt.Errorf("codec: parameter %s is produced twice", name)
	}
	e.out[name] = value
	return nil
}

// message encodes the populated fields of a request message as top-level parameters.
func (e *encoder) message(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	ix := indexOf(m.Descriptor())
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if err := e.topField(ix.wire[i], fd, m.Get(fd)); err != nil {
			return err
		}
	}
	return nil
}

// topField encodes one populated top-level field.
func (e *encoder) topField(name string, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch {
	case fd.IsMap():
		return e.jsonParam(name, func(w *jsonText) error { return w.mapObject(fd, v.Map()) })
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := e.listElement(name+"."+strconv.Itoa(i+1), fd, l.Get(i)); err != nil {
				return err
			}
		}
		return nil
	case isMessage(fd):
		return e.singleMessage(name, v.Message())
	}
	s, err := scalarParam(fd, v)
	if err != nil {
		return fmt.Errorf("codec: parameter %s: %w", name, err)
	}
	return e.set(name, s)
}

// listElement encodes element N of a repeated field under name ("rules.N").
func (e *encoder) listElement(name string, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	if !isMessage(fd) {
		s, err := scalarParam(fd, v)
		if err != nil {
			return fmt.Errorf("codec: parameter %s: %w", name, err)
		}
		return e.set(name, s)
	}
	m := v.Message()
	switch fn := m.Descriptor().FullName(); {
	case fn == structName:
		return e.structObjectParams(name, m)
	case fn == valueName:
		return e.structElement(name, m)
	case fn == timestampName, fn == listValueName, isWrapper(fn), fn.Parent() == "google.protobuf":
		return e.singleMessage(name, m)
	}
	// A message element: name.N.field for each populated field.
	fields := m.Descriptor().Fields()
	ix := indexOf(m.Descriptor())
	for i := 0; i < fields.Len(); i++ {
		sub := fields.Get(i)
		if !m.Has(sub) {
			continue
		}
		if err := e.elementField(name+"."+ix.wire[i], sub, m.Get(sub)); err != nil {
			return err
		}
	}
	return nil
}

// elementField encodes one populated field of a list element: scalars as they are, a repeated scalar
// joined with ",", anything else as JSON text.
func (e *encoder) elementField(name string, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch {
	case fd.IsMap():
		return e.jsonParam(name, func(w *jsonText) error { return w.mapObject(fd, v.Map()) })
	case fd.IsList():
		if isMessage(fd) && !isScalarMessage(fd.Message().FullName()) {
			return e.jsonParam(name, func(w *jsonText) error { return w.field(fd, v) })
		}
		l := v.List()
		parts := make([]string, 0, l.Len())
		for i := 0; i < l.Len(); i++ {
			var s string
			var err error
			if isMessage(fd) {
				s, err = scalarMessage(l.Get(i).Message())
			} else {
				s, err = scalarParam(fd, l.Get(i))
			}
			if err != nil {
				return fmt.Errorf("codec: parameter %s: %w", name, err)
			}
			parts = append(parts, s)
		}
		return e.set(name, strings.Join(parts, ","))
	case isMessage(fd):
		return e.singleMessage(name, v.Message())
	}
	s, err := scalarParam(fd, v)
	if err != nil {
		return fmt.Errorf("codec: parameter %s: %w", name, err)
	}
	return e.set(name, s)
}

// singleMessage encodes a singular message value: a Timestamp or wrapper as its scalar, a Value holding
// a scalar as that scalar (null is not sent), and everything else as JSON text.
func (e *encoder) singleMessage(name string, m protoreflect.Message) error {
	fn := m.Descriptor().FullName()
	if fn == valueName {
		if kind, _ := valueOf(m); kind == kindNull {
			return nil
		}
	}
	if isScalarMessage(fn) || fn == valueName {
		if s, ok, err := scalarOfMessage(m); ok || err != nil {
			if err != nil {
				return fmt.Errorf("codec: parameter %s: %w", name, err)
			}
			return e.set(name, s)
		}
	}
	return e.jsonParam(name, func(w *jsonText) error { return w.message(m) })
}

// jsonParam sets name to the JSON text that render produces.
func (e *encoder) jsonParam(name string, render func(*jsonText) error) error {
	var w jsonText
	if err := render(&w); err != nil {
		return fmt.Errorf("codec: parameter %s: %w", name, err)
	}
	return e.set(name, string(w.b))
}

// structParam encodes one generic parameter (a google.protobuf.Value) under name.
func (e *encoder) structParam(name string, v protoreflect.Message) error {
	kind, val := valueOf(v)
	switch kind {
	case kindNull:
		return nil
	case kindStruct:
		return e.jsonParam(name, func(w *jsonText) error { return w.structObject(val.Message()) })
	case kindList:
		l := listValues(val.Message())
		for i := 0; i < l.Len(); i++ {
			if err := e.structElement(name+"."+strconv.Itoa(i+1), l.Get(i).Message()); err != nil {
				return err
			}
		}
		return nil
	}
	return e.structScalar(name, v)
}

// structElement encodes element N of a generic list (a google.protobuf.Value) under name ("name.N"):
// a scalar as it is, an object as name.N.key parameters, a nested list as JSON text, null not at all.
func (e *encoder) structElement(name string, el protoreflect.Message) error {
	switch k, ev := valueOf(el); k {
	case kindNull:
		return nil
	case kindStruct:
		return e.structObjectParams(name, ev.Message())
	case kindList:
		return e.jsonParam(name, func(w *jsonText) error { return w.listValue(ev.Message()) })
	}
	return e.structScalar(name, el)
}

// structObjectParams encodes an object that is a list element as name.key parameters: scalars as they
// are, a list of scalars joined with ",", anything nested deeper as JSON text.
func (e *encoder) structObjectParams(name string, obj protoreflect.Message) error {
	fields := structFields(obj)
	keys := make([]string, 0, fields.Len())
	fields.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k.String())
		return true
	})
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			return fmt.Errorf("codec: parameter %s has a member with an empty name", name)
		}
		sub := name + "." + k
		v := fields.Get(protoreflect.ValueOfString(k).MapKey()).Message()
		kind, val := valueOf(v)
		switch kind {
		case kindNull:
			continue
		case kindStruct:
			if err := e.jsonParam(sub, func(w *jsonText) error { return w.structObject(val.Message()) }); err != nil {
				return err
			}
			continue
		case kindList:
			if err := e.joinedList(sub, val.Message()); err != nil {
				return err
			}
			continue
		}
		if err := e.structScalar(sub, v); err != nil {
			return err
		}
	}
	return nil
}

// joinedList encodes a ListValue inside a list element: scalars joined with ",", or JSON text when it
// holds anything but non-null scalars.
func (e *encoder) joinedList(name string, lv protoreflect.Message) error {
	l := listValues(lv)
	parts := make([]string, 0, l.Len())
	for i := 0; i < l.Len(); i++ {
		s, ok, err := scalarOfMessage(l.Get(i).Message())
		if err != nil {
			return fmt.Errorf("codec: parameter %s: %w", name, err)
		}
		if !ok {
			return e.jsonParam(name, func(w *jsonText) error { return w.listValue(lv) })
		}
		parts = append(parts, s)
	}
	return e.set(name, strings.Join(parts, ","))
}

// structScalar sets name to a Value holding a number, string or bool.
func (e *encoder) structScalar(name string, v protoreflect.Message) error {
	s, ok, err := scalarOfMessage(v)
	if err != nil {
		return fmt.Errorf("codec: parameter %s: %w", name, err)
	}
	if !ok {
		return nil
	}
	return e.set(name, s)
}

// isMessage reports whether fd holds messages.
func isMessage(fd protoreflect.FieldDescriptor) bool {
	return fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
}

// isScalarMessage reports whether messages of this type are sent as one scalar parameter value.
func isScalarMessage(fn protoreflect.FullName) bool {
	return fn == timestampName || isWrapper(fn)
}

// scalarOfMessage returns the parameter text of a Timestamp, a wrapper, or a Value holding a number,
// string or bool; ok is false for anything else (a null, object or list Value, other messages).
func scalarOfMessage(m protoreflect.Message) (s string, ok bool, err error) {
	switch fn := m.Descriptor().FullName(); {
	case fn == timestampName:
		s, err = formatTimestamp(m)
		return s, err == nil, err
	case isWrapper(fn):
		fd := m.Descriptor().Fields().ByNumber(1)
		s, err = scalarParam(fd, m.Get(fd))
		return s, err == nil, err
	case fn == valueName:
		kind, v := valueOf(m)
		switch kind {
		case kindNumber:
			s, err = formatFloat(v.Float(), 64)
			return s, err == nil, err
		case kindString:
			return v.String(), true, nil
		case kindBool:
			return boolParam(v.Bool()), true, nil
		}
	}
	return "", false, nil
}

// scalarMessage is scalarOfMessage for types known to be scalar messages.
func scalarMessage(m protoreflect.Message) (string, error) {
	s, _, err := scalarOfMessage(m)
	return s, err
}

// scalarParam formats a non-message value as a parameter value.
func scalarParam(fd protoreflect.FieldDescriptor, v protoreflect.Value) (string, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return boolParam(v.Bool()), nil
	case protoreflect.DoubleKind:
		return formatFloat(v.Float(), 64)
	case protoreflect.FloatKind:
		return formatFloat(v.Float(), 32)
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case protoreflect.EnumKind:
		return strconv.FormatInt(int64(v.Enum()), 10), nil
	}
	return scalarText(fd.Kind(), v), nil
}

func boolParam(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
