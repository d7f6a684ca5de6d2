// Package backend is the one upstream path of qingcloud-grpc: it encodes a request message into
// QingCloud parameters ([codec.Encode]), signs them (signature v1, [signer.Signer]), sends them through
// one shared http.Client with timeouts and the caller's deadline, checks the answer, and decodes the
// JSON into the response message ([codec.Decode]).
//
// Around each call it keeps the upstream discipline of docs/upstream.md:
//
//   - a default deadline for calls that bring none (Config.DefaultTimeout) and a timeout per attempt;
//   - one retry policy ([Policy]): read-only actions are retried on transient failures with jittered
//     exponential backoff inside the deadline; a mutation is repeated only when the request provably
//     never left (or QingCloud refused it for clock skew), so nothing is ever applied twice by us;
//   - a quota budget per access key (package budget) that every attempt spends, shared by user calls
//     and watch polling (package callclass) with a reserved share each; when it is spent the caller
//     gets RESOURCE_EXHAUSTED with RetryInfo at once and QingCloud never sees a request to answer 2500;
//   - coalescing: identical read-only calls in flight at the same time share one upstream call;
//   - every call, budget refusal and upstream attempt (action, ret_code, outcome, duration) reported
//     to Config.Observer, for metrics.
//
// Every failure is a gRPC status error built by package qcerr: a QingCloud error answer (ret_code ≠ 0)
// by [qcerr.FromRetCode]; anything else upstream (connection, HTTP status, content type, truncated or
// oversized body, missing ret_code) is UNAVAILABLE by [qcerr.Transport], saying whether the request may
// have been applied; the caller's cancellation and deadline by [qcerr.Context]. Errors and logs never
// contain the signed URL, the signature or the secret key.
package backend

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/api"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/callclass"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/codec"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/qcerr"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

const (
	// DefaultEndpoint is QingCloud's public IaaS API endpoint.
	DefaultEndpoint = "https://api.qingcloud.com/iaas/"
	// DefaultAttemptTimeout bounds one upstream attempt when the call's deadline is not earlier.
	DefaultAttemptTimeout = 30 * time.Second
	// DefaultCallTimeout is the deadline of a call whose context brings none, retries included.
	DefaultCallTimeout = 60 * time.Second
	// DefaultMaxAttempts caps the upstream attempts of one call (the first and its retries).
	DefaultMaxAttempts = 5
	// DefaultRetryBaseDelay is the first backoff step of a retry.
	DefaultRetryBaseDelay = 200 * time.Millisecond
	// DefaultRetryMaxDelay caps the backoff step.
	DefaultRetryMaxDelay = 5 * time.Second
	// DefaultDialTimeout, DefaultTLSHandshakeTimeout and DefaultResponseHeaderTimeout are the
	// connection timeouts of the http.Client made when Config.HTTPClient is nil.
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	// DefaultUserAgent is sent when Config.UserAgent is empty.
	DefaultUserAgent = "qingcloud-grpc"
	// MaxResponseBytes is the largest upstream answer read; a larger one is an error.
	MaxResponseBytes = 32 << 20
	// MaxURLBytes bounds the URL of a GET request (endpoint and signed query): a request whose
	// parameters make a longer one is refused with INVALID_ARGUMENT before anything is sent or any
	// quota is spent. Front ends refuse long request lines (HTTP 414 or 431) and QingCloud's own SDKs
	// send GET only, so a longer request could never succeed.
	MaxURLBytes = 16 << 10
)

