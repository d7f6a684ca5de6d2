package telemetry

import (
	"context"
	"go.opentelemetry.io/otel/propagation"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
)

// maxFormPeek bounds how much of a POST form is read to find its action parameter.
const maxFormPeek = 64 << 10

// HTTPClient returns a client for backend.Config.HTTPClient whose transport is Transport(nil).
func (t *Telemetry) HTTPClient() *http.Client {
	return &http.Client{Transport: t.Transport(nil)}
}

// Transport wraps base (nil: http.DefaultTransport; the server passes backend.NewTransport) for the
// upstream QingCloud client:
//   - every request (attempt) is counted and timed by action, call class and HTTP status, and each
//     QingCloud answer by its ret_code (read from the body as the backend reads it, without buffering);
//   - user calls, and poll calls that belong to a trace, get an OpenTelemetry client span, and the W3C
//     traceparent header is sent upstream. The span records the URL without its query, because the
//     query of a GET is the signed request (access key id, signature).
//
// Error texts that would contain the signed query are scrubbed.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	traced := otelhttp.NewTransport(restoreQuery{next: base},
		otelhttp.WithTracerProvider(t.tp),
		// Only the trace context goes to QingCloud, never the caller-controlled W3C baggage.
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithFilter(func(r *http.Request) bool {
			return callclass.From(r.Context()) != callclass.Poll || trace.SpanContextFromContext(r.Context()).IsValid()
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if u, ok := r.Context().Value(upstreamKey{}).(*upstreamRequest); ok && u.action != "" {
				return "QingCloud " + u.action
			}
			return "QingCloud " + r.Method
		}),
	)
	return &upstreamTransport{m: t.metrics, next: traced}
}

type upstreamKey struct{}

// upstreamRequest travels in the request context from upstreamTransport to restoreQuery.
type upstreamRequest struct {
	query  string // the signed query, hidden from the tracing layer
	action string // the QingCloud action ("" when not found)
}

// upstreamTransport measures requests and hides their query from the tracing transport inside it.
type upstreamTransport struct {
	m    *metrics
	next http.RoundTripper
}

func (u *upstreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	info := &upstreamRequest{query: r.URL.RawQuery, action: requestAction(r)}
	label := OtherAction
	if info.action != "" {
		label = ActionLabel(info.action)
	}
	class := callclass.From(r.Context()).String()
	stripped := r.WithContext(context.WithValue(r.Context(), upstreamKey{}, info))
	bare := *r.URL
	bare.RawQuery = ""
	bare.ForceQuery = false
	stripped.URL = &bare

	start := time.Now()
	resp, err := u.next.RoundTrip(stripped)
	if err != nil {
		u.m.upRequests.WithLabelValues(label, class, "error").Inc()
		u.m.upSeconds.WithLabelValues(label, class).Observe(time.Since(start).Seconds())
		return nil, scrubError(err, info.query)
	}
	u.m.upRequests.WithLabelValues(label, class, codeLabel(resp.StatusCode)).Inc()
	status := resp.StatusCode
	resp.Body = &sniffBody{body: resp.Body, finish: func(retCode string) {
		u.m.upSeconds.WithLabelValues(label, class).Observe(time.Since(start).Seconds())
		if status == http.StatusOK && retCode != "" {
			u.m.upRetCodes.WithLabelValues(label, retCode).Inc()
		}
	}}
	return resp, nil
}

// requestAction finds the action parameter of a QingCloud request: in the query of a GET, in the
// form body of a POST (read through GetBody, so the body sent is untouched).
func requestAction(r *http.Request) string {
	if a := actionParam(r.URL.RawQuery); a != "" {
		return a
	}
	if r.GetBody == nil {
		return ""
	}
	body, err := r.GetBody()
	if err != nil || body == nil {
		return ""
	}
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, maxFormPeek))
	return actionParam(string(b))
}

// actionParam returns the value of the action parameter of a query string if it is a well-formed
// action name.
func actionParam(q string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != "action" {
			continue
		}
		if v, err := url.QueryUnescape(v); err == nil && wellFormedAction(v) {
			return v
		}
		return ""
	}
	return ""
}

