package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	grpctap "google.golang.org/grpc/tap"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth/authtest"
)

var (
	tokenA = strings.Repeat("A", 43)
	tokenB = GenerateToken()
)

func mustHash(t *testing.T, s string) [32]byte {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashToken(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
	h := HashToken(tokenA)
	if mustHash(t, h) != mustHash(t, strings.ToUpper(h)) || mustHash(t, " "+h+"\n") != mustHash(t, h) {
		t.Fatal("ParseHash is not case- and space-insensitive")
	}
}

func TestParseHashErrorsNeverQuoteTheInput(t *testing.T) {
	for _, in := range []string{tokenA, strings.Repeat("g", 64), "", "abc"} {
		_, err := ParseHash(in)
		if err == nil {
			t.Fatalf("ParseHash(%q) accepted", in)
		}
		if in != "" && strings.Contains(err.Error(), in) {
			t.Fatalf("ParseHash error quotes its input: %v", err)
		}
	}
}

func TestCheckToken(t *testing.T) {
	if err := CheckToken(GenerateToken()); err != nil {
		t.Fatalf("a generated token: %v", err)
	}
	if a, b := GenerateToken(), GenerateToken(); a == b || len(a) != 43 {
		t.Fatalf("GenerateToken gave %q and %q", a, b)
	}
	if err := CheckToken(strings.Repeat("x", 40) + "=="); err != nil {
		t.Fatalf("padding refused: %v", err)
	}
	for _, bad := range []string{"short", strings.Repeat("x", 31), strings.Repeat("x", 40) + " y", strings.Repeat("x", 40) + "\"", strings.Repeat("é", 20)} {
		err := CheckToken(bad)
		if err == nil {
			t.Errorf("CheckToken(%q) accepted", bad)
		} else if strings.Contains(err.Error(), bad) {
			t.Errorf("CheckToken error quotes the token: %v", err)
		}
	}
}

func newAuth(t *testing.T) *Authenticator {
	t.Helper()
	a, err := New(Config{Tokens: []Token{
		{Name: "a-ci", Hash: mustHash(t, HashToken(tokenA)), Profile: "team-a"},
		{Name: "b-ci", Hash: mustHash(t, HashToken(tokenB)), Profile: "team-b"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func incoming(kv ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

func TestAuthenticate(t *testing.T) {
	a := newAuth(t)
	tests := []struct {
		name    string
		ctx     context.Context
		profile string // "" = UNAUTHENTICATED
		reason  string
		msg     string
	}{
		{"token A", incoming("authorization", "Bearer "+tokenA), "team-a", "", ""},
		{"token B, lower-case scheme, extra spaces", incoming("authorization", "  bearer   "+tokenB+" "), "team-b", "", ""},
		{"no metadata", context.Background(), "", "MISSING_CREDENTIALS", "authorization: Bearer <token>"},
		{"no authorization", incoming("x-other", "1"), "", "MISSING_CREDENTIALS", "Authorization: Bearer <token>"},
		{"wrong token", incoming("authorization", "Bearer "+strings.Repeat("C", 43)), "", "INVALID_CREDENTIALS", "not valid"},
		{"token's hash as the token", incoming("authorization", "Bearer "+HashToken(tokenA)), "", "INVALID_CREDENTIALS", "not valid"},
		{"basic auth", incoming("authorization", "Basic "+tokenA), "", "INVALID_CREDENTIALS", "must be \"Bearer <token>\""},
		{"bare token", incoming("authorization", tokenA), "", "INVALID_CREDENTIALS", "must be \"Bearer <token>\""},
		{"empty bearer", incoming("authorization", "Bearer "), "", "INVALID_CREDENTIALS", "must be"},
		{"two different values", incoming("authorization", "Bearer "+tokenA, "authorization", "Bearer "+tokenB), "", "INVALID_CREDENTIALS", "exactly one"},
		{"a wrong value next to a right one", incoming("authorization", "Bearer "+strings.Repeat("C", 43), "authorization", "Bearer "+tokenA), "", "INVALID_CREDENTIALS", "exactly one"},
		{"the same value twice (the REST gateway)", incoming("authorization", "Bearer "+tokenA, "authorization", "Bearer "+tokenA), "team-a", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(tt.ctx)
			if tt.profile != "" {
				if err != nil || id.Profile != tt.profile {
					t.Fatalf("Authenticate = %+v, %v; want profile %s", id, err, tt.profile)
				}
				return
			}
			if status.Code(err) != codes.Unauthenticated || reason(err) != tt.reason || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Authenticate error = %v (reason %s); want UNAUTHENTICATED %s mentioning %q", err, reason(err), tt.reason, tt.msg)
			}
			for _, secret := range []string{tokenA, tokenB, HashToken(tokenA)} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error reveals a token: %v", err)
				}
			}
		})
	}
}

func TestAnonymous(t *testing.T) {
	a, err := New(Config{Anonymous: "default"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(incoming("authorization", "Bearer whatever"))
	if err != nil || id.Profile != "default" || !a.Anonymous() {
		t.Fatalf("Authenticate = %+v, %v", id, err)
	}
}

func TestNewRejects(t *testing.T) {
	h := mustHash(t, HashToken(tokenA))
	for name, cfg := range map[string]Config{
		"nothing":        {},
		"both":           {Tokens: []Token{{Name: "a", Hash: h, Profile: "p"}}, Anonymous: "default"},
		"no profile":     {Tokens: []Token{{Name: "a", Hash: h}}},
		"duplicate hash": {Tokens: []Token{{Name: "a", Hash: h, Profile: "p"}, {Name: "b", Hash: h, Profile: "q"}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestExempt(t *testing.T) {
	for m, want := range map[string]bool{
		"/grpc.health.v1.Health/Check":                                   true,
		"/grpc.health.v1.Health/Watch":                                   true,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      true,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": true,
		"/qingcloud.iaas.v1.InstanceService/DescribeInstances":           false,
		"/qingcloud.iaas.v1.WatchService/WatchJobs":                      false,
		"/grpc.health.v1.HealthX/Check":                                  false,
		"/x/grpc.health.v1.Health/Check":                                 false,
	} {
		if got := Exempt(m); got != want {
			t.Errorf("Exempt(%s) = %v", m, got)
		}
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

func TestInterceptors(t *testing.T) {
	a := newAuth(t)
	var got Identity
	var had bool
	unary := func(ctx context.Context, _ any) (any, error) { got, had = FromContext(ctx); return "ok", nil }
	stream := func(_ any, ss grpc.ServerStream) error { got, had = FromContext(ss.Context()); return nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/qingcloud.iaas.v1.ZoneService/DescribeZones"}
	sinfo := &grpc.StreamServerInfo{FullMethod: "/qingcloud.iaas.v1.WatchService/WatchJobs"}

	if _, err := a.UnaryInterceptor()(incoming("authorization", "Bearer "+tokenB), nil, info, unary); err != nil || !had || got.Profile != "team-b" || got.Token != "b-ci" {
		t.Fatalf("unary: %v %+v %v", err, got, had)
	}
	if err := a.StreamInterceptor()(nil, fakeStream{ctx: incoming("authorization", "Bearer "+tokenA)}, sinfo, stream); err != nil || got.Profile != "team-a" {
		t.Fatalf("stream: %v %+v", err, got)
	}
	had = false
	if _, err := a.UnaryInterceptor()(context.Background(), nil, info, unary); status.Code(err) != codes.Unauthenticated || had {
		t.Fatalf("unary without token: %v, handler ran: %v", err, had)
	}
	if err := a.StreamInterceptor()(nil, fakeStream{ctx: context.Background()}, sinfo, stream); status.Code(err) != codes.Unauthenticated || had {
		t.Fatalf("stream without token: %v, handler ran: %v", err, had)
	}
	// Health is exempt, and gets no identity.
	if _, err := a.UnaryInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}, unary); err != nil || had {
		t.Fatalf("health: %v, identity: %v", err, had)
	}
}

func TestProfile(t *testing.T) {
	if p, err := Profile(NewContext(context.Background(), Identity{Profile: "b"})); err != nil || p != "b" {
		t.Fatalf("Profile(b) = %q, %v", p, err)
	}
	if _, err := Profile(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Profile without identity = %v", err)
	}
}

// handshake runs a TLS handshake over loopback TCP between a client with ccfg and a server with
// scfg; the client then reads one byte, so that a server that rejects the client after the client's
// side of a TLS 1.3 handshake finished is seen too.
func handshake(t *testing.T, scfg, ccfg *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, scfg)
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = s.Write([]byte("k"))
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, ccfg)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	return <-done, clientErr
}

func TestServerTLS(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	other := authtest.NewCA(t, "other")
	srv := ca.Server(t, "server")
	client := ca.Client(t, "client")
	stranger := other.Client(t, "stranger")

	plain, err := ServerTLS(TLSFiles{CertFile: srv.CertFile, KeyFile: srv.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.MinVersion != tls.VersionTLS12 || plain.ClientAuth != tls.NoClientCert {
		t.Fatalf("config = %+v", plain)
	}
	mtls, err := ServerTLS(TLSFiles{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client12 := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: certs}
	}
	tests := []struct {
		name string
		s, c *tls.Config
		ok   bool
	}{
		{"TLS", plain, client12(), true},
		{"TLS 1.1 refused", plain, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"client distrusts the server", plain, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}, false},
		{"mutual TLS", mtls, client12(client.TLS), true},
		{"mutual TLS without a client certificate", mtls, client12(), false},
		{"mutual TLS with a certificate of another CA", mtls, client12(stranger.TLS), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serr, cerr := handshake(t, tt.s, tt.c)
			if ok := serr == nil && cerr == nil; ok != tt.ok {
				t.Fatalf("server error %v, client error %v; want ok=%v", serr, cerr, tt.ok)
			}
		})
	}

	for name, f := range map[string]TLSFiles{
		"no key":     {CertFile: srv.CertFile},
		"no files":   {CertFile: "/nope.pem", KeyFile: "/nope-key.pem"},
		"swapped":    {CertFile: srv.KeyFile, KeyFile: srv.CertFile},
		"bad CA":     {CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: srv.KeyFile},
		"missing CA": {CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: "/nope-ca.pem"},
	} {
		if _, err := ServerTLS(f, nil); err == nil {
			t.Errorf("%s: ServerTLS accepted %+v", name, f)
		} else if b, _ := os.ReadFile(srv.KeyFile); strings.Contains(err.Error(), string(b)) {
			t.Errorf("%s: error holds the key: %v", name, err)
		}
	}
}

func TestCertificateReload(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	first := ca.Server(t, "server")
	kp := &keyPair{certFile: first.CertFile, keyFile: first.KeyFile, log: nil}
	if err := kp.load(); err != nil {
		t.Fatal(err)
	}
	kp.log = discard()
	c1, _ := kp.get(nil)

	// A renewed certificate, written over the same files with a later modification time.
	second := ca.Server(t, "renewed")
	for _, p := range [][2]string{{second.CertFile, first.CertFile}, {second.KeyFile, first.KeyFile}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(p[1], later, later); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := kp.get(nil); c != c1 {
		t.Fatal("reloaded before ReloadInterval passed")
	}
	kp.lastCheck = time.Time{}
	c2, _ := kp.get(nil)
	if c2 == c1 || string(c2.Certificate[0]) != string(second.TLS.Certificate[0]) {
		t.Fatal("the renewed certificate was not loaded")
	}

	// A broken renewal keeps the previous certificate.
	if err := os.WriteFile(first.KeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	evenLater := time.Now().Add(2 * time.Minute)
	_ = os.Chtimes(first.KeyFile, evenLater, evenLater)
	kp.lastCheck = time.Time{}
	if c3, err := kp.get(nil); err != nil || c3 != c2 {
		t.Fatalf("after a broken renewal: %v, same certificate: %v", err, c3 == c2)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestEarlyChecks: CheckHTTP and TapHandle decide from headers alone, as Authenticate does; the tap
// lets the Exempt methods through without a token, and anonymous servers accept everything.
func TestEarlyChecks(t *testing.T) {
	a := newAuth(t)
	anon, err := New(Config{Anonymous: "default"})
	if err != nil {
		t.Fatal(err)
	}
	tap := a.TapHandle()
	for _, tt := range []struct {
		name, method string
		header       []string // authorization values
		ok           bool
	}{
		{"valid token", "/qingcloud.iaas.v1.CallService/Call", []string{"Bearer " + tokenA}, true},
		{"no token", "/qingcloud.iaas.v1.CallService/Call", nil, false},
		{"wrong token", "/qingcloud.iaas.v1.CallService/Call", []string{"Bearer " + strings.Repeat("C", 43)}, false},
		{"two different tokens", "/qingcloud.iaas.v1.CallService/Call", []string{"Bearer " + tokenA, "Bearer " + tokenB}, false},
		{"health without a token", "/grpc.health.v1.Health/Check", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/iaas:call", nil)
			for _, v := range tt.header {
				r.Header.Add("Authorization", v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, tapErr := tap(ctx, &grpctap.Info{FullMethodName: tt.method, Header: metadata.MD{"authorization": tt.header}})
			if (tapErr == nil) != tt.ok {
				t.Errorf("TapHandle: %v, want ok=%v", tapErr, tt.ok)
			}
			if !Exempt(tt.method) {
				if err := a.CheckHTTP(r); (err == nil) != tt.ok || (err != nil && status.Code(err) != codes.Unauthenticated) {
					t.Errorf("CheckHTTP: %v, want ok=%v", err, tt.ok)
				}
			}
			if err := anon.CheckHTTP(r); err != nil {
				t.Errorf("anonymous CheckHTTP: %v", err)
			}
			if _, err := anon.TapHandle()(ctx, &grpctap.Info{FullMethodName: tt.method}); err != nil {
				t.Errorf("anonymous TapHandle: %v", err)
			}
		})
	}
}