// Config configures a Client.
type Config struct {
	// Endpoint is the API URL, e.g. "https://api.qingcloud.com/iaas/" or the emulator's
	// "http://127.0.0.1:7780/iaas/". Its path is signed exactly as sent. Required.
	Endpoint string
	// Credentials sign every request. Both keys are required.
	Credentials signer.Credentials
	// SignatureMethod is HmacSHA256 (the default when empty) or HmacSHA1.
	SignatureMethod string
	// HTTPClient sends the requests. nil means one client shared by all Clients with the default
	// connection timeouts below (or a client of the Client's own when any is set): idle connections
	// reused, no overall timeout (the deadline comes from the context). A given client is copied;
	// redirects are never followed, since the signature would travel to wherever the redirect points.
	//
	// A given client's transport must honour the request's net/http/httptrace hooks (http.Transport
	// and wrappers that pass the request on, like otelhttp, do): the retry policy learns from them
	// whether a mutation may have been sent, and a transport that hides them would make every failed
	// mutation look unsent, and so retried.
	HTTPClient *http.Client
	// DialTimeout, TLSHandshakeTimeout and ResponseHeaderTimeout configure the http.Client made when
	// HTTPClient is nil; 0 means 5 s, 5 s and 30 s. They are ignored with HTTPClient.
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// Timeout bounds one upstream attempt when the call's deadline is not earlier; 0 means 30 s.
	Timeout time.Duration
	// DefaultTimeout is the deadline of a call whose context has none, retries included; 0 means
	// 60 s, a negative value means no default deadline.
	DefaultTimeout time.Duration
	// MaxAttempts caps the upstream attempts of one call, the first included; 0 means 5, 1 turns
	// retries off (including the 1300 re-sign).
	MaxAttempts int
	// RetryBaseDelay is the first backoff step (doubled per retry, capped by RetryMaxDelay, half of
	// it random); 0 means 200 ms. RetryMaxDelay 0 means 5 s.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// Budget is the quota budget of the access key, spent by every upstream attempt. Share one
	// Budget between all Clients of the same key (budget.Registry.For). nil means a budget of the
	// Client's own with budget.Config defaults (QingCloud's 2000 requests per 3600 s); use
	// budget.Unlimited() to only count.
	Budget *budget.Budget
	// DisableCoalescing makes every read-only call send its own request even when an identical one
	// is in flight.
	DisableCoalescing bool
	// UserAgent is the User-Agent header; empty means "qingcloud-grpc".
	UserAgent string
	// Logger receives one debug line per call and warnings for upstream trouble; never parameters,
	// URLs or credentials. nil discards.
	Logger *slog.Logger
	// Observer is told of every call, budget refusal and upstream attempt, for metrics (package
	// telemetry provides one per credential profile). nil reports nothing.
	Observer Observer
}

// Client calls QingCloud. It is safe for concurrent use.
type Client struct {
	endpoint    url.URL // without query
	endpointStr string  // endpoint.String()
	endpointLen int     // len(endpointStr)
	getURL      url.URL // endpointStr parsed, as http.NewRequest would: copied by every GET
	host        string  // the Host of a request to the endpoint (http.NewRequest's)
	path        string  // the path that is signed (as sent)
	signer      signer.Signer
	http        *http.Client
	timeout     time.Duration // per attempt
	callTimeout time.Duration // default deadline; <= 0: none
	maxAttempts int
	retryBase   time.Duration
	retryMax    time.Duration
	budget      *budget.Budget
	flights     *flights // nil: coalescing off
	obs         Observer
	userAgent   string
	log         *slog.Logger

	warned sync.Map // action -> struct{}: decode mismatches already logged at warning level
}

