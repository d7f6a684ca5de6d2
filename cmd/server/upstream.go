package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
)

// upstream is one backend.Client per credential profile (so each access key has its own client and
// quota budget), and the built-in emulator when no keys are configured.
type upstream struct {
	dir     *auth.Directory
	emu     *emulator.Server
	clients []profileClient
}

type profileClient struct {
	name string
	be   *backend.Client
}

func (u *upstream) close() {
	if u.emu != nil {
		_ = u.emu.Close()
	}
}

// emulatorKeyID is the emulator access key id of a named profile in emulator mode.
func emulatorKeyID(profile string) string { return "EMULATOR-" + profile }

// newUpstream builds the profiles' clients; in emulator mode it first starts the emulator with one
// isolated account per profile (the default profile keeps the documented example keys).
func newUpstream(cfg *config.Config, tel *telemetry.Telemetry, log *slog.Logger) (*upstream, error) {
	u := &upstream{}
	profiles := append([]config.Profile(nil), cfg.Profiles...)
	endpoint := cfg.Endpoint
	if cfg.UseEmulator() {
		keys := map[string]string{}
		for i, p := range profiles {
			if p.Name == config.DefaultProfile {
				profiles[i].Credentials = signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}
			} else {
				profiles[i].Credentials = signer.Credentials{AccessKeyID: emulatorKeyID(p.Name), SecretAccessKey: auth.GenerateToken()}
			}
			keys[profiles[i].Credentials.AccessKeyID] = profiles[i].Credentials.SecretAccessKey
		}
		emu, err := emulator.Listen(cfg.EmulatorAddr, emulator.Options{
			Keys:       keys,
			JobPending: cfg.EmulatorJobPending,
			JobWorking: cfg.EmulatorJobWorking,
			Logger:     log.With("component", "emulator"),
		})
		if err != nil {
			return nil, fmt.Errorf("start the built-in emulator on %s (%s): %w", cfg.EmulatorAddr, cfg.Source(config.SettingEmulatorAddr), err)
		}
		u.emu = emu
		endpoint = emu.Endpoint()
		// The example key pair is public (QingCloud's documentation), so it is logged for pointing the
		// official SDKs and CLI at the emulator; the generated secrets of other profiles are not.
		log.Info("no QingCloud keys configured: serving from the built-in QingCloud emulator",
			"emulator_endpoint", endpoint,
			"example_access_key_id", emulator.DefaultAccessKeyID,
			"example_secret_access_key", emulator.DefaultSecretAccessKey,
			"zone", cfg.Zone)
	} else {
		for _, p := range profiles {
			log.Info("calling QingCloud", "endpoint", endpoint, "profile", p.Name, "access_key_id", p.Credentials.AccessKeyID, "zone", p.Zone)
		}
	}

	// One HTTP client for every profile (connections are reused), measured and traced by telemetry,
	// with the configured connection timeout.
	hc := &http.Client{Transport: tel.Transport(baseTransport(cfg.ConnectionTimeout, cfg.AttemptTimeout))}
	budgets := map[string]*budget.Budget{} // by access key: profiles sharing a key share its budget
	tenants := make([]auth.Tenant, 0, len(profiles))
	for _, p := range profiles {
		b := budgets[p.Credentials.AccessKeyID]
		if b == nil {
			var err error
			if b, err = budget.New(budget.Config{Limit: p.Quota.Requests, Window: p.Quota.Window}); err != nil {
				u.close()
				return nil, fmt.Errorf("profile %s: quota budget: %w", p.Name, err)
			}
			budgets[p.Credentials.AccessKeyID] = b
		}
		be, err := backend.New(backend.Config{
			Endpoint:       endpoint,
			Credentials:    p.Credentials,
			HTTPClient:     hc,
			MaxAttempts:    cfg.ConnectionRetries + 1,
			DefaultTimeout: cfg.CallTimeout,
			Timeout:        cfg.AttemptTimeout,
			Budget:         b,
			Logger:         log.With("component", "backend", "profile", p.Name),
		})
		if err != nil {
			u.close()
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		u.clients = append(u.clients, profileClient{name: p.Name, be: be})
		tenants = append(tenants, auth.Tenant{Profile: p.Name, Upstream: be, Zone: p.Zone})
	}
	dir, err := auth.NewDirectory(tenants...)
	if err != nil {
		u.close()
		return nil, err
	}
	u.dir = dir
	return u, nil
}

// stats returns every profile's upstream counters for /metrics (labelled by profile name, never by
// access key).
func (u *upstream) stats() []telemetry.UpstreamStats {
	out := make([]telemetry.UpstreamStats, 0, len(u.clients))
	for _, c := range u.clients {
		out = append(out, server.BackendStats(c.name, c.be.Stats()))
	}
	return out
}

// baseTransport is the upstream transport: the backend's defaults, with the dial timeout configured
// by connection_timeout (0: 5 s) and the wait for the answer's headers by attempt_timeout (0: 30 s).
func baseTransport(dial, attempt time.Duration) *http.Transport {
	if dial <= 0 {
		dial = 5 * time.Second
	}
	if attempt <= 0 {
		attempt = 30 * time.Second
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: attempt,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
	}
}
