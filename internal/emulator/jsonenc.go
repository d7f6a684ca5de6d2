package emulator

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/datetime"
)

// appendJSON appends the JSON of an answer value to b, byte for byte what encoding/json's Marshal
// writes (keys of maps sorted, HTML characters escaped), without its reflection: answers are trees of
// map[string]any, []any and scalars, and a page of 100 verbose instances spent more time in
// Marshal's reflection and map sorting than in building the answer. It writes messages (object,
// fieldValue) itself too (render.go). Types it does not know are handed to encoding/json.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case jtime:
		return appendTime(b, time.Time(v)), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendObject(b, v)
	case result:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendObject(b, v)
	case *object:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendObjectValue(b, v)
	case fieldValue:
		return appendField(b, v.fd, v.v)
	case []any:
		return appendArray(b, v)
	case []*object:
		return appendArray(b, v)
	case []map[string]any:
		return appendArray(b, v)
	case []tagOut:
		return appendEach(b, v, appendTag), nil
	case []string:
		return appendEach(b, v, appendString), nil
	case []byte:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// appendArray appends a JSON array of l's elements, null for a nil slice.
func appendArray[T any](b []byte, l []T) ([]byte, error) {
	if l == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, x := range l {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSON(b, x); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendEach appends a JSON array of l's elements, each written by elem (which cannot fail, unlike
// appendArray's appendJSON), or null for a nil slice.
func appendEach[T any](b []byte, l []T, elem func([]byte, T) []byte) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(b, x)
	}
	return append(b, ']')
}

// appendTag appends a tag as the object encoding/json writes for a tagOut.
func appendTag(b []byte, t tagOut) []byte {
	b = append(b, `{"tag_id":`...)
	b = appendString(b, t.TagID)
	b = append(b, `,"tag_name":`...)
	b = appendString(b, t.TagName)
	b = append(b, `,"color":`...)
	b = appendString(b, t.Color)
	return append(b, '}')
}

// appendObject appends a JSON object with m's keys in sorted order.
func appendObject[M ~map[string]any](b []byte, m M) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendJSON(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendTime appends t as a jtime: a string in timeLayout in UTC, or null when t is zero.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	secs := t.Unix()
	if secs < datetime.MinSeconds || secs > datetime.MaxSeconds {
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	b = datetime.Append(append(b, '"'), secs)
	return append(b, 'Z', '"')
}

const hexDigits = "0123456789abcdef"

// plainASCII are the ASCII bytes a JSON string holds as they are: not control characters, quotes,
// backslashes or the HTML characters encoding/json escapes.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaped as encoding/json escapes it: quotes, backslashes
// and control characters, <, > and & (as \u003c, \u003e, \u0026), U+2028 and U+2029, and invalid
// UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