// New validates cfg and returns a Client. Errors name the setting at fault.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Endpoint) == "" {
		return nil, errors.New("backend: Config.Endpoint is empty: set the QingCloud API URL, e.g. " + DefaultEndpoint)
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("backend: Config.Endpoint is not a URL: %v", unwrapURLError(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("backend: Config.Endpoint %q must be an http or https URL", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("backend: Config.Endpoint %q has no host", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("backend: Config.Endpoint %q must not carry user information; set Config.Credentials", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("backend: Config.Endpoint %q must not have a query or fragment", u.Redacted())
	}
	if u.Path == "" {
		u.Path = "/"
		u.RawPath = ""
	}
	if cfg.Credentials.AccessKeyID == "" {
		return nil, errors.New("backend: Config.Credentials.AccessKeyID is empty")
	}
	if cfg.Credentials.SecretAccessKey == "" {
		return nil, fmt.Errorf("backend: Config.Credentials.SecretAccessKey is empty (access key id %q)", cfg.Credentials.AccessKeyID)
	}
	method := cfg.SignatureMethod
	if method == "" {
		method = signer.HmacSHA256
	}
	if method != signer.HmacSHA256 && method != signer.HmacSHA1 {
		return nil, fmt.Errorf("backend: Config.SignatureMethod %q is not HmacSHA256 or HmacSHA1", cfg.SignatureMethod)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", cfg.Timeout}, {"DialTimeout", cfg.DialTimeout}, {"TLSHandshakeTimeout", cfg.TLSHandshakeTimeout},
		{"ResponseHeaderTimeout", cfg.ResponseHeaderTimeout}, {"RetryBaseDelay", cfg.RetryBaseDelay}, {"RetryMaxDelay", cfg.RetryMaxDelay},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("backend: Config.%s %v is negative", d.name, d.v)
		}
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("backend: Config.MaxAttempts %d is negative", cfg.MaxAttempts)
	}
	c := &Client{
		endpoint:    *u,
		path:        u.EscapedPath(),
		signer:      signer.Signer{Credentials: cfg.Credentials, Algorithm: method},
		timeout:     orDefault(cfg.Timeout, DefaultAttemptTimeout),
		callTimeout: orDefault(cfg.DefaultTimeout, DefaultCallTimeout),
		maxAttempts: cfg.MaxAttempts,
		retryBase:   orDefault(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		retryMax:    orDefault(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
		budget:      cfg.Budget,
		userAgent:   cfg.UserAgent,
		log:         cfg.Logger,
		obs:         cfg.Observer,
	}
	c.endpointStr = c.endpoint.String()
	c.endpointLen = len(c.endpointStr)
	gu, err := url.Parse(c.endpointStr)
	if err != nil {
		return nil, fmt.Errorf("backend: Config.Endpoint %q: %v", u.Redacted(), unwrapURLError(err))
	}
	c.host = strings.TrimSuffix(gu.Host, ":") // net/http drops an empty port from the URL and the Host
	gu.Host = c.host
	c.getURL = *gu
	if c.maxAttempts == 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.retryMax < c.retryBase {
		return nil, fmt.Errorf("backend: Config.RetryMaxDelay %v is below RetryBaseDelay %v", c.retryMax, c.retryBase)
	}
	if c.budget == nil {
		c.budget, err = budget.New(budget.Config{})
		if err != nil {
			return nil, err
		}
	}
	if !cfg.DisableCoalescing {
		c.flights = &flights{}
	}
	switch {
	case cfg.HTTPClient != nil:
		hc := *cfg.HTTPClient
		hc.CheckRedirect = noRedirects
		c.http = &hc
	case cfg.DialTimeout == 0 && cfg.TLSHandshakeTimeout == 0 && cfg.ResponseHeaderTimeout == 0:
		c.http = sharedHTTPClient()
	default:
		c.http = newHTTPClient(cfg.DialTimeout, cfg.TLSHandshakeTimeout, cfg.ResponseHeaderTimeout)
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	return c, nil
}

var (
	sharedOnce   sync.Once
	sharedClient *http.Client
)

// orDefault returns d, or def when d is 0.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// sharedHTTPClient returns the http.Client shared by every Client with the default connection timeouts.
func sharedHTTPClient() *http.Client {
	sharedOnce.Do(func() {
		sharedClient = newHTTPClient(DefaultDialTimeout, DefaultTLSHandshakeTimeout, DefaultResponseHeaderTimeout)
	})
	return sharedClient
}

// newHTTPClient returns an http.Client on NewTransport with the given timeouts and no redirects.
func newHTTPClient(dial, tlsHandshake, responseHeader time.Duration) *http.Client {
	return &http.Client{Transport: NewTransport(dial, tlsHandshake, responseHeader), CheckRedirect: noRedirects}
}

// NewTransport returns the upstream HTTP transport: proxy from the environment, pooled idle
// connections (HTTP/2 when the endpoint offers it), and the given dial, TLS handshake and response
// header timeouts (0 or less: DefaultDialTimeout, DefaultTLSHandshakeTimeout,
// DefaultResponseHeaderTimeout).
// The default client of a Client with no Config.HTTPClient is built on it; give the same transport
// (wrapped, e.g. by telemetry) to every Client that shares connections.
func NewTransport(dial, tlsHandshake, responseHeader time.Duration) *http.Transport {
	orDefault := func(d, def time.Duration) time.Duration { return cmp.Or(max(d, 0), def) }
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: orDefault(dial, DefaultDialTimeout), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   orDefault(tlsHandshake, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout: orDefault(responseHeader, DefaultResponseHeaderTimeout),
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
	}
}

// noRedirects makes the client return a redirect response as it is (reported as an HTTP error).
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Call sends one action: it adds action=<action> to params (which it does not modify), signs, sends a
// GET query (or a POST form when post is set) and reads the answer. ret_code 0 returns the JSON body;
// a QingCloud error answer is a qcerr status error; anything else upstream is UNAVAILABLE
// (qcerr.Transport); the end of ctx is CANCELED or DEADLINE_EXCEEDED; a spent quota budget is
// RESOURCE_EXHAUSTED (qcerr.BudgetExhausted). Whether the action only reads, which decides retries
// and coalescing, comes from [api.ReadOnly]. The call class (user or poll) comes from callclass.From(ctx).
func (c *Client) Call(ctx context.Context, action string, params map[string]string, post bool) ([]byte, error) {
	return c.call(ctx, action, params, post, api.ReadOnly(action), nil)
}

// call is Call with the read-only flag known. With a non-nil into, a successful answer is also decoded
// into into.msg, in the same pass over the body that reads ret_code; into.msg must be private to the
// call (the shared call of coalesced callers may still write it after the caller left). into.done
// tells whether that happened: a caller that joined another's coalesced call gets only the body.
func (c *Client) call(ctx context.Context, action string, params map[string]string, post, readOnly bool, into *answerInto) ([]byte, error) {
	if action == "" {
		return nil, qcerr.InvalidRequest(action, "the action name is empty")
	}
	p := make(map[string]string, len(params)+1)
	for k, v := range params {
		p[k] = v
	}
	p["action"] = action
	start := time.Now()
	coalesce := readOnly && c.flights != nil
	// callDL is the default deadline of a call that brings none (zero: none, or ctx's own). Each
	// attempt's timeout stops at it and no retry waits past it, so the call needs no context of its
	// own for it: one timer per attempt instead of two. Coalesced callers wait on their contexts, and
	// the shared call takes the latest of their deadlines: they get it as a context.
	var callDL time.Time
	if _, ok := ctx.Deadline(); !ok && c.callTimeout > 0 {
		if coalesce {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, start.Add(c.callTimeout))
			defer cancel()
		} else {
			callDL = start.Add(c.callTimeout)
		}
	}
	var body []byte
	var err error
	var attempts int
	shared := false
	// signed is the first attempt's signed query, made by the URL check (GETs only): its time_stamp
	// is the moment the call starts, and later attempts sign again.
	if signed, uerr := c.checkURL(action, p, post); uerr != nil {
		err = uerr
	} else if cerr := ctx.Err(); cerr != nil {
		// Checked before coalescing, whose shared call does not inherit this caller's cancellation.
		err = qcerr.Context(action, cerr, false)
	} else if coalesce {
		key := flightKey(c.signer.Credentials.AccessKeyID, callclass.From(ctx).String(), post, p)
		r := c.flights.do(ctx, key, func(fctx context.Context) ([]byte, int, error) {
			return c.send(fctx, action, p, post, true, into, signed, time.Time{})
		})
		body, attempts, err = r.body, r.attempts, r.err
		shared = r.shared
		if r.left {
			err = qcerr.Context(action, ctx.Err(), true)
		}
	} else {
		body, attempts, err = c.send(ctx, action, p, post, readOnly, into, signed, callDL)
	}
	c.obs.ObserveCall(action, callclass.From(ctx), shared)
	c.logCall(ctx, action, post, time.Since(start), attempts, err)
	return body, err
}

// send makes the attempts of one call under the retry policy and the quota budget. It returns the
// body or the error of the last attempt, and the number of attempts made. A non-empty presigned is
// p already signed, for the first attempt; every other attempt signs p again. A non-zero callDL is
// the call's default deadline (see call), kept as ctx's deadline would be.
func (c *Client) send(ctx context.Context, action string, p map[string]string, post, readOnly bool, into *answerInto, presigned string, callDL time.Time) ([]byte, int, error) {
	class := callclass.From(ctx)
	resigned := false
	var last error
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			// Checked before the budget: an attempt that will not be sent spends nothing.
			return nil, n - 1, qcerr.Context(action, err, false)
		}
		if !callDL.IsZero() && !time.Now().Before(callDL) {
			return nil, n - 1, qcerr.Context(action, context.DeadlineExceeded, false)
		}
		if ok, retryAfter := c.budget.Take(class); !ok {
			c.obs.ObserveRefusal(action, class)
			return nil, n - 1, qcerr.BudgetExhausted(action, qcerr.Budget{
				Class: class.String(), ClassLimit: c.budget.ClassMax(class), Limit: c.budget.Limit(), Window: c.budget.Window(),
				RetryAfter: retryAfter, Attempts: n - 1, Last: last,
			})
		}
		start := time.Now()
		signed := ""
		if n == 1 {
			signed = presigned
		}
		body, o, err := c.attempt(withAction(ctx, action), action, p, post, readOnly, into, signed, callDL)
		c.observeAttempt(action, class, n, o, time.Since(start))
		if err == nil {
			return body, n, nil
		}
		last = err
		if n >= c.maxAttempts {
			return nil, n, err
		}
		var delay time.Duration
		switch decide(o, readOnly) {
		case NoRetry:
			return nil, n, err
		case OnceNow:
			if resigned {
				return nil, n, err
			}
			resigned = true
		case Backoff:
			delay = c.backoff(n)
		}
		if !wait(ctx, delay, callDL) {
			return nil, n, err
		}
	}
}

// attempt signs (unless signed is already params signed) and sends one request and checks the
// answer. A non-zero callDL is the call's default deadline (see call).
func (c *Client) attempt(ctx context.Context, action string, params map[string]string, post, readOnly bool, into *answerInto, signed string, callDL time.Time) (_ []byte, o outcome, _ error) {
	method := http.MethodGet
	if post {
		method = http.MethodPost
	}
	if err := ctx.Err(); err != nil {
		return nil, outcome{kind: outcomeContext}, qcerr.Context(action, err, false)
	}
	if signed == "" {
		var err error
		if signed, err = c.signer.Sign(method, c.path, params); err != nil {
			return nil, outcome{kind: outcomeLocal}, internalError(action, "SIGNING_FAILED", "signing the request failed: "+err.Error())
		}
	}

	// The attempt ends at the earliest of ctx's deadline, the call's default deadline and the
	// Client's Timeout; the cause tells failure which one it was.
	actx := ctx
	limit, cause := time.Now().Add(c.timeout), errAttemptTimeout
	if !callDL.IsZero() && callDL.Before(limit) {
		limit, cause = callDL, errCallDeadline
	}
	if dl, ok := ctx.Deadline(); !ok || dl.After(limit) {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadlineCause(ctx, limit, cause)
		defer cancel()
	}
	// wrote turns true as soon as any part of the request may have been handed to the connection;
	// until then the request provably never reached QingCloud.
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { wrote.Store(true) },
		WroteHeaders:     func() { wrote.Store(true) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})

	req, err := c.newRequest(actx, method, signed)
	if err != nil {
		return nil, outcome{kind: outcomeLocal}, internalError(action, "REQUEST_FAILED", "building the HTTP request failed: "+c.scrub(unwrapURLError(err).Error(), signed))
	}
	if getBody := req.GetBody; getBody != nil {
		// net/http's HTTP/2 transport re-sends a POST through GetBody when its stream is reset with
		// PROTOCOL_ERROR (golang/go#47635), which does not prove QingCloud never processed it. GetBody
		// serves readers before the request goes out and refuses once any of it may have been
		// written, so net/http re-sends only requests that never left.
		req.GetBody = func() (io.ReadCloser, error) {
			if wrote.Load() {
				return nil, errNoReplay
			}
			return getBody()
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.failure(ctx, actx, action, err, wrote.Load(), signed)
	}
	defer resp.Body.Close()
	defer func() { o.httpStatus = resp.StatusCode }()

	sent := outcome{kind: outcomeTransport, wrote: true}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		if refusedBeforeAPI(resp.StatusCode) {
			return nil, outcome{kind: outcomeRefused}, refusedError(action, resp)
		}
		return nil, sent, qcerr.Transport(action, "upstream answered HTTP "+httpStatus(resp), true)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if ct == "" {
			return nil, sent, qcerr.Transport(action, "upstream answered without a content type, not JSON", true)
		}
		return nil, sent, qcerr.Transport(action, fmt.Sprintf("upstream answered with content type %q, not JSON", clip(ct)), true)
	}
	body, err := readBody(resp.Body, resp.ContentLength)
	if err != nil {
		return c.failure(ctx, actx, action, err, true, signed)
	}
	if len(body) > MaxResponseBytes {
		return nil, sent, qcerr.Transport(action, fmt.Sprintf("upstream answer is larger than the %d MiB limit", MaxResponseBytes>>20), true)
	}
	return c.checkAnswer(action, body, readOnly, into)
}

// readBody reads an answer whose length is n (-1: unknown) up to MaxResponseBytes+1 bytes (more
// means too large). A known length is read into a buffer of that size at once, instead of one grown
// by copying, and then to its end, so the connection is reused; a body that ends early is
// io.ErrUnexpectedEOF.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 || n > MaxResponseBytes {
		return io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if m, err := r.Read(buf[n:]); m > 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			// More than the announced length (net/http does not let this happen): read as before.
			rest, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes-n))
			return append(buf[:n+int64(m)], rest...), err
		}
		return nil, err
	}
	return buf[:n], nil
}

