// Package config loads the facade's settings. Precedence: command-line flags override QINGCLOUD_*
// environment variables, which override built-in defaults. With no credentials at all the server
// runs on its built-in emulator.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

// DefaultEndpoint is QingCloud's public IaaS API.
const DefaultEndpoint = "https://api.qingcloud.com/iaas/"

// DefaultZone is used when no zone is configured (the Terraform provider's default).
const DefaultZone = "pek3a"

// Config is the facade's configuration.
type Config struct {
	GRPCAddr string // gRPC listen address
	HTTPAddr string // REST listen address

	Credentials signer.Credentials // empty: use the built-in emulator
	Zone        string             // default zone for requests that set none
	Endpoint    string             // upstream API endpoint URL

	EmulatorAddr       string        // where the built-in emulator listens
	EmulatorJobPending time.Duration // emulator: time a job stays pending
	EmulatorJobWorking time.Duration // emulator: time a job stays working

	LogLevel string // debug, info, warn, error
}

// UseEmulator reports whether no credentials are configured, so the built-in emulator serves.
func (c *Config) UseEmulator() bool {
	return c.Credentials.AccessKeyID == "" && c.Credentials.SecretAccessKey == ""
}

// Load parses args (without the program name) and reads the environment through getenv.
// Errors name the offending flag or variable.
func Load(args []string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listen address")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST (grpc-gateway) listen address")
	accessKey := fs.String("access-key", "", "QingCloud access key ID (env QINGCLOUD_ACCESS_KEY)")
	secretFile := fs.String("secret-key-file", "", "file holding the QingCloud secret access key (env QINGCLOUD_SECRET_KEY holds the key itself); kept off the command line so it never shows in process lists")
	zone := fs.String("zone", "", "default zone (env QINGCLOUD_ZONE; default "+DefaultZone+")")
	endpoint := fs.String("endpoint", "", "QingCloud API endpoint (env QINGCLOUD_ENDPOINT; default "+DefaultEndpoint+")")
	fs.StringVar(&c.EmulatorAddr, "emulator-addr", "127.0.0.1:0", "listen address of the built-in emulator (used without credentials)")
	fs.DurationVar(&c.EmulatorJobPending, "emulator-job-pending", 500*time.Millisecond, "emulator: how long a job stays pending")
	fs.DurationVar(&c.EmulatorJobWorking, "emulator-job-working", 2*time.Second, "emulator: how long a job stays working")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("config: %w (run with -h for the list of flags)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}

	c.Credentials.AccessKeyID = pick(*accessKey, getenv("QINGCLOUD_ACCESS_KEY"))
	c.Credentials.SecretAccessKey = getenv("QINGCLOUD_SECRET_KEY")
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return nil, fmt.Errorf("config: -secret-key-file: %w", err)
		}
		c.Credentials.SecretAccessKey = strings.TrimSpace(string(b))
	}
	c.Zone = pick(*zone, getenv("QINGCLOUD_ZONE"), DefaultZone)
	c.Endpoint = pick(*endpoint, getenv("QINGCLOUD_ENDPOINT"), DefaultEndpoint)
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	switch {
	case c.Credentials.AccessKeyID != "" && c.Credentials.SecretAccessKey == "":
		errs = append(errs, errors.New("QINGCLOUD_SECRET_KEY (or -secret-key-file) is required when an access key is set"))
	case c.Credentials.AccessKeyID == "" && c.Credentials.SecretAccessKey != "":
		errs = append(errs, errors.New("QINGCLOUD_ACCESS_KEY (or -access-key) is required when a secret key is set"))
	}
	if c.Zone != strings.ToLower(c.Zone) || strings.ContainsAny(c.Zone, " /?&=") {
		errs = append(errs, fmt.Errorf("zone %q (QINGCLOUD_ZONE or -zone) must be a lower-case zone ID such as pek3a", c.Zone))
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q (QINGCLOUD_ENDPOINT or -endpoint) must be an http(s) URL such as %s", c.Endpoint, DefaultEndpoint))
	}
	for _, a := range []struct{ flag, addr string }{{"-grpc-addr", c.GRPCAddr}, {"-http-addr", c.HTTPAddr}, {"-emulator-addr", c.EmulatorAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q must be host:port: %v", a.flag, a.addr, err))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("-log-level %q must be debug, info, warn or error", c.LogLevel))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

func pick(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
