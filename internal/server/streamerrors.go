package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
)

// aip193Streams rewrites the error line of NDJSON streams into the same AIP-193 shape as unary errors.
// grpc-gateway ends a failed stream with {"error": google.rpc.Status} (numeric gRPC code, no status
// name); REST clients should parse one error shape, so the line becomes {"error": {"code": <HTTP
// status>, "message", "status": "NOT_FOUND", "details"}}. Other responses pass through untouched.
func aip193Streams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &streamErrorWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		sw.finish()
	})
}

// streamErrorWriter passes a stream through line by line (the gateway writes each message, then the
// delimiter, then flushes), rewriting the error line. A stream that fails before its first message is
// answered as application/json with the same error line; a body whose first write starts an error
// object is therefore handled line by line too (unary errors are already AIP-193 and pass unchanged).
type streamErrorWriter struct {
	http.ResponseWriter
	decided, lines bool
	buf            []byte
}

func (w *streamErrorWriter) decide(first []byte) {
	if !w.decided {
		w.decided = true
		w.lines = strings.HasPrefix(w.Header().Get("Content-Type"), StreamContentType) ||
			bytes.HasPrefix(first, []byte(`{"error":`))
	}
}

// Write implements http.ResponseWriter.
func (w *streamErrorWriter) Write(p []byte) (int, error) {
	w.decide(p)
	if !w.lines {
		return w.ResponseWriter.Write(p)
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.buf[:i+1]
		if _, err := w.ResponseWriter.Write(rewriteStreamError(line)); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
}

// Flush implements http.Flusher, so streamed lines leave at once.
func (w *streamErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *streamErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish writes what is left of an unterminated last line.
func (w *streamErrorWriter) finish() {
	if len(w.buf) > 0 {
		_, _ = w.ResponseWriter.Write(rewriteStreamError(w.buf))
		w.buf = nil
	}
}

// rewriteStreamError turns a {"error": google.rpc.Status} line into the AIP-193 shape; any other line
// is returned as it is.
func rewriteStreamError(line []byte) []byte {
	if !bytes.HasPrefix(bytes.TrimSpace(line), []byte(`{"error":`)) {
		return line
	}
	var in struct {
		Error struct {
			Code    *int32            `json:"code"`
			Message string            `json:"message"`
			Status  string            `json:"status"`
			Details []json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &in); err != nil || in.Error.Code == nil || in.Error.Status != "" {
		return line // not a google.rpc.Status line (already AIP-193, or not JSON)
	}
	c := codes.Code(*in.Error.Code)
	var out restError
	out.Error.Code = runtime.HTTPStatusFromCode(c)
	out.Error.Message = in.Error.Message
	out.Error.Status = code.Code_name[int32(c)]
	// The gateway wrote the details with the API's marshaler (proto names, default values); unary
	// errors spell them as protojson does by default (fieldViolations, no empty fields), so re-encode.
	for _, d := range in.Error.Details {
		var a anypb.Any
		if protojson.Unmarshal(d, &a) == nil {
			if b, err := protojson.Marshal(&a); err == nil {
				d = b
			}
		}
		out.Error.Details = append(out.Error.Details, d)
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return line
	}
	return append(b, '\n')
}