// checkURL refuses a GET call whose signed URL would be longer than MaxURLBytes. It returns the
// signed query it measured (for the first attempt), or "" for a POST or when signing failed (the
// attempt then signs, and reports the failure).
func (c *Client) checkURL(action string, p map[string]string, post bool) (string, error) {
	if post {
		return "", nil
	}
	signed, err := c.signer.Sign(http.MethodGet, c.path, p)
	if err != nil {
		return "", nil
	}
	if n := c.endpointLen + 1 + len(signed); n > MaxURLBytes {
		return "", qcerr.InvalidRequest(action, fmt.Sprintf("its parameters make a request URL of %d bytes, and at most %d are sent: split it into calls with fewer items", n, MaxURLBytes))
	}
	return signed, nil
}

// refusedBeforeAPI reports whether an HTTP status says QingCloud's front end refused the request
// before its API saw it: a 4xx other than 429 (QingCloud's API answers errors as HTTP 200 with a
// ret_code). Repeating the same request would be refused the same way.
func refusedBeforeAPI(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests
}

// refusedError is the error of a request refused with a 4xx: INVALID_ARGUMENT when it was too large,
// FAILED_PRECONDITION otherwise (the endpoint or a proxy refuses such requests); never applied.
func refusedError(action string, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
		return qcerr.InvalidRequest(action, "QingCloud refused it as too large (HTTP "+httpStatus(resp)+"): split it into calls with fewer items")
	}
	detail := "upstream refused the request with HTTP " + httpStatus(resp) + " before acting on it"
	return qcerr.New(codes.FailedPrecondition, ReasonUpstreamRefused,
		"QingCloud "+action+": "+detail+"; it was not applied, and repeating it will not help: check the server's endpoint setting",
		map[string]string{"action": action, "detail": detail, "may_have_applied": "false"})
}

