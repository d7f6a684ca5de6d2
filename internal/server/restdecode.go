package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
)

// MaxJSONDepth bounds how deeply a REST request body may nest objects and lists. QingCloud's
// parameters nest a few levels; a deeper body is refused with INVALID_ARGUMENT before it is decoded
// (protobuf would refuse it later with a bare INTERNAL error).
const MaxJSONDepth = 64

// recursionLimit is protojson's limit for MaxJSONDepth: a JSON level of a Struct parameter is two
// message levels (Struct, Value).
const recursionLimit = 2*MaxJSONDepth + 2

// The gateway turns a decoding error into a bare INVALID_ARGUMENT carrying only its text, so the
// decoder leaves what it found on the request body it read (restBody, put there by HTTPHandler), where
// writeError finds it: every bad field named, with the type it must have.

// restBody is a REST request's body, carrying the violations the JSON decoder found in it.
type restBody struct {
	io.ReadCloser
	violations []*errdetails.BadRequest_FieldViolation
}

// keepViolations wraps every request body in a restBody.
func keepViolations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &restBody{ReadCloser: r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

// violationsOf returns the violations the decoder left on r's body, if any.
func violationsOf(r *http.Request) []*errdetails.BadRequest_FieldViolation {
	if r == nil {
		return nil
	}
	if b, ok := r.Body.(*restBody); ok {
		return b.violations
	}
	return nil
}

// NewDecoder implements runtime.Marshaler: grpc-gateway's JSON decoding, with errors that name
// each bad field and the type it must have instead of protojson's syntax errors.
func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		msg, ok := v.(proto.Message)
		if !ok {
			return m.JSONPb.NewDecoder(r).Decode(v)
		}
		var raw json.RawMessage
		if err := json.NewDecoder(r).Decode(&raw); err != nil {
			return err
		}
		err := m.UnmarshalOptions.Unmarshal(raw, msg)
		if err == nil {
			return nil
		}
		vs := diagnose(raw, msg.ProtoReflect().Descriptor(), "", m.UnmarshalOptions, 0)
		if len(vs) == 0 {
			vs = []*errdetails.BadRequest_FieldViolation{qcerr.Violation("body", "the body is not a JSON object of the request's fields: "+qcerr.Clip(err.Error(), maxGatewayMessage))}
		}
		if b, ok := r.(*restBody); ok {
			b.violations = vs
		}
		msgs := make([]string, len(vs))
		for i, v := range vs {
			msgs[i] = v.GetDescription()
		}
		return errors.New(strings.Join(msgs, "; "))
	})
}

// diagnose finds what is wrong in raw, a JSON value meant to be a message of type md: each field that
// is unknown or does not decode as its type, under prefix (e.g. "rules.2.").
func diagnose(raw []byte, md protoreflect.MessageDescriptor, prefix string, opts protojson.UnmarshalOptions, depth int) []*errdetails.BadRequest_FieldViolation {
	if depth > MaxJSONDepth || jsonDepth(raw) > MaxJSONDepth {
		return []*errdetails.BadRequest_FieldViolation{qcerr.Violation(strings.TrimSuffix(prefix, ".")+orBody(prefix),
			fmt.Sprintf("the JSON is nested more than %d levels deep", MaxJSONDepth))}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil // not an object: the caller's message says what the body must be
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*errdetails.BadRequest_FieldViolation
	for _, k := range keys {
		name := prefix + qcerr.Clip(k, qcerr.MaxEcho)
		if k == "" {
			name = prefix + `""`
		}
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			fd = md.Fields().ByJSONName(k)
		}
		if fd == nil {
			out = append(out, qcerr.Violation(name, fmt.Sprintf("%s is not a field of %s", name, md.Name())))
			continue
		}
		one, _ := json.Marshal(map[string]json.RawMessage{string(fd.Name()): obj[k]})
		if opts.Unmarshal(one, dynamicpb.NewMessage(md)) == nil {
			continue
		}
		// A message (or list of messages) whose value has the right shape: name the bad field inside.
		v := obj[k]
		if fd.Kind() == protoreflect.MessageKind && !fd.IsMap() && fd.Message().FullName().Parent() != "google.protobuf" {
			if fd.IsList() {
				var items []json.RawMessage
				if json.Unmarshal(v, &items) == nil {
					var inner []*errdetails.BadRequest_FieldViolation
					for i, it := range items {
						inner = append(inner, diagnose(it, fd.Message(), fmt.Sprintf("%s.%d.", name, i+1), opts, depth+1)...)
					}
					if len(inner) > 0 {
						out = append(out, inner...)
						continue
					}
				}
			} else if inner := diagnose(v, fd.Message(), name+".", opts, depth+1); len(inner) > 0 {
				out = append(out, inner...)
				continue
			}
		}
		out = append(out, qcerr.Violation(name, fmt.Sprintf("%s must be %s, not %s", name, article(typeName(fd)), jsonKind(v))))
	}
	return out
}

func orBody(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return ""
}

// jsonDepth returns how deeply raw nests objects and lists.
func jsonDepth(raw []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// jsonKind names the kind of a JSON value, for "must be a list of strings, not a string".
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// article puts "a" or "an" before a type name.
func article(t string) string {
	if t != "" && strings.ContainsRune("aeiou", rune(t[0])) {
		return "an " + t
	}
	return "a " + t
}

// queryParser is grpc-gateway's query parameter parser, refusing parameters that name no field of the
// request (as unknown body fields are refused), rather than ignoring them: ?instanse=i-x must not
// list every instance.
type queryParser struct{ runtime.DefaultQueryParser }

// Parse implements runtime.QueryParameterParser.
func (p *queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	md := msg.ProtoReflect().Descriptor()
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []string
	for _, key := range keys {
		path, _, _ := strings.Cut(key, "[") // map entries: name[key]=value
		fd := fieldAt(md, strings.Split(path, "."))
		if fd == nil {
			errs = append(errs, fmt.Sprintf("unknown query parameter %q: %s has no such field", qcerr.Clip(key, qcerr.MaxEcho), md.Name()))
			continue
		}
		// Each parameter alone, so that a bad value is named with the type it must have rather
		// than strconv's words.
		if p.DefaultQueryParser.Parse(msg.ProtoReflect().New().Interface(), url.Values{key: values[key]}, filter) != nil {
			errs = append(errs, fmt.Sprintf("query parameter %q must be %s", qcerr.Clip(key, qcerr.MaxEcho), article(typeName(fd))))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return p.DefaultQueryParser.Parse(msg, values, filter)
}

// fieldAt returns the field path names (by proto or JSON names) in md, nested messages included, or
// nil when there is none.
func fieldAt(md protoreflect.MessageDescriptor, path []string) protoreflect.FieldDescriptor {
	for i, part := range path {
		fd := md.Fields().ByName(protoreflect.Name(part))
		if fd == nil {
			fd = md.Fields().ByJSONName(part)
		}
		if fd == nil {
			return nil
		}
		if i == len(path)-1 {
			return fd
		}
		if fd.Kind() != protoreflect.MessageKind {
			return nil
		}
		md = fd.Message()
	}
	return nil
}
