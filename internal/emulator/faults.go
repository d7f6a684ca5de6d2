package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"time"
)

// Faults are injected into API requests (those to /iaas) for reliability tests. Each probability
// is in [0, 1] and drawn independently per request; when several fire, the first in field order
// wins. Faults apply after authentication and the quota check, so they only disturb valid requests.
type Faults struct {
	// RetCode5100 answers {"ret_code":5100,"message":"ServerBusy, ..."} without executing the action.
	RetCode5100 float64 `json:"ret_code_5100"`
	// RetCode5000 answers ret_code 5000 (internal error) without executing the action.
	RetCode5000 float64 `json:"ret_code_5000"`
	// RetCode2500 answers ret_code 2500 (quota exceeded) without executing the action.
	RetCode2500 float64 `json:"ret_code_2500"`
	// HTTP502 answers HTTP 502 Bad Gateway with an HTML body, without executing the action.
	HTTP502 float64 `json:"http_502"`
	// HTTP503 answers HTTP 503 Service Unavailable with an HTML body, without executing the action.
	HTTP503 float64 `json:"http_503"`
	// ConnReset closes the TCP connection with a reset (SO_LINGER 0) before any response byte,
	// without executing the action.
	ConnReset float64 `json:"conn_reset"`
	// TruncatedBody executes the action and answers HTTP 200 application/json whose body is cut in
	// the middle of the JSON document (Content-Length matches the cut body).
	TruncatedBody float64 `json:"truncated_body"`
	// Latency is added before every affected request is handled.
	Latency time.Duration `json:"latency"`
	// FailActions lists delayed actions (e.g. "RunInstances") whose jobs end "failed"; the
	// resources return to their previous state (created resources end "ceased").
	FailActions []string `json:"fail_actions"`
	// DoneWithFailure lists delayed actions whose jobs end "done with failure": the last resource
	// of the job fails, the others succeed.
	DoneWithFailure []string `json:"done_with_failure"`
	// Actions restricts all faults above to these actions; empty means every action.
	Actions []string `json:"actions"`
}

func (f Faults) clone() Faults {
	f.FailActions = slices.Clone(f.FailActions)
	f.DoneWithFailure = slices.Clone(f.DoneWithFailure)
	f.Actions = slices.Clone(f.Actions)
	return f
}

// MarshalJSON renders Latency as a Go duration string ("250ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	return json.Marshal(struct {
		plain
		Latency string `json:"latency"`
	}{plain(f), f.Latency.String()})
}

// UnmarshalJSON accepts Latency as a duration string ("250ms") or a number of nanoseconds, and
// rejects unknown fields.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	aux := struct {
		*plain
		Latency json.RawMessage `json:"latency"`
	}{plain: (*plain)(f)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	if len(aux.Latency) == 0 || string(aux.Latency) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(aux.Latency, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		f.Latency = d
		return nil
	}
	var n int64
	if err := json.Unmarshal(aux.Latency, &n); err != nil {
		return fmt.Errorf("latency: want a duration string like \"250ms\" or nanoseconds")
	}
	f.Latency = time.Duration(n)
	return nil
}

// Validate reports probabilities outside [0, 1] and a negative latency.
func (f Faults) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"ret_code_5100", f.RetCode5100}, {"ret_code_5000", f.RetCode5000}, {"ret_code_2500", f.RetCode2500},
		{"http_502", f.HTTP502}, {"http_503", f.HTTP503}, {"conn_reset", f.ConnReset}, {"truncated_body", f.TruncatedBody},
	} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%s: probability %v is not in [0, 1]", p.name, p.v)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("latency: %s is negative", f.Latency)
	}
	return nil
}

// applies reports whether the faults apply to action.
func (f *Faults) applies(action string) bool {
	return len(f.Actions) == 0 || slices.Contains(f.Actions, action)
}

// jobOutcome returns the final status of a job of action.
func (f *Faults) jobOutcome(action string) string {
	switch {
	case slices.Contains(f.FailActions, action):
		return jobFailed
	case slices.Contains(f.DoneWithFailure, action):
		return jobDoneWithFailure
	}
	return jobSuccessful
}

// Fault kinds, as counted in Stats.
const (
	faultRetCode5100   = "ret_code_5100"
	faultRetCode5000   = "ret_code_5000"
	faultRetCode2500   = "ret_code_2500"
	faultHTTP502       = "http_502"
	faultHTTP503       = "http_503"
	faultConnReset     = "conn_reset"
	faultTruncatedBody = "truncated_body"
	faultLatency       = "latency"
)

// pick draws the faults for one request and returns the winning fault kind ("" for none).
func (f *Faults) pick() string {
	hit := func(p float64) bool { return p > 0 && (p >= 1 || rand.Float64() < p) }
	// Draw all independently, then take the first in declaration order.
	draws := []struct {
		kind string
		hit  bool
	}{
		{faultRetCode5100, hit(f.RetCode5100)},
		{faultRetCode5000, hit(f.RetCode5000)},
		{faultRetCode2500, hit(f.RetCode2500)},
		{faultHTTP502, hit(f.HTTP502)},
		{faultHTTP503, hit(f.HTTP503)},
		{faultConnReset, hit(f.ConnReset)},
		{faultTruncatedBody, hit(f.TruncatedBody)},
	}
	for _, d := range draws {
		if d.hit {
			return d.kind
		}
	}
	return ""
}

// faultError returns the API error of a ret_code fault.
func faultError(kind string) *apiError {
	switch kind {
	case faultRetCode5100:
		return newError(5100, "ServerBusy", "the server is busy, please try later (injected fault)")
	case faultRetCode5000:
		return newError(5000, "InternalError", "unknown internal error (injected fault)")
	case faultRetCode2500:
		return newError(2500, "QuotaExceeded", "quota exceeded, please try later (injected fault)")
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// writeHTTPError writes a gateway-style HTML error page.
func writeHTTPError(w http.ResponseWriter, status int) {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	body := "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// resetConnection hijacks the connection and closes it with a TCP reset. It reports false when
// the ResponseWriter can not be hijacked (HTTP/2); the caller then aborts the handler.
func resetConnection(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return true
}

// truncate returns a prefix of a JSON body that is never valid JSON on its own.
func truncate(b []byte) []byte {
	if len(b) < 2 {
		return b[:0]
	}
	return b[:len(b)/2]
}