// ReasonUpstreamRefused is the ErrorInfo reason of a request QingCloud's front end refused with an
// HTTP 4xx other than 429.
const ReasonUpstreamRefused = "UPSTREAM_REFUSED"

// newRequest builds the HTTP request for a signed parameter string.
func (c *Client) newRequest(ctx context.Context, method, signed string) (*http.Request, error) {
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, method, c.endpointStr, strings.NewReader(signed))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		// The request http.NewRequestWithContext(ctx, GET, endpoint, nil) makes, without parsing the
		// endpoint again for every call. The signed query is already escaped (unreserved bytes, %XX,
		// '=' and '&'): it is the raw query as sent, and parsing it again would give back the same
		// string.
		u := new(url.URL)
		*u = c.getURL
		u.RawQuery = signed
		req = (&http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: make(http.Header, 2), Host: c.host}).WithContext(ctx)
		// net/http silently re-sends a body-less GET on a new connection when a reused connection
		// closes after the request was written. QingCloud's GETs change things (RunInstances), so such
		// a replay could apply an action twice. A body without GetBody makes the request non-replayable;
		// for a GET, net/http finds it empty and sends no body. Repeating is the retry policy's decision.
		// Reads keep the body too, although it costs net/http's probe of it (a goroutine and a timer):
		// a request net/http re-sends is one the quota budget and the metrics never counted.
		req.Body = emptyBody{}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// errNoReplay is what GetBody returns when net/http wants to re-send a request that may have been sent.
