package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes bounds a POST body (CreateServerCertificate carries a certificate and a key).
const maxBodyBytes = 8 << 20

// maxParams bounds the number of parameters of one request.
const maxParams = 4096

// apiError is a QingCloud error answer: HTTP 200 with {"ret_code":code,"message":msg}.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("ret_code %d: %s", e.code, e.msg) }

func newError(code int, name, format string, args ...any) *apiError {
	return &apiError{code: code, msg: name + ", " + fmt.Sprintf(format, args...)}
}

// errMissing is 1100 for a missing required parameter.
func errMissing(name string) *apiError {
	return newError(1100, "ParameterError", "missing required parameter [%s]", name)
}

// errInvalid is 1100 for a malformed parameter value.
func errInvalid(format string, args ...any) *apiError {
	return newError(1100, "InvalidParameterValue", format, args...)
}

// errNotFound is 2100 for an unknown resource in a mutation.
func errNotFound(id string) *apiError {
	return newError(2100, "ResourceNotFound", "resource [%s] not found", id)
}

// errDenied is 1400, also used for resources in the wrong state.
func errDenied(format string, args ...any) *apiError {
	return newError(1400, "PermissionDenied", format, args...)
}

var errUnknownAction = &apiError{code: 1400, msg: "PermissionDenied, can't handle this request"}

// result is the body of a successful answer, without action and ret_code.
type result map[string]any

// jtime is a timestamp that marshals as RFC 3339 UTC with whole seconds, or null when zero.
type jtime time.Time

func (t jtime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(timeLayout) + `"`), nil
}

const timeLayout = "2006-01-02T15:04:05Z"

// parseRequest decodes the parameters of an API request: the query string, and for POST also an
// application/x-www-form-urlencoded body. Values are form-decoded ('+' is a space). A parameter
// that occurs twice, an empty name, a bad escape or a body of another content type is an error.
func parseRequest(method, rawQuery, contentType string, body []byte) (map[string]string, error) {
	params := make(map[string]string)
	if err := decodeForm(rawQuery, params); err != nil {
		return nil, err
	}
	if method == http.MethodPost && len(bytes.TrimSpace(body)) > 0 {
		mt := "application/x-www-form-urlencoded"
		if contentType != "" {
			var err error
			if mt, _, err = mime.ParseMediaType(contentType); err != nil {
				return nil, fmt.Errorf("bad Content-Type %q", contentType)
			}
		}
		if mt != "application/x-www-form-urlencoded" {
			return nil, fmt.Errorf("unsupported Content-Type %q, want application/x-www-form-urlencoded", mt)
		}
		if err := decodeForm(string(body), params); err != nil {
			return nil, err
		}
	}
	return params, nil
}

func decodeForm(s string, params map[string]string) error {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		pair = strings.TrimRight(pair, "\r\n")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return fmt.Errorf("bad escape in parameter name %q", clip(rawKey))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return fmt.Errorf("bad escape in value of parameter [%s]", clip(key))
		}
		if key == "" {
			return errors.New("empty parameter name")
		}
		if _, dup := params[key]; dup {
			return fmt.Errorf("parameter [%s] is repeated", clip(key))
		}
		if len(params) >= maxParams {
			return fmt.Errorf("more than %d parameters", maxParams)
		}
		params[key] = value
	}
	return nil
}

func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// readParams reads and decodes the parameters of r.
func readParams(r *http.Request) (map[string]string, *apiError) {
	var body []byte
	if r.Method == http.MethodPost && r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil {
			return nil, errInvalid("can not read request body")
		}
		if len(b) > maxBodyBytes {
			return nil, errInvalid("request body larger than %d bytes", maxBodyBytes)
		}
		body = b
	}
	params, err := parseRequest(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, newError(1100, "ParameterError", "%s", err.Error())
	}
	return params, nil
}

// encodeSuccess renders a successful answer for action, into a buffer of answerBufs.
func encodeSuccess(action string, res result) ([]byte, error) {
	out := make(map[string]any, len(res)+2)
	for k, v := range res {
		out[k] = v
	}
	out["action"] = action + "Response"
	out["ret_code"] = 0
	b, err := appendJSON((*answerBufs.Get().(*[]byte))[:0], out)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// answerBufs are the buffers answers are written into, given back once written to the client: a
// page of 100 verbose instances is 75 kB, which spent more time growing a fresh buffer than in
// writing some of its items.
var answerBufs = sync.Pool{New: func() any { return new([]byte) }}

// releaseAnswer gives the buffer of an answer of encodeSuccess back, when it is not too large to
// keep.
func releaseAnswer(b []byte) {
	if cap(b) <= 1<<20 {
		b = b[:0]
		answerBufs.Put(&b)
	}
}

// encodeError renders an error answer.
func encodeError(e *apiError) []byte {
	b, _ := json.Marshal(map[string]any{"ret_code": e.code, "message": e.msg})
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, encodeError(newError(5000, "InternalError", "%v", err))
	}
	writeBody(w, status, b)
}

// contentType is exactly what QingCloud sends: sdk-go before 2023 (the version the Terraform provider
// pins) decodes a body only when the header is exactly this, without a charset parameter.
const contentType = "application/json"

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
