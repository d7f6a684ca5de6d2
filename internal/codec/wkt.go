package codec

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TimeLayout is the QingCloud timestamp format used in requests (always UTC, whole seconds).
const TimeLayout = "2006-01-02T15:04:05Z"

// Full names of the well-known types the codec treats specially.
const (
	timestampName protoreflect.FullName = "google.protobuf.Timestamp"
	structName    protoreflect.FullName = "google.protobuf.Struct"
	valueName     protoreflect.FullName = "google.protobuf.Value"
	listValueName protoreflect.FullName = "google.protobuf.ListValue"
)

// isWrapper reports whether name is one of the google.protobuf wrapper messages (Int64Value, ...),
// which carry one scalar in field 1, "value".
func isWrapper(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		return true
	}
	return false
}

// valueKind is the kind of a google.protobuf.Value.
type valueKind int

const (
	kindNull valueKind = iota
	kindNumber
	kindString
	kindBool
	kindStruct
	kindList
)

// Field numbers of google.protobuf.Value's "kind" oneof.
const (
	valueNullField   = 1
	valueNumberField = 2
	valueStringField = 3
	valueBoolField   = 4
	valueStructField = 5
	valueListField   = 6
)

// valueOf returns the kind of a google.protobuf.Value message and the set member's value (unset is null).
// It works by reflection, so it serves generated and dynamic messages alike.
func valueOf(m protoreflect.Message) (valueKind, protoreflect.Value) {
	var od protoreflect.OneofDescriptor
	if oneofs := m.Descriptor().Oneofs(); oneofs.Len() > 0 {
		od = oneofs.Get(0)
	}
	if od == nil {
		return kindNull, protoreflect.Value{}
	}
	fd := m.WhichOneof(od)
	if fd == nil {
		return kindNull, protoreflect.Value{}
	}
	v := m.Get(fd)
	switch fd.Number() {
	case valueNumberField:
		return kindNumber, v
	case valueStringField:
		return kindString, v
	case valueBoolField:
		return kindBool, v
	case valueStructField:
		return kindStruct, v
	case valueListField:
		return kindList, v
	}
	return kindNull, v
}

// structFields returns the "fields" map of a google.protobuf.Struct message.
func structFields(m protoreflect.Message) protoreflect.Map {
	return m.Get(m.Descriptor().Fields().ByNumber(1)).Map()
}

// listValues returns the "values" list of a google.protobuf.ListValue message.
func listValues(m protoreflect.Message) protoreflect.List {
	return m.Get(m.Descriptor().Fields().ByNumber(1)).List()
}

// formatTimestamp formats a google.protobuf.Timestamp message as TimeLayout in UTC; fractional
// seconds are dropped, as QingCloud requests carry whole seconds.
func formatTimestamp(m protoreflect.Message) (string, error) {
	fields := m.Descriptor().Fields()
	secs := m.Get(fields.ByNumber(1)).Int()
	nanos := m.Get(fields.ByNumber(2)).Int()
	const minSecs, maxSecs = -62135596800, 253402300799 // 0001-01-01 .. 9999-12-31T23:59:59
	if secs < minSecs || secs > maxSecs || nanos < 0 || nanos >= 1e9 {
		return "", fmt.Errorf("timestamp {seconds:%d nanos:%d} is outside 0001-01-01..9999-12-31", secs, nanos)
	}
	return time.Unix(secs, nanos).UTC().Format(TimeLayout), nil
}

// formatFloat formats a finite number the way QingCloud and JSON readers accept it: no exponent for
// ordinary values (1e-6 <= |f| < 1e21, like JavaScript), the shortest representation that round-trips,
// and "0" for both zeros. NaN and infinities are an error.
func formatFloat(f float64, bits int) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("number %v cannot be sent", f)
	}
	if f == 0 {
		return "0", nil
	}
	if a := math.Abs(f); a < 1e-6 || a >= 1e21 {
		return strconv.FormatFloat(f, 'g', -1, bits), nil
	}
	return strconv.FormatFloat(f, 'f', -1, bits), nil
}