var errNoReplay = errors.New("the connection failed after the request was sent, and net/http may not re-send it")

// emptyBody is an empty request body that net/http cannot rewind.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// answerInto is where a typed call decodes its answer (see call).
type answerInto struct {
	msg      proto.Message
	done     bool                 // msg holds the answer
	mismatch *codec.MismatchError // values of the answer that did not fit msg
}

// checkAnswer reads ret_code (and message) from a JSON answer, in the pass that decodes it into
// into.msg when into is set (codec.ReadAnswer); the body must be one JSON object.
func (c *Client) checkAnswer(action string, body []byte, readOnly bool, into *answerInto) ([]byte, outcome, error) {
	bad := outcome{kind: outcomeTransport, wrote: true}
	var msg proto.Message
	if into != nil {
		msg, into.done, into.mismatch = into.msg, false, nil
	}
	head, err := codec.ReadAnswer(body, msg)
	var mismatch *codec.MismatchError
	if err != nil && !errors.As(err, &mismatch) {
		switch {
		case errors.Is(err, codec.ErrEmptyBody):
			return nil, bad, qcerr.Transport(action, "upstream answered with an empty body", true)
		case errors.Is(err, codec.ErrNotObject):
			return nil, bad, qcerr.Transport(action, "upstream answer is JSON but not an object", true)
		}
		if cause := errors.Unwrap(err); cause != nil {
			err = cause // the syntax error without codec's prefix
		}
		return nil, bad, qcerr.Transport(action, fmt.Sprintf("upstream answer is not valid JSON (truncated?) after %d bytes: %v", len(body), err), true)
	}
	if len(head.RetCode) == 0 || string(head.RetCode) == "null" {
		return nil, bad, qcerr.Transport(action, "upstream answer has no ret_code", true)
	}
	code, ok := parseRetCode(head.RetCode)
	if !ok {
		return nil, bad, qcerr.Transport(action, fmt.Sprintf("upstream answer has a malformed ret_code %s", clip(string(head.RetCode))), true)
	}
	if code != 0 {
		msg := messageText(head.Message)
		o := outcome{kind: outcomeAnswer, retCode: code, message: msg}
		if readOnly {
			return nil, o, qcerr.FromRetCode(action, code, msg)
		}
		return nil, o, qcerr.FromMutationRetCode(action, code, msg)
	}
	if into != nil {
		into.done, into.mismatch = true, mismatch
	}
	return body, outcome{kind: outcomeOK}, nil
}

