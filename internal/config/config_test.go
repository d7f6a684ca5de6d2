package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth/authtest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// writeFile writes a config file into a fresh folder and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A token and its hash for tests.
var (
	tokenA = strings.Repeat("a", 40)
	hashA  = auth.HashToken(tokenA)
	tokenB = strings.Repeat("b", 40)
	hashB  = auth.HashToken(tokenB)
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.UseEmulator() || c.AuthRequired() || c.File != "" {
		t.Fatalf("UseEmulator=%v AuthRequired=%v File=%q", c.UseEmulator(), c.AuthRequired(), c.File)
	}
	want := Config{GRPCAddr: "127.0.0.1:9090", HTTPAddr: "127.0.0.1:8080", Zone: DefaultZone, Endpoint: DefaultEndpoint,
		ConnectionRetries: 3, ShutdownGrace: 15 * time.Second, LogLevel: "info", EmulatorAddr: "127.0.0.1:0",
		EmulatorJobPending: 500 * time.Millisecond, EmulatorJobWorking: 2 * time.Second, Quota: Quota{2000, time.Hour}}
	if c.GRPCAddr != want.GRPCAddr || c.HTTPAddr != want.HTTPAddr || c.HealthAddr != "" || c.Zone != want.Zone ||
		c.Endpoint != want.Endpoint || c.ConnectionRetries != want.ConnectionRetries || c.ConnectionTimeout != 0 ||
		c.ShutdownGrace != want.ShutdownGrace || c.LogLevel != want.LogLevel || c.EmulatorAddr != want.EmulatorAddr ||
		c.EmulatorJobPending != want.EmulatorJobPending || c.EmulatorJobWorking != want.EmulatorJobWorking || c.Quota != want.Quota {
		t.Fatalf("defaults = %+v", c)
	}
	if len(c.Profiles) != 1 || c.Profiles[0].Name != DefaultProfile || len(c.Tokens) != 0 {
		t.Fatalf("profiles %+v tokens %d", c.Profiles, len(c.Tokens))
	}
	if got := c.Source(SettingZone); got != "default" {
		t.Fatalf("Source(zone) = %q", got)
	}
}

