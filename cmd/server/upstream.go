package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// upstream is one backend.Client per credential profile (so each access key has its own client and
// quota budget), and the built-in emulator when no keys are configured.
type upstream struct {
	dir *auth.Directory
	emu *emulator.Server
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
func newUpstream(cfg *config.Config, log *slog.Logger) (*upstream, error) {
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

	var hc *http.Client
	if cfg.ConnectionTimeout > 0 {
		hc = httpClient(cfg.ConnectionTimeout)
	}
	tenants := make([]auth.Tenant, 0, len(profiles))
	for _, p := range profiles {
		// TODO(issue 6): pass cfg.ConnectionRetries and p.Quota once backend.Config has the fields.
		be, err := backend.New(backend.Config{
			Endpoint:    endpoint,
			Credentials: p.Credentials,
			HTTPClient:  hc,
			Logger:      log.With("component", "backend", "profile", p.Name),
		})
		if err != nil {
			u.close()
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
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

// httpClient is the upstream HTTP client with the configured connection (dial) timeout; the other
// settings are the backend's defaults. One client serves every profile, so connections are reused.
func httpClient(dial time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   max(dial, 5*time.Second),
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
		},
	}
}
