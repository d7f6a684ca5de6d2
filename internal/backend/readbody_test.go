package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// chunks reads its data a few bytes at a time, as a connection would deliver it, and then ends with err.
type chunks struct {
	data []byte
	err  error
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, c.err
	}
	n := copy(p, c.data[:min(len(c.data), 3)])
	c.data = c.data[n:]
	return n, nil
}

func TestReadBody(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 100)
	for _, tc := range []struct {
		name    string
		data    string
		n       int64
		end     error
		want    string
		wantErr error
	}{
		{"exact length", `{"ret_code":0}`, 14, io.EOF, `{"ret_code":0}`, nil},
		{"empty", ``, 0, io.EOF, ``, nil},
		{"unknown length", `{"ret_code":0}`, -1, io.EOF, `{"ret_code":0}`, nil},
		{"shorter than announced", `{"ret_co`, 14, io.ErrUnexpectedEOF, "", io.ErrUnexpectedEOF},
		{"nothing of an announced body", ``, 14, io.EOF, "", io.ErrUnexpectedEOF},
		{"longer than announced", `{"ret_code":0}xyz`, 14, io.EOF, `{"ret_code":0}xyz`, nil},
		{"connection error", `{"ret`, 14, errors.New("reset"), "", errors.New("reset")},
		{"connection error at the end", `{"ret_code":0}`, 14, errors.New("reset"), "", errors.New("reset")},
		{"much longer than announced", string(big), 10, io.EOF, string(big), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(&chunks{data: []byte(tc.data), err: tc.end}, tc.n)
			if (err == nil) != (tc.wantErr == nil) || err != nil && err.Error() != tc.wantErr.Error() {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil && string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadBodyReusesConnections: an answer read to its announced length leaves the connection to
// the next call.
func TestReadBodyReusesConnections(t *testing.T) {
	body := `{"ret_code":0,"zone_set":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}))
	defer srv.Close()
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	c, err := New(Config{Endpoint: srv.URL + "/iaas/", Credentials: signer.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"},
		HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		got, err := c.Call(context.Background(), "DescribeZones", nil, false)
		if err != nil || !strings.Contains(string(got), "zone_set") {
			t.Fatalf("%s, %v", got, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections for 5 calls, want 1", n)
	}
}

// TestGetRequestAsNewRequest: the GET built from the endpoint parsed once is the request
// http.NewRequestWithContext makes from the endpoint's text.
func TestGetRequestAsNewRequest(t *testing.T) {
	const signed = "access_key_id=AK&action=DescribeZones&signature=a%2Fb%3D&zone=pek3a"
	for _, ep := range []string{
		"https://api.qingcloud.com/iaas/",
		"http://127.0.0.1:7780/iaas/",
		"http://example.com:/iaas/",
		"http://[::1]:8080/iaas/",
		"http://[::1]/",
		"https://api.example.com",
		"http://h/a%2Fb/iaas/",
		"http://h/a b/",
	} {
		c, err := New(Config{Endpoint: ep, Credentials: signer.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}})
		if err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		ctx := context.WithValue(context.Background(), struct{}{}, "v")
		got, err := c.newRequest(ctx, http.MethodGet, signed)
		if err != nil {
			t.Fatal(err)
		}
		want, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpointStr, nil)
		if err != nil {
			t.Fatal(err)
		}
		want.URL.RawQuery = signed
		if got.URL.String() != want.URL.String() || *got.URL != *want.URL || got.Host != want.Host || got.Method != want.Method ||
			got.Proto != want.Proto || got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
			got.URL.RequestURI() != want.URL.RequestURI() || got.Context() != ctx || got.ContentLength != 0 || got.GetBody != nil {
			t.Errorf("%s: built %+v %q, net/http %+v %q", ep, *got.URL, got.Host, *want.URL, want.Host)
		}
		if got.Header.Get("Accept") != "application/json" || got.Header.Get("User-Agent") != DefaultUserAgent || len(got.Header) != 2 {
			t.Errorf("%s: header %v", ep, got.Header)
		}
	}
	// A URL built this way is a copy: the next request does not share it.
	c, _ := New(Config{Endpoint: "http://h/iaas/", Credentials: signer.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}})
	a, _ := c.newRequest(context.Background(), http.MethodGet, "a=1")
	b, _ := c.newRequest(context.Background(), http.MethodGet, "b=2")
	if a.URL == b.URL || a.URL.RawQuery != "a=1" || c.getURL.RawQuery != "" {
		t.Error("GET requests share their URL")
	}
	// Every GET has an empty body that net/http cannot re-send.
	if a.Body == nil || b.Body == nil || a.GetBody != nil || b.GetBody != nil {
		t.Errorf("bodies %v and %v (GetBody set: %v, %v)", a.Body, b.Body, a.GetBody != nil, b.GetBody != nil)
	}
}
