package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	lrogw "github.com/qingcloud-grpc/qingcloud-grpc/gen/google/longrunning"
	"github.com/qingcloud-grpc/qingcloud-grpc/gen/openapiv2"
	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/idempotency"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/operations"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/restjson"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
)

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// forwardedHeaders are the HTTP headers the gateway passes on to gRPC as metadata, besides
// grpc-gateway's defaults (Authorization, Grpc-Metadata-*, Grpc-Timeout as the deadline, standard
// headers). Authorization is forwarded by grpc-gateway itself, once; Grpc-Metadata-Authorization is
// refused so that the Authorization header is the only source of a REST caller's credentials.
// Trace context (traceparent, tracestate) is not among them: the otelgrpc client handler of the
// in-process connection sends the context of the HTTP server span, which continues the caller's.
// Idempotency-Key is forwarded as the idempotency-key metadata (package idempotency).
var forwardedHeaders = []string{telemetry.RequestIDHeader, idempotency.MetadataKey}

// incomingHeader maps an HTTP request header to gRPC metadata: forwardedHeaders under their own
// (lower case) names, Grpc-Metadata-Authorization nowhere, the rest as grpc-gateway's default does.
// It is called for every header of every request, hence no lower-casing copy of each name.
func incomingHeader(k string) (string, bool) {
	for _, f := range forwardedHeaders {
		if strings.EqualFold(k, f) {
			return f, true
		}
	}
	if strings.EqualFold(k, "grpc-metadata-authorization") {
		return "", false
	}
	return runtime.DefaultHeaderMatcher(k)
}

// plainHeaders are the response header metadata a REST caller gets as plain HTTP headers (not
// Grpc-Metadata-<key>): the operation of a delayed action, and the mark of a replayed answer.
var plainHeaders = map[string]string{
	operations.HeaderKey:       "X-Qingcloud-Operation",
	idempotency.ReplayedHeader: "Idempotent-Replayed",
}

// MaxRequestBodyBytes bounds the body of a REST request. grpc-gateway decodes the body before the
// call reaches gRPC, so before the interceptors check the caller's token: without a bound anyone who
// reaches the REST port could make the server buffer a body of any size. A request message is
// refused by gRPC above 4 MiB anyway; its JSON form may be larger (base64, escapes), hence 8 MiB.
const MaxRequestBodyBytes = 8 << 20

// untracedPaths get no HTTP server span: scrapes and probes would drown the traces of real calls.
var untracedPaths = []string{"/metrics", "/healthz", "/openapi.json"}

// HTTPHandler returns the REST API: every RPC through grpc-gateway (JSON in QingCloud's snake_case
// names), GET /openapi.json, GET /healthz and GET /metrics (Prometheus). The gateway reaches the gRPC
// server in-process, through the same interceptors as gRPC clients. Every request gets a request id
// (X-Request-Id, also on the answer) and, unless it is a scrape or a probe, a server span that the
// gRPC and upstream spans of the call descend from.
func (s *Server) HTTPHandler(ctx context.Context) (http.Handler, error) {
	conn, err := s.dialInProcess()
	if err != nil {
		return nil, fmt.Errorf("server: dial in-process gRPC: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &jsonMarshaler{runtime.JSONPb{
			MarshalOptions:   restjson.Options,
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false, RecursionLimit: recursionLimit},
		}}),
		runtime.WithErrorHandler(writeError),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.SetQueryParameterParser(&queryParser{}), // process-wide in grpc-gateway; ours is the only gateway
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithHealthzEndpoint(healthpb.NewHealthClient(conn)),
		// An answer is marshalled whole before it is written: saying its length spares net/http
		// the chunked encoding of answers over its 2 KiB buffer, and the caller the de-chunking.
		runtime.WithWriteContentLength(),
	)
	for _, register := range iaasv1.GatewayHandlers {
		if err := register(ctx, gw, conn); err != nil {
			return nil, fmt.Errorf("server: register gateway handler: %w", err)
		}
	}
	if s.cfg.Operations != nil {
		if err := lrogw.RegisterOperationsHandler(ctx, gw, conn); err != nil {
			return nil, fmt.Errorf("server: register the operations gateway handler: %w", err)
		}
	}
	mux := http.NewServeMux()
	if !s.cfg.MetricsElsewhere {
		mux.Handle("GET /metrics", s.tel.MetricsHandler())
	}
	doc, err := openAPIDocument()
	if err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	api := keepViolations(aip193Streams(gw))
	mux.Handle("/", api)
	return s.tel.HTTPHandler(s.checkCaller(limitBody(s.limitBodyTime(apiFirst(mux, api)))), s.log, untracedPaths...), nil
}

