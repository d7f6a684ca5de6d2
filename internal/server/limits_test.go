package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
)

// testLimits are small limits, so that the tests see connections closed quickly; they wait on the
// close itself, never on a sleep.
var testLimits = server.Limits{
	HeaderTimeout:        300 * time.Millisecond,
	BodyTimeout:          300 * time.Millisecond,
	IdleTimeout:          300 * time.Millisecond,
	KeepaliveTime:        time.Hour,
	MaxHeaderBytes:       16 << 10,
	MaxConcurrentStreams: 7,
}

// limitedListeners serves the server with testLimits on real TCP listeners and returns the gRPC and
// REST addresses.
func limitedListeners(t *testing.T) (grpcAddr, restAddr string) {
	t.Helper()
	emu := emulator.New(emulator.Options{Quota: -1})
	srv, err := server.New(server.Config{Tenants: tenant.Single{Upstream: newUpStackOn(t, emu, nil).be, Zone: "pek3a"}, Limits: testLimits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(gl) }()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := srv.HTTPHandler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	srv.ConfigureHTTP(hs)
	go func() { _ = hs.Serve(hl) }()
	t.Cleanup(func() { _ = hs.Close() })
	return gl.Addr().String(), hl.Addr().String()
}

// dial opens a TCP connection that the test gives up on after 20 s (a hung test, not a timing).
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// readToClose reads c until the server closes it and returns what it sent; a read that times out
// means the server held the connection.
func readToClose(t *testing.T, c net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server held the connection for 20 s (%d bytes: %.200q)", len(b), b)
	}
	return b
}

// TestLimitsREST: a body trickling in, a connection that sends nothing, an idle keep-alive connection
// and oversized headers are all cut off by the REST listener's limits.
func TestLimitsREST(t *testing.T) {
	_, rest := limitedListeners(t)

	t.Run("a trickling body is refused and its connection closed", func(t *testing.T) {
		c := dial(t, rest)
		_, _ = io.WriteString(c, "POST /v1/iaas:call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"action\":")
		b := readToClose(t, c)
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 400")) || !bytes.Contains(b, []byte("did not arrive in time")) {
			t.Errorf("answer %.400q, want 400 saying the body did not arrive in time", b)
		}
	})
	t.Run("a connection that sends no headers is closed", func(t *testing.T) {
		readToClose(t, dial(t, rest))
	})
	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		c := dial(t, rest)
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		readToClose(t, c)
	})
	t.Run("headers over the limit are refused", func(t *testing.T) {
		c := dial(t, rest)
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 32<<10)+"\r\n\r\n")
		if b := readToClose(t, c); !bytes.HasPrefix(b, []byte("HTTP/1.1 431")) {
			t.Errorf("answer %.200q, want 431", b)
		}
	})
	t.Run("a body within the timeout still works", func(t *testing.T) {
		resp, err := http.Post("http://"+rest+"/v1/iaas:call", "application/json", strings.NewReader(`{"action":"DescribeZones"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HTTP %s", resp.Status)
		}
	})
}

// h2Conn is a raw HTTP/2 client connection: the test writes frames by hand, as an attacker would.
type h2Conn struct {
	c  net.Conn
	fr *http2.Framer
}

func dialH2(t *testing.T, addr string) *h2Conn {
	c := dial(t, addr)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return &h2Conn{c: c, fr: fr}
}

// frames reads frames, each valid only during its call of visit, until the server closes the
// connection or visit returns true.
func (h *h2Conn) frames(t *testing.T, visit func(http2.Frame) bool) {
	t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server held the connection for 20 s")
			}
			return
		}
		if visit(f) {
			return
		}
	}
}

// TestLimitsGRPC: a silent TCP connection and one idle after the HTTP/2 preface are closed, the
// server announces its stream and header limits, and HPACK-amplified metadata is refused.
func TestLimitsGRPC(t *testing.T) {
	grpcAddr, _ := limitedListeners(t)

	t.Run("a silent TCP connection is closed", func(t *testing.T) {
		readToClose(t, dial(t, grpcAddr))
	})
	t.Run("a connection idle after the preface gets GOAWAY and is closed", func(t *testing.T) {
		h := dialH2(t, grpcAddr)
		goaway, gotSettings := false, false
		var streams, headerList uint32
		var okStreams, okHeaderList bool
		h.frames(t, func(f http2.Frame) bool {
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					gotSettings = true
					streams, okStreams = f.Value(http2.SettingMaxConcurrentStreams)
					headerList, okHeaderList = f.Value(http2.SettingMaxHeaderListSize)
				}
			case *http2.GoAwayFrame:
				goaway = true
			}
			return false
		})
		if !goaway {
			t.Error("closed without GOAWAY")
		}
		if !gotSettings {
			t.Fatal("no SETTINGS from the server")
		}
		if !okStreams || streams != testLimits.MaxConcurrentStreams {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (%v), want %d", streams, okStreams, testLimits.MaxConcurrentStreams)
		}
		if !okHeaderList || headerList != uint32(testLimits.MaxHeaderBytes) {
			t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE = %d (%v), want %d", headerList, okHeaderList, testLimits.MaxHeaderBytes)
		}
	})
	t.Run("HPACK-amplified metadata past the header limit is refused", func(t *testing.T) {
		// One 3 KiB header enters the HPACK table, then 200 one-byte references to it: 3 KiB on the
		// wire, 600 KiB of metadata once decoded. The server must refuse the stream, not serve it.
		h := dialH2(t, grpcAddr)
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "x"},
			{Name: ":path", Value: "/grpc.health.v1.Health/Check"}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
		} {
			_ = enc.WriteField(f)
		}
		big := hpack.HeaderField{Name: "x-amp", Value: strings.Repeat("a", 3<<10)}
		for range 200 {
			_ = enc.WriteField(big) // the first is a literal added to the table, the rest one-byte indexes
		}
		if block.Len() > 8<<10 {
			t.Fatalf("the header block is %d bytes; the test meant to amplify", block.Len())
		}
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		var answer string
		h.frames(t, func(f http2.Frame) bool {
			switch f.(type) {
			case *http2.RSTStreamFrame:
				answer = "RST_STREAM"
			case *http2.HeadersFrame, *http2.MetaHeadersFrame:
				answer = "HEADERS"
			default:
				return false
			}
			return true
		})
		if answer != "RST_STREAM" {
			t.Errorf("the server answered %q, want RST_STREAM", answer)
		}
	})
}
