package server_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
)

// bigBody is an endless JSON request body, {"action": ..., "params": {"x": "aaaa..., that counts the
// bytes the server pulled from it.
type bigBody struct {
	size int64
	read atomic.Int64
}

func (b *bigBody) Read(p []byte) (int, error) {
	const head = `{"action":"DescribeZones","params":{"x":"`
	off := b.read.Load()
	if off >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-off))
	for i := range n {
		if at := off + int64(i); at < int64(len(head)) {
			p[i] = head[at]
		} else {
			p[i] = 'a'
		}
	}
	b.read.Add(int64(n))
	return n, nil
}

// TestRESTRequestBodyIsBounded: a body larger than MaxRequestBodyBytes is refused without being read
// whole, with or without a declared length: 400 for callers with a token, 401 (checked before any of
// the body is read) for callers without.
func TestRESTRequestBodyIsBounded(t *testing.T) {
	s := newTenantStack(t)
	const size = 8 * server.MaxRequestBodyBytes
	for _, tc := range []struct {
		name          string
		token         string
		contentLength bool
	}{
		{"no token, Content-Length", "", true},
		{"no token, chunked", "", false},
		{"token, Content-Length", s.tokA, true},
		{"token, chunked", s.tokA, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &bigBody{size: size}
			req, err := http.NewRequest("POST", s.rest+"/v1/iaas:call", body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentLength {
				req.ContentLength = size
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case tc.token == "" && resp.StatusCode != http.StatusUnauthorized:
					t.Errorf("HTTP %s %.300s, want 401", resp.Status, b)
				case tc.token != "" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "too large")):
					t.Errorf("HTTP %s %.300s, want 400 saying the body is too large", resp.Status, b)
				}
			}
			// The client may have pushed some of the body into socket buffers before the server
			// gave up; what matters is that the server stopped near the limit.
			if got := body.read.Load(); got > 2*server.MaxRequestBodyBytes {
				t.Errorf("the server read %d bytes of the body, want about %d at most", got, server.MaxRequestBodyBytes)
			}
			if got := s.emu.Stats().TotalRequests; got != 0 {
				t.Errorf("%d upstream requests", got)
			}
		})
	}
	// A body within the limit still works.
	req, _ := http.NewRequest("POST", s.rest+"/v1/iaas:call", strings.NewReader(`{"action":"DescribeZones"}`))
	req.Header.Set("Authorization", "Bearer "+s.tokA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a small body: HTTP %s", resp.Status)
	}
}
