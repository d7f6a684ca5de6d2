package backend_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
)

// HTTP/2 frame types and the error code the h2RSTServer uses.
const (
	h2FrameHeaders   = 0x1
	h2FrameRSTStream = 0x3
	h2FrameSettings  = 0x4
	h2FlagAck        = 0x1
	h2ProtocolError  = 0x1
)

// h2RSTServer is a minimal cleartext HTTP/2 server (prior knowledge) that answers every request stream
// with RST_STREAM PROTOCOL_ERROR after reading its headers, which does not say whether the request was
// processed. It counts the requests (HEADERS frames) it saw.
func h2RSTServer(t *testing.T, requests *atomic.Int32) string {
	t.Helper()
	return rawServer(t, func(conn net.Conn) {
		preface := make([]byte, len(http2Preface))
		if _, err := io.ReadFull(conn, preface); err != nil || string(preface) != http2Preface {
			return
		}
		writeFrame := func(typ, flags byte, stream uint32, payload []byte) error {
			var h [9]byte
			h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
			h[3], h[4] = typ, flags
			binary.BigEndian.PutUint32(h[5:], stream)
			_, err := conn.Write(append(h[:], payload...))
			return err
		}
		if writeFrame(h2FrameSettings, 0, 0, nil) != nil {
			return
		}
		for {
			var h [9]byte
			if _, err := io.ReadFull(conn, h[:]); err != nil {
				return
			}
			payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
			if _, err := io.ReadFull(conn, payload); err != nil {
				return
			}
			stream := binary.BigEndian.Uint32(h[5:]) &^ (1 << 31)
			switch typ, flags := h[3], h[4]; {
			case typ == h2FrameSettings && flags&h2FlagAck == 0:
				if writeFrame(h2FrameSettings, h2FlagAck, 0, nil) != nil {
					return
				}
			case typ == h2FrameHeaders:
				requests.Add(1)
				if writeFrame(h2FrameRSTStream, 0, stream, binary.BigEndian.AppendUint32(nil, h2ProtocolError)) != nil {
					return
				}
			}
		}
	})
}

const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// TestHTTP2MutationNotReplayed checks that net/http's HTTP/2 transport does not re-send a request on
// its own when the stream is reset with PROTOCOL_ERROR after the request went out: unlike
// REFUSED_STREAM or a GOAWAY above the stream, that does not prove QingCloud never processed it.
func TestHTTP2MutationNotReplayed(t *testing.T) {
	for _, tt := range []struct {
		name string
		post bool
	}{
		{"GET", false},
		{"POST", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int32
			endpoint := h2RSTServer(t, &requests)
			var protocols http.Protocols
			protocols.SetUnencryptedHTTP2(true)
			c := newClient(t, endpoint, func(cfg *backend.Config) {
				cfg.HTTPClient = &http.Client{Transport: &http.Transport{Protocols: &protocols}}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // bounds a hang only
			defer cancel()
			_, err := c.Call(ctx, "RunInstances", map[string]string{"image_id": "centos7x64d"}, tt.post)
			if err == nil {
				t.Fatal("no error")
			}
			if _, ei := info(t, err); ei.GetMetadata()["may_have_applied"] != "true" {
				t.Errorf("metadata %v (%v)", ei.GetMetadata(), err)
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("upstream saw %d requests, want 1 (the reset one must not be replayed): %v", n, err)
			}
		})
	}
}

// TestPOSTBodyPeekable checks that a transport can still read a POST form through GetBody before the
// request goes out (telemetry finds the action there).
func TestPOSTBodyPeekable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, `{"ret_code":0}`) }))
	t.Cleanup(srv.Close)
	var peeked string
	c := newClient(t, srv.URL+"/iaas/", func(cfg *backend.Config) {
		base := &http.Transport{}
		cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.GetBody != nil {
				if body, err := r.GetBody(); err == nil {
					b, _ := io.ReadAll(body)
					peeked = string(b)
				}
			}
			return base.RoundTrip(r)
		})}
	})
	if _, err := c.Call(context.Background(), "RunInstances", nil, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(peeked, "action=RunInstances") {
		t.Errorf("GetBody gave %q", peeked)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