// parseRetCode accepts an integer ret_code, also as a numeric string.
func parseRetCode(raw json.RawMessage) (int, bool) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int(f)) {
			return 0, false
		}
		n = int(f)
	}
	return n, true
}

// messageText returns the upstream message: a string as it is, null as "", anything else as JSON text.
func messageText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Causes of the end of an attempt's context (see attempt).
var (
	errAttemptTimeout = errors.New("the attempt's timeout passed")
	errCallDeadline   = errors.New("the call's default deadline passed")
)

// failure maps an error from sending the request or reading the answer. ctx is the call's context,
// actx the attempt's (which may carry the Client's own Timeout or the call's default deadline).
func (c *Client) failure(ctx, actx context.Context, action string, err error, wrote bool, signed string) ([]byte, outcome, error) {
	if ctx.Err() != nil {
		return nil, outcome{kind: outcomeContext, wrote: wrote}, qcerr.Context(action, ctx.Err(), wrote)
	}
	if context.Cause(actx) == errCallDeadline {
		return nil, outcome{kind: outcomeContext, wrote: wrote}, qcerr.Context(action, context.DeadlineExceeded, wrote)
	}
	o := outcome{kind: outcomeTransport, wrote: wrote}
	if actx.Err() != nil {
		return nil, o, qcerr.Transport(action, fmt.Sprintf("QingCloud did not answer within %v", c.timeout), wrote)
	}
	cause := unwrapURLError(err)
	detail := "request failed: " + c.scrub(cause.Error(), signed)
	if !wrote {
		detail = "could not send the request: " + c.scrub(cause.Error(), signed)
	} else if errors.Is(cause, io.ErrUnexpectedEOF) || errors.Is(cause, io.EOF) {
		detail = "the connection closed before the whole answer arrived: " + c.scrub(cause.Error(), signed)
	}
	return nil, o, qcerr.Transport(action, detail, wrote)
}

// unwrapURLError strips *url.Error, whose text contains the (signed) URL, down to its cause.
func unwrapURLError(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) || ue.Err == nil {
			return err
		}
		err = ue.Err
	}
}

// scrub removes the signed parameters and the secret from text that is about to leave the client.
func (c *Client) scrub(text, signed string) string {
	if signed != "" {
		text = strings.ReplaceAll(text, signed, "[signed parameters]")
	}
	if s := c.signer.Credentials.SecretAccessKey; s != "" {
		text = strings.ReplaceAll(text, s, "[secret]")
	}
	if i := strings.Index(text, "signature="); i >= 0 {
		text = text[:i] + "[redacted]"
	}
	return text
}

// httpStatus formats the status of a response, e.g. "502 Bad Gateway".
func httpStatus(resp *http.Response) string {
	if text := http.StatusText(resp.StatusCode); text != "" {
		return strconv.Itoa(resp.StatusCode) + " " + text
	}
	return strconv.Itoa(resp.StatusCode)
}