// wellFormedAction matches QingCloud action names: PascalCase ASCII letters and digits, at most 80.
func wellFormedAction(s string) bool {
	if len(s) < 2 || len(s) > 80 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// restoreQuery puts the query back under the tracing transport and tags the client span.
type restoreQuery struct{ next http.RoundTripper }

func (q restoreQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	info, ok := r.Context().Value(upstreamKey{}).(*upstreamRequest)
	if !ok {
		return q.next.RoundTrip(r)
	}
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() && info.action != "" {
		span.SetAttributes(attribute.String("qingcloud.action", info.action))
	}
	if info.query == "" {
		return q.next.RoundTrip(r)
	}
	full := r.WithContext(r.Context())
	u := *r.URL
	u.RawQuery = info.query
	full.URL = &u
	return q.next.RoundTrip(full)
}

// scrubError hides the signed query in an error text; the error chain stays (errors.Is works).
func scrubError(err error, query string) error {
	msg := err.Error()
	scrubbed := msg
	if query != "" {
		scrubbed = strings.ReplaceAll(scrubbed, query, "[signed parameters]")
	}
	if i := strings.Index(scrubbed, "signature="); i >= 0 {
		scrubbed = scrubbed[:i] + "[redacted]"
	}
	if scrubbed == msg {
		return err
	}
	return &scrubbedError{msg: scrubbed, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// sniffBody passes an answer body through, finding its ret_code on the way, and calls finish once,
// at EOF or Close, with the ret_code ("" when none was found).
type sniffBody struct {
	body   io.ReadCloser
	finish func(retCode string)

	mu   sync.Mutex
	m    retCodeMatcher
	done bool
}

func (b *sniffBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.mu.Lock()
	b.m.feed(p[:n])
	b.mu.Unlock()
	if err == io.EOF {
		b.end()
	}
	return n, err
}

func (b *sniffBody) Close() error {
	b.end()
	return b.body.Close()
}

func (b *sniffBody) end() {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done = true
	code := b.m.result()
	b.mu.Unlock()
	b.finish(code)
}

// retCodeMatcher finds the first "ret_code": <integer> (also a quoted integer) in a JSON stream fed
// in pieces, without buffering the stream.
type retCodeMatcher struct {
	phase  int // 0 key, 1 before colon, 2 before value, 3 digits, 4 found
	i      int // bytes of the key matched
	quoted bool
	neg    bool
	n      int // digits read
	code   int
}

const retCodeKey = `"ret_code"`

func (m *retCodeMatcher) feed(p []byte) {
	for _, c := range p {
		if m.phase == 4 {
			return
		}
		m.step(c)
	}
}

func (m *retCodeMatcher) step(c byte) {
	switch m.phase {
	case 0:
		switch {
		case c == retCodeKey[m.i]:
			m.i++
			if m.i == len(retCodeKey) {
				m.phase, m.i = 1, 0
			}
		case c == '"':
			m.i = 1
		default:
			m.i = 0
		}
	case 1:
		switch c {
		case ' ', '\t', '\r', '\n':
		case ':':
			m.phase = 2
		default:
			m.reset(c)
		}
	case 2:
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '"' && !m.quoted && !m.neg:
			m.quoted = true
		case c == '-' && !m.neg:
			m.neg = true
		case c >= '0' && c <= '9':
			m.phase, m.n, m.code = 3, 1, int(c-'0')
		default:
			m.reset(c)
		}
	case 3:
		if c >= '0' && c <= '9' {
			if m.n >= 9 {
				m.reset(c)
				return
			}
			m.n++
			m.code = m.code*10 + int(c-'0')
			return
		}
		m.phase = 4
	}
}

// reset restarts the search at c.
func (m *retCodeMatcher) reset(c byte) {
	*m = retCodeMatcher{}
	if c == '"' {
		m.i = 1
	}
}

// result returns the ret_code found, as a label value, or "".
func (m *retCodeMatcher) result() string {
	if m.phase != 3 && m.phase != 4 {
		return ""
	}
	if m.neg {
		return strconv.Itoa(-m.code)
	}
	return strconv.Itoa(m.code)
}