// apiFirst sends a request for a clean path under /v1/ straight to api, the handler mux has for
// "/" and would pick for it too (mux's other patterns are fixed paths outside /v1/), sparing every
// API call mux's routing; anything else (other paths, paths mux would clean and redirect, CONNECT)
// goes to mux.
func apiFirst(mux *http.ServeMux, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; strings.HasPrefix(p, "/v1/") && r.Method != http.MethodConnect && cleanPath(p) {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath reports whether http.ServeMux would leave p as it is (path.Clean, a final slash kept).
func cleanPath(p string) bool {
	return !strings.Contains(p, "//") && !strings.Contains(p, "/./") && !strings.Contains(p, "/../") &&
		!strings.HasSuffix(p, "/.") && !strings.HasSuffix(p, "/..")
}

// OpenAPITitle and OpenAPIVersion are the info of the served OpenAPI document. protoc-gen-openapiv2
// takes them from the first proto file it reads (its path, "version not set") when no file sets them.
const (
	OpenAPITitle   = "qingcloud-grpc: QingCloud IaaS API"
	OpenAPIVersion = "v1"
)

// openAPIDocument is the generated OpenAPI document with its info set.
func openAPIDocument() ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(openapiv2.Document, &doc); err != nil {
		return nil, fmt.Errorf("server: the embedded OpenAPI document: %w", err)
	}
	info := map[string]any{}
	if raw, ok := doc["info"]; ok {
		_ = json.Unmarshal(raw, &info)
	}
	info["title"] = OpenAPITitle
	info["version"] = OpenAPIVersion
	info["description"] = "Every QingCloud IaaS action as REST/JSON, with QingCloud's own field names; the same API is served over gRPC (package qingcloud.iaas.v1)."
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	doc["info"] = b
	return json.Marshal(doc)
}

// openPaths are served to GET requests without a token: probes, scrapes and the public schema.
var openPaths = map[string]bool{"/healthz": true, "/openapi.json": true, "/metrics": true}

// checkCaller answers a request that Config.CheckCaller refuses without reading its body (net/http
// then closes the connection rather than drain a large body), so that a caller without a valid token
// never makes the gateway buffer or decode anything. GET requests for openPaths pass.
func (s *Server) checkCaller(next http.Handler) http.Handler {
	if s.cfg.CheckCaller == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !((r.Method == http.MethodGet || r.Method == http.MethodHead) && openPaths[r.URL.Path]) {
			if err := s.cfg.CheckCaller(r); err != nil {
				writeError(r.Context(), nil, nil, w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses request bodies larger than MaxRequestBodyBytes: at once when the declared length
// says so, else when reading passes the limit (grpc-gateway then answers INVALID_ARGUMENT "http:
// request body too large"). Either way the server stops reading and closes the connection.
//
// A request without a body (net/http gives it http.NoBody) passes as it is, so that the layers
// below, which wrap a body (limitBodyTime, keepViolations), have nothing to do for a GET either.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > MaxRequestBodyBytes {
			writeError(r.Context(), nil, nil, w, r, qcerr.BadRequest(qcerr.Violation("body",
				fmt.Sprintf("the request body is too large: %d bytes, at most %d", r.ContentLength, MaxRequestBodyBytes))))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// outgoingHeader maps gRPC response header metadata to HTTP headers: Grpc-Metadata-<key>, except the
// request id, which the HTTP layer has already set as X-Request-Id.
func outgoingHeader(k string) (string, bool) {
	if strings.EqualFold(k, telemetry.RequestIDHeader) {
		return "", false
	}
	if h, ok := plainHeaders[strings.ToLower(k)]; ok {
		return h, true
	}
	return runtime.MetadataHeaderPrefix + k, true
}

// StreamContentType is the content type of server-streaming REST responses: one JSON object per line,
// {"result": {...}} for each message and a final AIP-193 {"error": {...}} line if the stream fails.
const StreamContentType = "application/x-ndjson"

// jsonMarshaler is grpc-gateway's JSONPb with QingCloud's snake_case names, announcing NDJSON for streams.
// It writes messages with package restjson: the same JSON as JSONPb's protojson, without its reflection.
type jsonMarshaler struct{ runtime.JSONPb }

// Marshal implements runtime.Marshaler.
func (j *jsonMarshaler) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok && m != nil {
		return restjson.Marshal(m)
	}
	return j.JSONPb.Marshal(v)
}

// StreamContentType implements runtime.StreamContentType.
func (*jsonMarshaler) StreamContentType(any) string { return StreamContentType }

// restError is the AIP-193 JSON error body: {"error": {"code", "message", "status", "details"}}.
type restError struct {
	Error struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details,omitempty"`
	} `json:"error"`
}

// httpStatus is the HTTP status of an error: grpc-gateway's mapping, except 422 Unprocessable Content
// for an idempotency key reused for another request (the IETF Idempotency-Key draft's answer).
func httpStatus(st *status.Status) int {
	if qcerr.Info(st.Err()).GetReason() == idempotency.ReasonKeyReused {
		return http.StatusUnprocessableEntity
	}
	return runtime.HTTPStatusFromCode(st.Code())
}

// writeError renders a gRPC status as an AIP-193 error with the matching HTTP status.
func writeError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	if vs := violationsOf(r); len(vs) > 0 && st.Code() == codes.InvalidArgument && len(st.Details()) == 0 {
		st = status.Convert(qcerr.BadRequest(vs...)) // the body decoder's findings, field by field
	}
	st = withErrorInfo(st)
	writeStatus(ctx, w, st, httpStatus(st))
}

// routingError answers a request that matches no route: 404, or 405 (with Allow) when the path is an
// RPC's under another method. grpc-gateway would answer 405 as 501 UNIMPLEMENTED.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	allowed := routeMethods()[r.URL.Path]
	msg := fmt.Sprintf("%s is not allowed on %s", r.Method, qcerr.Clip(r.URL.Path, qcerr.MaxEcho))
	if len(allowed) > 0 {
		msg += ": use " + strings.Join(allowed, " or ")
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	writeStatus(ctx, w, qcerr.Status(codes.Unimplemented, "METHOD_NOT_ALLOWED", msg, nil), http.StatusMethodNotAllowed)
}

// routeMethods maps each fixed REST path of the API to the HTTP methods that reach it.
var routeMethods = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	add := func(rule *annotations.HttpRule) {
		var method, path string
		switch p := rule.GetPattern().(type) {
		case *annotations.HttpRule_Get:
			method, path = http.MethodGet, p.Get
		case *annotations.HttpRule_Post:
			method, path = http.MethodPost, p.Post
		case *annotations.HttpRule_Put:
			method, path = http.MethodPut, p.Put
		case *annotations.HttpRule_Delete:
			method, path = http.MethodDelete, p.Delete
		case *annotations.HttpRule_Patch:
			method, path = http.MethodPatch, p.Patch
		}
		if path != "" && !strings.Contains(path, "{") && !slices.Contains(out[path], method) {
			out[path] = append(out[path], method)
		}
	}
	protoregistry.GlobalFiles.RangeFilesByPackage(api.Package, func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			ms := fd.Services().Get(i).Methods()
			for j := 0; j < ms.Len(); j++ {
				rule, _ := proto.GetExtension(ms.Get(j).Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					continue
				}
				add(rule)
				for _, b := range rule.GetAdditionalBindings() {
					add(b)
				}
			}
		}
		return true
	})
	return out
})

// writeStatus writes st as an AIP-193 error body with the HTTP status httpCode.
func writeStatus(ctx context.Context, w http.ResponseWriter, st *status.Status, httpCode int) {
	var body restError
	body.Error.Code = httpCode
	body.Error.Message = st.Message()
	body.Error.Status = code.Code_name[int32(st.Code())]
	for _, d := range st.Proto().GetDetails() {
		b, err := protojson.Marshal(d)
		if err != nil {
			continue
		}
		body.Error.Details = append(body.Error.Details, b)
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		for k, vs := range md.HeaderMD {
			h, ok := outgoingHeader(k)
			if !ok {
				continue
			}
			for _, v := range vs {
				w.Header().Add(textproto.CanonicalMIMEHeaderKey(h), v)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(body.Error.Code)
	_ = json.NewEncoder(w).Encode(&body)
}
