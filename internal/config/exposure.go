package config

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
)

// tls checks the certificate settings and loads the files once, so that a bad file fails the start.
func (l *loader) tls() {
	c := l.c
	cert, key, ca := l.get(SettingTLSCertFile), l.get(SettingTLSKeyFile), l.get(SettingTLSClientCAFile)
	c.TLS = auth.TLSFiles{CertFile: cert.v, KeyFile: key.v, ClientCAFile: ca.v}
	switch {
	case cert.v == "" && key.v == "":
		if ca.v != "" {
			l.fail("%s: mutual TLS needs the server's own certificate too: set -tls-cert and -tls-key (or %s.tls.cert_file and key_file)", ca.src, Section)
		}
		return
	case cert.v == "":
		l.fail("%s: a TLS key is set but no certificate: set -tls-cert (QINGCLOUD_TLS_CERT_FILE, %s.tls.cert_file)", key.src, Section)
		return
	case key.v == "":
		l.fail("%s: a TLS certificate is set but no key: set -tls-key (QINGCLOUD_TLS_KEY_FILE, %s.tls.key_file)", cert.src, Section)
		return
	}
	if _, err := auth.ServerTLS(auth.TLSFiles{CertFile: cert.v, KeyFile: key.v}, nil); err != nil {
		l.fail("%s, %s: %v", cert.src, key.src, err)
	}
	if ca.v != "" {
		if _, err := auth.LoadCertPool(ca.v); err != nil {
			l.fail("%s: %v", ca.src, err)
		}
	}
}

// exposure enforces that non-loopback listeners have caller authentication, keeps the emulator on
// loopback, and warns about plaintext tokens and readable secrets.
func (l *loader) exposure() {
	c := l.c
	for _, name := range []string{SettingGRPCAddr, SettingHTTPAddr} {
		addr := map[string]string{SettingGRPCAddr: c.GRPCAddr, SettingHTTPAddr: c.HTTPAddr}[name]
		if IsLoopback(addr) {
			continue
		}
		if !c.AuthRequired() {
			l.fail("%s: %q is not a loopback address and no caller authentication is configured: add bearer tokens (%s.tokens in the config file, or QINGCLOUD_TOKEN_SHA256) or mutual TLS (-tls-client-ca), or listen on 127.0.0.1", c.Source(name), addr, Section)
		} else if len(c.Tokens) > 0 && c.TLS.CertFile == "" {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s is not a loopback address and TLS is off: bearer tokens cross the network in plaintext unless a proxy in front terminates TLS", c.Source(name), addr))
		}
	}
	if c.UseEmulator() && !IsLoopback(c.EmulatorAddr) {
		l.fail("%s: the built-in emulator accepts publicly known keys, so it listens on loopback only (serve it elsewhere with go run ./cmd/emulator)", c.Source(SettingEmulatorAddr))
	}
	if l.file != nil && l.fileHasSecrets() {
		if st, err := os.Stat(l.file.path); err == nil && st.Mode().Perm()&0o077 != 0 {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s holds secret keys and is readable by other users (mode %v); chmod 600 it", l.file.path, st.Mode().Perm()))
		}
	}
}

func (l *loader) fileHasSecrets() bool {
	if _, ok := l.file.values["qy_secret_access_key"]; ok {
		return true
	}
	for _, p := range l.file.profiles {
		if _, ok := p.values["qy_secret_access_key"]; ok {
			return true
		}
	}
	return false
}

// IsLoopback reports whether a listen address binds loopback only: "localhost" or a loopback IP.
// An empty host (all interfaces), 0.0.0.0, :: and other names are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%")
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
