package tenant

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/budget"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
)

// Set is the tenants of a configuration: a Directory of one backend.Client per profile, and the
// built-in emulator they call when no QingCloud keys are configured. Close it when done.
type Set struct {
	*Directory
	backends []Backend
	emu      *emulator.Server
}

// Backend is one profile's upstream client and the quota budget it spends (shared by the profiles
// of one access key).
type Backend struct {
	Profile string
	Client  *backend.Client
	Budget  *budget.Budget
}

// Options are what Build takes besides the configuration.
type Options struct {
	// Telemetry, when set, counts every profile's upstream calls and attempts (Telemetry.Upstream)
	// and traces them (Telemetry.Transport).
	Telemetry *telemetry.Telemetry
	// Logger receives the upstream endpoints and profiles at start, and each client's warnings
	// (never secrets). nil discards.
	Logger *slog.Logger
	// SharedBudget, when set, gives the Redis settings of an access key's quota budget, so replicas
	// share it (budget.Shared); nil, or a nil result, keeps the budget in this process.
	SharedBudget func(accessKeyID string) *budget.Shared
}

// EmulatorKeyID is the emulator access key id of a named profile (other than the default profile,
// which keeps emulator.DefaultAccessKeyID) in emulator mode.
func EmulatorKeyID(profile string) string { return "EMULATOR-" + profile }

// Build makes the tenants of cfg. Every profile gets its own backend.Client (signing with its keys)
// and the quota budget of its access key, shared by the profiles that use the same key; all clients
// send through one transport (backend.NewTransport with cfg's connection and attempt timeouts), so
// connections are reused. When cfg.UseEmulator, Build first starts the built-in emulator on
// cfg.EmulatorAddr with one isolated account per profile: the default profile gets the documented
// example keys, the others EmulatorKeyID and a random secret. Errors name the setting at fault.
func Build(cfg *config.Config, opts Options) (*Set, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{}
	profiles := append([]config.Profile(nil), cfg.Profiles...)
	endpoint := cfg.Endpoint
	if cfg.UseEmulator() {
		keys := map[string]string{}
		for i, p := range profiles {
			if p.Name == config.DefaultProfile {
				profiles[i].Credentials = signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}
			} else {
				profiles[i].Credentials = signer.Credentials{AccessKeyID: EmulatorKeyID(p.Name), SecretAccessKey: auth.GenerateToken()}
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
		s.emu = emu
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

	var rt http.RoundTripper = backend.NewTransport(cfg.ConnectionTimeout, 0, cfg.AttemptTimeout)
	if opts.Telemetry != nil {
		rt = opts.Telemetry.Transport(rt)
	}
	hc := &http.Client{Transport: rt}
	budgets := map[string]*budget.Budget{} // by access key: profiles sharing a key share its budget
	tenants := make([]Tenant, 0, len(profiles))
	for _, p := range profiles {
		b := budgets[p.Credentials.AccessKeyID]
		if b == nil {
			var err error
			bc := budget.Config{Limit: p.Quota.Requests, Window: p.Quota.Window}
			if opts.SharedBudget != nil {
				bc.Shared = opts.SharedBudget(p.Credentials.AccessKeyID)
			}
			if b, err = budget.New(bc); err != nil {
				return nil, errors.Join(fmt.Errorf("profile %s: quota budget: %w", p.Name, err), s.Close())
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
			// Metrics under the profile's name, never the access key's.
			Observer: opts.Telemetry.Upstream(p.Name, b),
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("profile %s: %w", p.Name, err), s.Close())
		}
		s.backends = append(s.backends, Backend{Profile: p.Name, Client: be, Budget: b})
		tenants = append(tenants, Tenant{Profile: p.Name, Upstream: be, Zone: p.Zone})
	}
	dir, err := NewDirectory(tenants...)
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.Directory = dir
	return s, nil
}

// Backends lists every profile's upstream client, in configuration order.
func (s *Set) Backends() []Backend { return s.backends }

// Emulator returns the built-in emulator the tenants call, or nil when they call QingCloud.
func (s *Set) Emulator() *emulator.Server { return s.emu }

// Close stops the built-in emulator, if one was started.
func (s *Set) Close() error {
	if s.emu == nil {
		return nil
	}
	return s.emu.Close()
}