// TestPrecedence checks file < variables < flags for every kind of setting, and that Source names
// the place each value came from.
func TestPrecedence(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("flag-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, `
qy_access_key_id: 'FILEKEY'
qy_secret_access_key: 'file-secret'
zone: 'sh1a'
host: 'file.example'
port: 8443
protocol: 'https'
uri: '/iaas'
connection_retries: 1
connection_timeout: 30
log_level: 'warn'            # sdk-go's own; not ours
qingcloud_grpc:
  grpc_addr: 127.0.0.1:7001
  http_addr: 127.0.0.1:7002
  log_level: debug
  shutdown_grace: 20s
  quota_requests: 100
`)
	envAll := map[string]string{
		"QINGCLOUD_CONFIG": file, "QINGCLOUD_ACCESS_KEY": "ENVKEY", "QINGCLOUD_SECRET_KEY": "env-secret",
		"QINGCLOUD_ZONE": "gd2a", "QINGCLOUD_ENDPOINT": "http://127.0.0.1:7780/iaas",
		"QINGCLOUD_CONNECTION_RETRIES": "2", "QINGCLOUD_CONNECTION_TIMEOUT": "10s",
		"QINGCLOUD_GRPC_ADDR": "127.0.0.1:8001", "QINGCLOUD_LOG_LEVEL": "warn", "QINGCLOUD_SHUTDOWN_GRACE": "25s",
		"QINGCLOUD_QUOTA_REQUESTS": "200",
	}
	flags := []string{"-access-key", "FLAGKEY", "-secret-key-file", secretFile, "-zone", "pek3b",
		"-endpoint", "https://flag.example/iaas/", "-connection-retries", "0", "-connection-timeout", "3",
		"-grpc-addr", "127.0.0.1:9001", "-log-level", "error", "-shutdown-grace", "5s", "-quota-requests", "300"}

	type want struct {
		key, secret, zone, endpoint, grpc, http, level string
		retries                                        int
		timeout, grace                                 time.Duration
		quota                                          int
		zoneSrc                                        string
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want want
	}{
		{"file only", nil, map[string]string{"QINGCLOUD_CONFIG": file},
			want{"FILEKEY", "file-secret", "sh1a", "https://file.example:8443/iaas", "127.0.0.1:7001", "127.0.0.1:7002", "debug", 1, 30 * time.Second, 20 * time.Second, 100, file + ":4: zone"}},
		{"variables override the file", nil, envAll,
			want{"ENVKEY", "env-secret", "gd2a", "http://127.0.0.1:7780/iaas", "127.0.0.1:8001", "127.0.0.1:7002", "warn", 2, 10 * time.Second, 25 * time.Second, 200, "QINGCLOUD_ZONE"}},
		{"flags override variables", flags, envAll,
			want{"FLAGKEY", "flag-secret", "pek3b", "https://flag.example/iaas/", "127.0.0.1:9001", "127.0.0.1:7002", "error", 0, 3 * time.Second, 5 * time.Second, 300, "-zone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got := want{c.Credentials.AccessKeyID, c.Credentials.SecretAccessKey, c.Zone, c.Endpoint, c.GRPCAddr, c.HTTPAddr, c.LogLevel,
				c.ConnectionRetries, c.ConnectionTimeout, c.ShutdownGrace, c.Quota.Requests, c.Source(SettingZone)}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if c.UseEmulator() || c.File != file {
				t.Fatalf("UseEmulator=%v File=%q", c.UseEmulator(), c.File)
			}
			if len(c.Profiles) != 1 || c.Profiles[0].Credentials != c.Credentials || c.Profiles[0].Quota != c.Quota {
				t.Fatalf("default profile %+v", c.Profiles)
			}
		})
	}
}

func TestDefaultFileIsQingCloudsOwn(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".qingcloud"), 0o700); err != nil {
		t.Fatal(err)
	}
	// sdk-go's DefaultConfigFileContent with keys filled in, plus the CLI's zone.
	content := `# QingCloud services configuration
qy_access_key_id: 'ACCESS_KEY_ID'
qy_secret_access_key: 'SECRET_ACCESS_KEY'
host: 'api.qingcloud.com'
port: 443
protocol: 'https'
uri: '/iaas'
connection_retries: 3
connection_timeout: 30
# Valid log levels are "debug", "info", "warn", "error", and "fatal".
log_level: 'warn'
zone: 'pek3a'
credential_proxy_host: '169.254.169.254'
`
	path := filepath.Join(home, ".qingcloud", "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	c, err := Load(nil, env(map[string]string{"HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Credentials.AccessKeyID != "ACCESS_KEY_ID" || c.Credentials.SecretAccessKey != "SECRET_ACCESS_KEY" ||
		c.Endpoint != "https://api.qingcloud.com:443/iaas" || c.Zone != "pek3a" || c.ConnectionTimeout != 30*time.Second || c.ConnectionRetries != 3 {
		t.Fatalf("config = %+v", c)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings for a 0600 file: %v", c.Warnings)
	}
	after, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if string(b) != content || !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("Load changed the config file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("Load wrote files: %v", entries)
	}

	// Readable by others while holding a secret: a warning naming the file, not the secret.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Load(nil, env(map[string]string{"HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], path) || strings.Contains(c.Warnings[0], "SECRET_ACCESS_KEY") {
		t.Fatalf("warnings = %v", c.Warnings)
	}
}

func TestMissingFiles(t *testing.T) {
	// A missing default file is fine: the emulator serves.
	c, err := Load(nil, env(map[string]string{"HOME": t.TempDir()}))
	if err != nil || !c.UseEmulator() || c.File != "" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-config", missing}, nil, "-config"},
		{nil, map[string]string{"QINGCLOUD_CONFIG": missing}, "QINGCLOUD_CONFIG"},
		{[]string{"-config", ""}, nil, "-config is empty"},
	} {
		_, err := Load(tt.args, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%v, %v) = %v, want an error naming %q", tt.args, tt.env, err, tt.want)
		}
	}
	// -config wins over QINGCLOUD_CONFIG.
	f := writeFile(t, "zone: gd2a\n")
	c, err = Load([]string{"-config", f}, env(map[string]string{"QINGCLOUD_CONFIG": missing}))
	if err != nil || c.Zone != "gd2a" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
}

func TestEndpointFromFile(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"zone: pek3a\n", DefaultEndpoint},
		{"host: api.qingcloud.com\n", "https://api.qingcloud.com:443/iaas"},
		{"protocol: http\nhost: 127.0.0.1\nport: 7780\n", "http://127.0.0.1:7780/iaas"},
		{"protocol: http\nhost: emu.local\n", "http://emu.local:80/iaas"},
		{"host: h\nport: '8443'\nuri: //iaas//\n", "https://h:8443/iaas/"},
		{"host: h\nuri: iaas/\n", "https://h:443/iaas/"},
		{"host: '::1'\nprotocol: HTTP\nport: 7780\n", "http://[::1]:7780/iaas"},
	}
	for _, tt := range tests {
		c, err := Load([]string{"-config", writeFile(t, tt.file)}, env(nil))
		if err != nil {
			t.Fatalf("%q: %v", tt.file, err)
		}
		if c.Endpoint != tt.want {
			t.Errorf("%q: endpoint %q, want %q", tt.file, c.Endpoint, tt.want)
		}
	}
}

func TestProfilesAndTokens(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b.secret"), []byte("secret-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	content := `
qy_access_key_id: DEFAULTKEY
qy_secret_access_key: default-secret
zone: pek3a
qingcloud_grpc:
  quota_requests: 1000
  profiles:
    team-b:
      qy_access_key_id: KEYB
      secret_access_key_file: b.secret   # relative to this file
      zone: gd2a
      quota_window: 30m
    team-a:
      qy_access_key_id: KEYA
      qy_secret_access_key: secret-a
      quota_requests: 50
  tokens:
    - {name: a-ci, sha256: ` + hashA + `, profile: team-a}
    - {name: b-ci, sha256: ` + strings.ToUpper(hashB) + `, profile: team-b}
    - sha256: ` + auth.HashToken(strings.Repeat("d", 40)) + `
`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{"-config", path}, env(map[string]string{"QINGCLOUD_TOKEN_SHA256": auth.HashToken(strings.Repeat("e", 40))}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Profile{
		{Name: "default", Zone: "pek3a", Quota: Quota{1000, time.Hour}},
		{Name: "team-a", Zone: "pek3a", Quota: Quota{50, time.Hour}},
		{Name: "team-b", Zone: "gd2a", Quota: Quota{1000, 30 * time.Minute}},
	}
	keys := []string{"DEFAULTKEY/default-secret", "KEYA/secret-a", "KEYB/secret-b"}
	if len(c.Profiles) != len(want) {
		t.Fatalf("profiles = %v", c.Profiles)
	}
	for i, p := range c.Profiles {
		if p.Name != want[i].Name || p.Zone != want[i].Zone || p.Quota != want[i].Quota || p.Credentials.AccessKeyID+"/"+p.Credentials.SecretAccessKey != keys[i] {
			t.Errorf("profile %d = %+v (%s), want %+v (%s)", i, p, p.Credentials.AccessKeyID, want[i], keys[i])
		}
	}
	wantTokens := map[string]string{"a-ci": "team-a", "b-ci": "team-b", "qingcloud_grpc.tokens[2]": "default", "QINGCLOUD_TOKEN_SHA256#1": "default"}
	if len(c.Tokens) != len(wantTokens) || !c.AuthRequired() {
		t.Fatalf("tokens = %+v", c.Tokens)
	}
	for _, tok := range c.Tokens {
		if wantTokens[tok.Name] != tok.Profile {
			t.Errorf("token %s -> %s", tok.Name, tok.Profile)
		}
	}
	a, err := auth.New(auth.Config{Tokens: c.Tokens})
	if err != nil || a.Anonymous() {
		t.Fatal(err)
	}
}

func TestEmulatorModeProfiles(t *testing.T) {
	// No keys anywhere: profiles run on the emulator, each with its own account (made by the server).
	path := writeFile(t, `
qingcloud_grpc:
  profiles:
    team-a: {zone: sh1a}
    team-b: {}
  tokens:
    - {sha256: `+hashA+`, profile: team-a}
    - {sha256: `+hashB+`, profile: team-b}
`)
	c, err := Load([]string{"-config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.UseEmulator() || len(c.Profiles) != 3 || c.Profiles[1].Zone != "sh1a" || c.Profiles[2].Zone != DefaultZone {
		t.Fatalf("UseEmulator=%v profiles=%+v", c.UseEmulator(), c.Profiles)
	}
}

func TestNonLoopbackNeedsCallerAuth(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	srv := ca.Server(t, "server")
	tokenFile := writeFile(t, "qy_access_key_id: K\nqy_secret_access_key: S\nqingcloud_grpc:\n  tokens: [{sha256: "+hashA+"}]\n")
	keys := map[string]string{"QINGCLOUD_ACCESS_KEY": "K", "QINGCLOUD_SECRET_KEY": "S"}
	withToken := map[string]string{"QINGCLOUD_ACCESS_KEY": "K", "QINGCLOUD_SECRET_KEY": "S", "QINGCLOUD_TOKEN_SHA256": hashA}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		warn    bool
	}{
		{"loopback without auth", []string{"-grpc-addr", "127.0.0.1:0", "-http-addr", "[::1]:0"}, keys, "", false},
		{"localhost without auth", []string{"-grpc-addr", "localhost:9090"}, keys, "", false},
		{"all interfaces without auth", []string{"-grpc-addr", "0.0.0.0:9090"}, keys, "-grpc-addr: \"0.0.0.0:9090\" is not a loopback address and no caller authentication", false},
		{"empty host without auth", nil, map[string]string{"QINGCLOUD_HTTP_ADDR": ":8080"}, "QINGCLOUD_HTTP_ADDR: \":8080\" is not a loopback address", false},
		{"emulator on all interfaces", []string{"-grpc-addr", "0.0.0.0:9090"}, nil, "is not a loopback address", false},
		{"tokens from a variable", []string{"-grpc-addr", "0.0.0.0:9090", "-http-addr", "10.0.0.1:8080"}, withToken, "", true},
		{"tokens from the file", []string{"-config", tokenFile, "-grpc-addr", "0.0.0.0:9090"}, nil, "", true},
		{"tokens with TLS", []string{"-grpc-addr", "0.0.0.0:9090", "-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile}, withToken, "", false},
		{"mutual TLS only", []string{"-grpc-addr", "0.0.0.0:9090", "-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile, "-tls-client-ca", ca.File}, keys, "", false},
		{"TLS without caller auth", []string{"-grpc-addr", "0.0.0.0:9090", "-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile}, keys, "no caller authentication is configured", false},
		{"emulator not on loopback", []string{"-emulator-addr", "0.0.0.0:0"}, nil, "-emulator-addr: the built-in emulator accepts publicly known keys", false},
		{"health listener may be public", []string{"-health-addr", "0.0.0.0:9091"}, keys, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(c.Warnings) > 0; got != tt.warn {
				t.Fatalf("warnings = %v, want some: %v", c.Warnings, tt.warn)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "127.1.2.3:1": true, "[::1]:9090": true, "localhost:80": true, "LOCALHOST:80": true,
		"0.0.0.0:9090": false, ":9090": false, "[::]:9090": false, "10.0.0.1:80": false, "example.com:80": false, "9090": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTLSSettings(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	srv := ca.Server(t, "server")
	garbage := writeFile(t, "not a certificate")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // "" = no error
	}{
		{"cert and key", []string{"-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile}, nil, ""},
		{"cert, key and client CA", []string{"-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile, "-tls-client-ca", ca.File}, nil, ""},
		{"cert without key", []string{"-tls-cert", srv.CertFile}, nil, "-tls-cert: a TLS certificate is set but no key"},
		{"key without cert", nil, map[string]string{"QINGCLOUD_TLS_KEY_FILE": srv.KeyFile}, "QINGCLOUD_TLS_KEY_FILE: a TLS key is set but no certificate"},
		{"client CA without cert", []string{"-tls-client-ca", ca.File}, nil, "-tls-client-ca: mutual TLS needs the server's own certificate"},
		{"missing cert file", []string{"-tls-cert", "/does/not/exist.pem", "-tls-key", srv.KeyFile}, nil, "-tls-cert, -tls-key: certificate file"},
		{"cert and key swapped", []string{"-tls-cert", srv.KeyFile, "-tls-key", srv.CertFile}, nil, "-tls-cert, -tls-key:"},
		{"bad client CA", []string{"-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile, "-tls-client-ca", garbage}, nil, "-tls-client-ca: CA file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if tt.want == "" {
				if err != nil || !c.TLS.Enabled() {
					t.Fatalf("Load = %v, TLS %+v", err, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want %q", err, tt.want)
			}
		})
	}
	// Paths in the file are relative to the file.
	dir := filepath.Dir(srv.CertFile)
	f := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(f, []byte("qingcloud_grpc:\n  tls:\n    cert_file: "+filepath.Base(srv.CertFile)+"\n    key_file: "+filepath.Base(srv.KeyFile)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{"-config", f}, env(nil))
	if err != nil || c.TLS.CertFile != srv.CertFile || c.Source(SettingTLSCertFile) != f+":3: qingcloud_grpc.tls.cert_file" {
		t.Fatalf("Load = %v, TLS %+v, source %q", err, c.TLS, c.Source(SettingTLSCertFile))
	}
}

// TestErrorsNameTheSetting checks that bad configuration fails with a message naming the flag, the
// variable, or the file, line and key, and never the secret key or a token.
func TestErrorsNameTheSetting(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	tests := []struct {
		name string
		file string // config file content; "" = none
		args []string
		env  map[string]string
		want string // "FILE" stands for the file's path
	}{
		{"key without secret", "", nil, map[string]string{"QINGCLOUD_ACCESS_KEY": "K"}, "QINGCLOUD_ACCESS_KEY sets an access key but no secret key"},
		{"secret without key", "", nil, map[string]string{"QINGCLOUD_SECRET_KEY": secret}, "QINGCLOUD_SECRET_KEY sets a secret key but no access key"},
		{"key overrides half of the file's pair", "qy_access_key_id: A\nqy_secret_access_key: " + secret + "\n", nil, map[string]string{"QINGCLOUD_ACCESS_KEY": "B"}, "QINGCLOUD_ACCESS_KEY overrides one half of the key pair in FILE"},
		{"secret overrides half of the file's pair", "qy_access_key_id: A\nqy_secret_access_key: x\n", nil, map[string]string{"QINGCLOUD_SECRET_KEY": secret}, "QINGCLOUD_SECRET_KEY overrides one half of the key pair in FILE"},
		{"upper-case zone flag", "", []string{"-zone", "PEK3A"}, nil, "-zone: zone \"PEK3A\" must be a lower-case zone id"},
		{"bad zone in file", "zone: 'PEK 3A'\n", nil, nil, "FILE:1: zone: zone"},
		{"bad endpoint variable", "", nil, map[string]string{"QINGCLOUD_ENDPOINT": "ftp://x"}, "QINGCLOUD_ENDPOINT: endpoint \"ftp://x\" must be an http or https URL"},
		{"endpoint with user info", "", []string{"-endpoint", "https://u:" + secret + "@h/iaas"}, nil, "-endpoint"},
		{"bad protocol in file", "host: h\nprotocol: ftp\n", nil, nil, "FILE:1: host, protocol: protocol \"ftp\" must be https or http"},
		{"bad port in file", "host: h\nport: https\n", nil, nil, "FILE:2: port: port \"https\" must be a number"},
		{"bad connection_timeout in file", "connection_timeout: soon\n", nil, nil, "FILE:1: connection_timeout: \"soon\" must be a duration"},
		{"bad connection_retries variable", "", nil, map[string]string{"QINGCLOUD_CONNECTION_RETRIES": "-1"}, "QINGCLOUD_CONNECTION_RETRIES: \"-1\" must be a whole number from 0 to 10"},
		{"bad address flag", "", []string{"-grpc-addr", "9090"}, nil, "-grpc-addr: listen address \"9090\" must be host:port"},
		{"bad address in file", "qingcloud_grpc:\n  http_addr: 127.0.0.1:99999\n", nil, nil, "FILE:2: qingcloud_grpc.http_addr: listen address"},
		{"bad shutdown grace", "", []string{"-shutdown-grace", "0s"}, nil, "-shutdown-grace: \"0s\" must be a duration"},
		{"bad log level variable", "", nil, map[string]string{"QINGCLOUD_LOG_LEVEL": "loud"}, "QINGCLOUD_LOG_LEVEL: log level \"loud\""},
		{"unknown flag", "", []string{"-nope"}, nil, "-nope"},
		{"missing secret file", "", []string{"-access-key", "K", "-secret-key-file", "/does/not/exist"}, nil, "-secret-key-file: open /does/not/exist"},
		{"stray argument", "", []string{"serve"}, nil, "unexpected argument"},
		{"not YAML", "zone: [pek3a\n", nil, nil, "FILE: not valid YAML"},
		{"not a mapping", "- a\n- b\n", nil, nil, "FILE:1: the file must be a mapping"},
		{"duplicate key", "zone: pek3a\nzone: sh1a\n", nil, nil, "FILE:2: zone: set twice (first on line 1)"},
		{"secret as a list", "qy_secret_access_key: [" + secret + "]\n", nil, nil, "FILE:1: qy_secret_access_key: must be a single value"},
		{"unknown key in our section", "qingcloud_grpc:\n  grcp_addr: 127.0.0.1:1\n", nil, nil, "FILE:2: qingcloud_grpc.grcp_addr: unknown setting (known keys: grpc_addr"},
		{"unknown tls key", "qingcloud_grpc:\n  tls:\n    cert: x\n", nil, nil, "FILE:3: qingcloud_grpc.tls.cert: unknown setting"},
		{"plain token in the file", "qingcloud_grpc:\n  tokens:\n    - token: " + tokenA + "\n", nil, nil, "FILE:3: qingcloud_grpc.tokens[0].token: unknown setting (store the token's SHA-256 as sha256"},
		{"token pasted as its hash", "qy_access_key_id: K\nqy_secret_access_key: S\nqingcloud_grpc:\n  tokens:\n    - sha256: " + tokenA + "\n", nil, nil, "FILE:5: qingcloud_grpc.tokens[0].sha256: must be 64 hex digits"},
		{"token without hash", "qingcloud_grpc:\n  tokens:\n    - name: x\n", nil, nil, "FILE:3: qingcloud_grpc.tokens[0]: the token has no sha256"},
		{"token for an unknown profile", "qy_access_key_id: K\nqy_secret_access_key: S\nqingcloud_grpc:\n  tokens:\n    - {sha256: " + hashA + ", profile: nobody}\n", nil, nil, "FILE:5: qingcloud_grpc.tokens[0].profile: no profile \"nobody\""},
		{"same hash twice", "qy_access_key_id: K\nqy_secret_access_key: S\nqingcloud_grpc:\n  tokens:\n    - {sha256: " + hashA + "}\n    - {sha256: " + hashA + "}\n", nil, nil, "FILE:6: qingcloud_grpc.tokens[1].sha256: the same token hash is also given by"},
		{"token variable not a hash", "", nil, map[string]string{"QINGCLOUD_ACCESS_KEY": "K", "QINGCLOUD_SECRET_KEY": "S", "QINGCLOUD_TOKEN_SHA256": tokenA}, "QINGCLOUD_TOKEN_SHA256 (hash 1): must be 64 hex digits"},
		{"token flag not hex", "", []string{"-token-sha256", strings.Repeat("z", 64)}, map[string]string{"QINGCLOUD_ACCESS_KEY": "K", "QINGCLOUD_SECRET_KEY": "S"}, "-token-sha256 (hash 1): must be hex digits only"},
		{"profile named default", "qingcloud_grpc:\n  profiles:\n    default: {}\n", nil, nil, "FILE:3: qingcloud_grpc.profiles.default: the profile name \"default\" is reserved"},
		{"profile with a bad name", "qingcloud_grpc:\n  profiles:\n    'team a': {}\n", nil, nil, "FILE:3: qingcloud_grpc.profiles.team a: a profile name must be"},
		{"profile key without secret", "qingcloud_grpc:\n  profiles:\n    a:\n      qy_access_key_id: K\n", nil, nil, "FILE:4: qingcloud_grpc.profiles.a.qy_access_key_id: the profile has an access key but no"},
		{"profile secret without key", "qingcloud_grpc:\n  profiles:\n    a:\n      qy_secret_access_key: " + secret + "\n", nil, nil, "FILE:3: qingcloud_grpc.profiles.a: the profile has a secret key but no qy_access_key_id"},
		{"profile secret twice", "qingcloud_grpc:\n  profiles:\n    a:\n      qy_access_key_id: K\n      qy_secret_access_key: " + secret + "\n      secret_access_key_file: f\n", nil, nil, "FILE:6: qingcloud_grpc.profiles.a.secret_access_key_file: set qy_secret_access_key or secret_access_key_file, not both"},
		{"profile secret file missing", "qingcloud_grpc:\n  profiles:\n    a:\n      qy_access_key_id: K\n      secret_access_key_file: nope\n", nil, nil, "FILE:5: qingcloud_grpc.profiles.a.secret_access_key_file: open"},
		{"profile bad zone", "qingcloud_grpc:\n  profiles:\n    a: {qy_access_key_id: K, qy_secret_access_key: S, zone: X}\n", nil, nil, "FILE:3: qingcloud_grpc.profiles.a.zone: zone \"X\""},
		{"profile bad quota", "qingcloud_grpc:\n  profiles:\n    a: {qy_access_key_id: K, qy_secret_access_key: S, quota_requests: 0}\n", nil, nil, "FILE:3: qingcloud_grpc.profiles.a.quota_requests: \"0\" must be a whole number"},
		{"profile without keys among real ones", "qingcloud_grpc:\n  profiles:\n    a: {qy_access_key_id: K, qy_secret_access_key: S}\n    b: {zone: pek3a}\n", nil, nil, "FILE:4: qingcloud_grpc.profiles.b: the profile has no qy_access_key_id"},
		{"profiles without tokens or default keys", "qingcloud_grpc:\n  profiles:\n    a: {qy_access_key_id: K, qy_secret_access_key: S}\n", nil, nil, "qingcloud_grpc.profiles: profiles are configured but no bearer tokens"},
		{"tokens for a default without keys", "qingcloud_grpc:\n  profiles:\n    a: {qy_access_key_id: K, qy_secret_access_key: S}\n  tokens: [{sha256: " + hashA + "}]\n", nil, nil, "FILE:4: qingcloud_grpc.tokens[0]: the token acts as the default profile, which has no QingCloud keys"},
		{"tokens section not a list", "qingcloud_grpc:\n  tokens: " + hashA + "\n", nil, nil, "FILE:2: qingcloud_grpc.tokens: must be a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, want := tt.args, tt.want
			if tt.file != "" {
				f := writeFile(t, tt.file)
				args = append([]string{"-config", f}, args...)
				want = strings.ReplaceAll(want, "FILE", f)
			}
			_, err := Load(args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load error = %v\nwant it to contain %q", err, want)
			}
			for _, s := range []string{secret, tokenA} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error reveals a secret: %v", err)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help"} {
		if _, err := Load([]string{arg}, env(nil)); !errors.Is(err, ErrHelp) {
			t.Errorf("Load(%s) = %v, want ErrHelp", arg, err)
		}
	}
	var b strings.Builder
	Usage(&b)
	for _, s := range settings {
		if !strings.Contains(b.String(), "-"+s.flag) || !strings.Contains(b.String(), s.env) {
			t.Errorf("usage misses -%s or %s", s.flag, s.env)
		}
	}
}

func TestBuildEndpoint(t *testing.T) {
	got, err := BuildEndpoint("", "", 0, "")
	if err != nil || got != "https://api.qingcloud.com:443/iaas" {
		t.Fatalf("BuildEndpoint defaults = %q, %v", got, err)
	}
	if _, err := BuildEndpoint("https", "h/x", 0, ""); err == nil {
		t.Fatal("a host with a path was accepted")
	}
}

func TestTelemetrySettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.TraceExporter != "none" || c.OTLPInsecure || c.TraceSampleRatio != 1 || c.OTLPEndpoint != "" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	f := writeFile(t, "qingcloud_grpc:\n  trace_exporter: stdout\n  otlp_insecure: true\n  trace_sample_ratio: 0.5\n")
	c, err = Load([]string{"-config", f}, env(nil))
	if err != nil || c.TraceExporter != "stdout" || !c.OTLPInsecure || c.TraceSampleRatio != 0.5 {
		t.Fatalf("file: %+v, %v", c, err)
	}
	// A boolean flag without a value; flags override the file.
	c, err = Load([]string{"-config", f, "-trace-exporter", "otlp", "-otlp-endpoint", "collector:4317", "-otlp-insecure=false"}, env(nil))
	if err != nil || c.TraceExporter != "otlp" || c.OTLPInsecure || c.OTLPEndpoint != "collector:4317" {
		t.Fatalf("flags: %+v, %v", c, err)
	}
	c, err = Load([]string{"-otlp-insecure"}, env(nil))
	if err != nil || !c.OTLPInsecure {
		t.Fatalf("-otlp-insecure: %+v, %v", c, err)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-trace-exporter", "jaeger"}, nil, "-trace-exporter: trace exporter \"jaeger\" must be none, stdout or otlp"},
		{nil, map[string]string{"QINGCLOUD_OTLP_INSECURE": "maybe"}, "QINGCLOUD_OTLP_INSECURE: \"maybe\" must be true or false"},
		{[]string{"-trace-sample-ratio", "0"}, nil, "-trace-sample-ratio: sample ratio \"0\" must be a number in (0, 1]"},
	} {
		if _, err := Load(tt.args, env(tt.env)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%v, %v) = %v, want %q", tt.args, tt.env, err, tt.want)
		}
	}
}

func TestQuotaBudgets(t *testing.T) {
	c, err := Load([]string{"-quota-requests", "-1"}, env(nil))
	if err != nil || c.Quota.Requests != -1 {
		t.Fatalf("-quota-requests -1: %+v, %v", c.Quota, err)
	}
	// Two profiles with one access key share its budget, so they must agree on it.
	f := writeFile(t, `
qingcloud_grpc:
  profiles:
    a: {qy_access_key_id: K, qy_secret_access_key: S, quota_requests: 100}
    b: {qy_access_key_id: K, qy_secret_access_key: S, quota_requests: 200}
  tokens: [{sha256: `+hashA+`, profile: a}]
`)
	if _, err := Load([]string{"-config", f}, env(nil)); err == nil || !strings.Contains(err.Error(), "profiles a and b use the same access key K but different quota budgets") {
		t.Fatalf("Load = %v", err)
	}
	f = writeFile(t, `
qingcloud_grpc:
  profiles:
    a: {qy_access_key_id: K, qy_secret_access_key: S, zone: pek3a}
    b: {qy_access_key_id: K, qy_secret_access_key: S, zone: sh1a}
  tokens: [{sha256: `+hashA+`, profile: a}, {sha256: `+hashB+`, profile: b}]
`)
	if c, err := Load([]string{"-config", f}, env(nil)); err != nil || len(c.Profiles) != 2 {
		t.Fatalf("one key, two zones: %v", err)
	}
}

func TestTokenHashesFlagOverridesVariable(t *testing.T) {
	e := env(map[string]string{"QINGCLOUD_ACCESS_KEY": "K", "QINGCLOUD_SECRET_KEY": "S", "QINGCLOUD_TOKEN_SHA256": hashA + "," + hashB})
	c, err := Load(nil, e)
	if err != nil || len(c.Tokens) != 2 || c.Tokens[1].Name != "QINGCLOUD_TOKEN_SHA256#2" || c.Source(SettingTokenSHA256) != "QINGCLOUD_TOKEN_SHA256" {
		t.Fatalf("variable: %+v, %v", c, err)
	}
	c, err = Load([]string{"-token-sha256", hashB}, e)
	if err != nil || len(c.Tokens) != 1 || c.Tokens[0].Name != "token-sha256#1" || c.Tokens[0].Profile != DefaultProfile {
		t.Fatalf("flag: %+v, %v", c.Tokens, err)
	}
	// In emulator mode the default profile has (the emulator's example) keys, so tokens may use it.
	if c, err := Load([]string{"-token-sha256", hashA}, env(nil)); err != nil || !c.UseEmulator() || len(c.Tokens) != 1 {
		t.Fatalf("emulator mode: %v", err)
	}
}

func TestCallAndAttemptTimeouts(t *testing.T) {
	file := writeFile(t, "qingcloud_grpc:\n  call_timeout: 2m\n  attempt_timeout: 20s\n")
	tests := []struct {
		name          string
		args          []string
		env           map[string]string
		call, attempt time.Duration
	}{
		{"defaults", nil, map[string]string{"HOME": t.TempDir()}, 60 * time.Second, 30 * time.Second},
		{"file", nil, map[string]string{"QINGCLOUD_CONFIG": file}, 2 * time.Minute, 20 * time.Second},
		{"env over file", nil, map[string]string{"QINGCLOUD_CONFIG": file, "QINGCLOUD_CALL_TIMEOUT": "90s"}, 90 * time.Second, 20 * time.Second},
		{"flags over env", []string{"-call-timeout", "5s", "-attempt-timeout", "2s"},
			map[string]string{"QINGCLOUD_CONFIG": file, "QINGCLOUD_CALL_TIMEOUT": "90s"}, 5 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.CallTimeout != tt.call || c.AttemptTimeout != tt.attempt {
				t.Fatalf("call %v attempt %v, want %v and %v", c.CallTimeout, c.AttemptTimeout, tt.call, tt.attempt)
			}
		})
	}
	for _, bad := range [][]string{{"-call-timeout", "soon"}, {"-attempt-timeout", "0s"}} {
		_, err := Load(bad, env(map[string]string{"HOME": t.TempDir()}))
		if err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("Load(%v) error %v, want it to name %s", bad, err, bad[0])
		}
	}
}