// logCall writes one line per call; never parameters or URLs. attempts is 0 for a call that shared
// another's upstream request or was refused by the budget at once.
func (c *Client) logCall(ctx context.Context, action string, post bool, d time.Duration, attempts int, err error) {
	if err == nil {
		if c.log.Enabled(ctx, slog.LevelDebug) { // before boxing the values
			c.log.DebugContext(ctx, "qingcloud call", "action", action, "post", post, "duration", d, "attempts", attempts)
		}
		return
	}
	attrs := []any{"action", action, "post", post, "duration", d, "attempts", attempts, "code", status.Code(err).String(), "error", status.Convert(err).Message()}
	if _, ok := qcerr.RetCode(err); ok {
		c.log.DebugContext(ctx, "qingcloud call answered with an error", attrs...)
		return
	}
	c.log.WarnContext(ctx, "qingcloud call failed", attrs...)
}

// Invoke encodes req with codec.Encode, calls the action and decodes the answer into resp. Values that
// did not fit resp (a codec.MismatchError) are logged, not returned: resp holds everything else.
// Whether the action only reads comes from [api.ReadOnly].
func (c *Client) Invoke(ctx context.Context, action string, post bool, req, resp proto.Message) error {
	// The answer is decoded into a message of the call's own (see call), then handed over.
	own := resp.ProtoReflect().New().Interface()
	if err := c.invoke(ctx, action, post, api.ReadOnly(action), req, own); err != nil {
		return err
	}
	proto.Reset(resp)
	proto.Merge(resp, own)
	return nil
}

// invoke is Invoke into a resp that nobody else sees before invoke returns (see call): the answer is
// decoded into it in the same pass that checks ret_code.
func (c *Client) invoke(ctx context.Context, action string, post, readOnly bool, req, resp proto.Message) error {
	params, err := codec.Encode(req)
	if err != nil {
		return qcerr.InvalidRequest(action, err.Error())
	}
	into := &answerInto{msg: resp}
	body, err := c.call(ctx, action, params, post, readOnly, into)
	if err != nil {
		return err
	}
	mismatch := into.mismatch
	if !into.done {
		// This caller shared another's coalesced call: decode its copy of the body.
		if err := codec.Decode(body, resp); err != nil && !errors.As(err, &mismatch) {
			return qcerr.Transport(action, "upstream answer could not be decoded: "+err.Error(), true)
		}
	}
	if mismatch != nil {
		level := slog.LevelDebug
		if _, seen := c.warned.LoadOrStore(action, struct{}{}); !seen {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "qingcloud answer did not fully fit the response message; the values were skipped",
			"action", action, "response", string(resp.ProtoReflect().Descriptor().FullName()), "mismatches", mismatch.Error())
	}
	return nil
}

// InvokeMethod is the generic path the server uses: m, resolved from the action table (package api),
// names the action and says whether it is read-only and sent as POST, and which messages it takes
// and returns. A nil m, or the paginating variant of a list action, is refused: the server pages by
// invoking the action's unary RPC.
func (c *Client) InvokeMethod(ctx context.Context, m *api.Method, req proto.Message) (proto.Message, error) {
	if m == nil {
		return nil, statusError(codes.Unimplemented, "(no action)", "NOT_AN_ACTION", "the RPC has no (qingcloud.iaas.v1.action) option naming a QingCloud action")
	}
	if m.Streams() {
		return nil, internalError(m.Action, "NOT_AN_ACTION", fmt.Sprintf("%s pages %s: invoke its unary RPC", m.FullMethod, m.Action))
	}
	if req == nil || !req.ProtoReflect().IsValid() {
		return nil, qcerr.InvalidRequest(m.Action, "the request message is nil")
	}
	if got, want := req.ProtoReflect().Descriptor().FullName(), m.Input.Descriptor().FullName(); got != want {
		return nil, internalError(m.Action, "WRONG_REQUEST_TYPE", fmt.Sprintf("%s takes %s, got %s", m.FullMethod, want, got))
	}
	resp := m.Output.New().Interface()
	if err := c.invoke(ctx, m.Action, m.Post, m.ReadOnly, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// internalError is an INTERNAL status with the ErrorInfo every error carries.
func internalError(action, reason, msg string) error {
	return statusError(codes.Internal, action, reason, msg)
}

// statusError is a status error with one ErrorInfo (reason, qcerr.Domain, metadata action).
func statusError(code codes.Code, action, reason, msg string) error {
	return qcerr.New(code, reason, "QingCloud "+action+": "+msg, map[string]string{"action": action})
}

// clip shortens upstream text for a message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
