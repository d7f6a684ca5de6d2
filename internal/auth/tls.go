package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of a server's TLS setup.
type TLSFiles struct {
	// CertFile and KeyFile are the server's certificate chain and private key. Both or neither.
	CertFile, KeyFile string
	// ClientCAFile, when set, turns on mutual TLS: every client must present a certificate signed by
	// one of these CAs.
	ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" }

// ReloadInterval is how often, at most, the certificate files are checked for changes: a renewed
// certificate (cert-manager, certbot) is picked up without a restart.
const ReloadInterval = 10 * time.Second

// ServerTLS loads the files and returns a server TLS configuration: TLS 1.2 at least, the
// certificate reloaded when its files change, and client certificates required and verified when
// ClientCAFile is set. Errors say which file is at fault. log (nil discards) receives reload failures.
func ServerTLS(f TLSFiles, log *slog.Logger) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("auth: TLS needs both a certificate file and a key file")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kp := &keyPair{certFile: f.CertFile, keyFile: f.KeyFile, log: log}
	if err := kp.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: kp.get,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if f.ClientCAFile != "" {
		pool, err := LoadCertPool(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// LoadCertPool reads PEM CA certificates from file.
func LoadCertPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// keyPair serves a certificate and reloads it when its files change.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	lastCheck time.Time
}

// load reads both files; the caller holds mu or is the only user.
func (k *keyPair) load() error {
	cs, err := os.Stat(k.certFile)
	if err != nil {
		return fmt.Errorf("certificate file: %w", err)
	}
	ks, err := os.Stat(k.keyFile)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		// The error of LoadX509KeyPair describes the PEM structure, never the key material.
		return fmt.Errorf("certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.certMod, k.keyMod, k.lastCheck = &cert, cs.ModTime(), ks.ModTime(), time.Now()
	return nil
}

// get implements tls.Config.GetCertificate.
func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.lastCheck) >= ReloadInterval {
		k.lastCheck = time.Now()
		cs, err1 := os.Stat(k.certFile)
		ks, err2 := os.Stat(k.keyFile)
		if err1 == nil && err2 == nil && (!cs.ModTime().Equal(k.certMod) || !ks.ModTime().Equal(k.keyMod)) {
			old := k.cert
			if err := k.load(); err != nil {
				k.cert = old
				k.log.Warn("TLS certificate files changed but could not be loaded; serving the previous certificate", "error", err)
			} else {
				k.log.Info("TLS certificate reloaded", "cert_file", k.certFile)
			}
		}
	}
	return k.cert, nil
}
