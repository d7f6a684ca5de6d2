// Package config loads the facade's settings.
//
// Precedence: command-line flags override QINGCLOUD_* environment variables, which override the
// configuration file, which overrides built-in defaults. The file is QingCloud's own
// ~/.qingcloud/config.yaml (the one the official SDK and CLI read: qy_access_key_id,
// qy_secret_access_key, zone, host, port, protocol, uri, connection_retries, connection_timeout), or
// the one -config or QINGCLOUD_CONFIG names. This server's own settings (listen addresses, TLS,
// credential profiles, bearer tokens) live under the top-level key "qingcloud_grpc", which the Go SDK
// ignores but qingcloud-cli refuses (so give the server a -config file of its own where the CLI reads
// ~/.qingcloud/config.yaml). The file is only ever read.
//
// Every error names the setting at fault the way it was given: the flag (-zone), the variable
// (QINGCLOUD_ZONE) or the file, line and key (/home/me/.qingcloud/config.yaml:3: zone). Errors never
// contain a secret key or a bearer token.
//
// With no QingCloud keys at all the server runs on its built-in emulator.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/zone"
)

// DefaultEndpoint is QingCloud's public IaaS API.
const DefaultEndpoint = "https://api.qingcloud.com/iaas/"

// DefaultZone is used when no zone is configured (the Terraform provider's default).
const DefaultZone = "pek3a"

// DefaultProfile names the profile of the top-level QingCloud keys (and of every caller when no
// tokens are configured).
const DefaultProfile = "default"

// ErrHelp is returned by Load for -h and -help; print Usage.
var ErrHelp = flag.ErrHelp

// Quota is a client-side API quota budget: Requests per Window for one access key.
type Quota struct {
	Requests int
	Window   time.Duration
}

// Profile is one set of QingCloud keys that callers act with.
type Profile struct {
	// Name is DefaultProfile or a key of qingcloud_grpc.profiles.
	Name string
	// Credentials are the profile's keys; empty in emulator mode (the server makes emulator keys).
	Credentials signer.Credentials
	// Zone is the profile's default zone.
	Zone string
	// Quota is the profile's budget.
	Quota Quota
}

// Config is the facade's configuration.
type Config struct {
	// File is the configuration file that was read; empty when none was.
	File string

	GRPCAddr   string // gRPC listen address
	HTTPAddr   string // REST listen address
	HealthAddr string // optional plaintext health-only gRPC listener; empty: none
	// MetricsAddr is an optional plaintext listener serving only GET /metrics; empty: /metrics is on
	// the REST listener.
	MetricsAddr string

	Credentials signer.Credentials // keys of the default profile; empty: see UseEmulator
	Zone        string             // default zone of the default profile
	Endpoint    string             // upstream API endpoint URL, for every profile
	Quota       Quota              // budget of the default profile, and of profiles that set none

	// ConnectionRetries is how often a call that provably never reached QingCloud is retried.
	ConnectionRetries int
	// ConnectionTimeout bounds connecting to QingCloud (the dial); 0 keeps the backend's default.
	ConnectionTimeout time.Duration
	// CallTimeout is the deadline of a call whose caller set none.
	CallTimeout time.Duration
	// AttemptTimeout bounds one upstream HTTP attempt, the wait for QingCloud's answer included.
	AttemptTimeout time.Duration

	// Profiles are the credential profiles callers can act as: the default profile (when it has keys,
	// or in emulator mode) first, then qingcloud_grpc.profiles sorted by name.
	Profiles []Profile
	// Tokens are the accepted bearer tokens. Empty: callers need no token and act as DefaultProfile.
	Tokens []auth.Token

	// TLS names the certificate files; empty: plaintext.
	TLS auth.TLSFiles

	// ShutdownGrace bounds the graceful shutdown on SIGTERM.
	ShutdownGrace time.Duration
	// IdempotencyRetention is how long outcomes of calls with an idempotency key are kept.
	IdempotencyRetention time.Duration

	// HeaderTimeout, BodyTimeout and IdleTimeout bound slow and idle connections on both listeners
	// (server.Limits).
	HeaderTimeout, BodyTimeout, IdleTimeout time.Duration

	EmulatorAddr       string        // where the built-in emulator listens
	EmulatorJobPending time.Duration // emulator: time a job stays pending
	EmulatorJobWorking time.Duration // emulator: time a job stays working

	LogLevel string // debug, info, warn, error

	// Redis is the Redis the replicas share; its URL is empty when the server runs alone.
	Redis Redis

	// Tracing: span exporter (none, stdout, otlp), OTLP collector, and sampling of new traces.
	TraceExporter    string
	OTLPEndpoint     string
	OTLPInsecure     bool
	TraceSampleRatio float64

	// Warnings are problems that do not stop the server (e.g. a config file with secrets that others
	// can read); log them at start.
	Warnings []string

	sources map[string]string
}

// UseEmulator reports whether no QingCloud keys are configured anywhere, so the built-in emulator
// serves (every profile then gets its own emulator account).
func (c *Config) UseEmulator() bool {
	if c.Credentials.AccessKeyID != "" || c.Credentials.SecretAccessKey != "" {
		return false
	}
	for _, p := range c.Profiles {
		if p.Credentials.AccessKeyID != "" {
			return false
		}
	}
	return true
}

// AuthRequired reports whether callers are checked: bearer tokens, or mutual TLS, are configured.
func (c *Config) AuthRequired() bool { return len(c.Tokens) > 0 || c.TLS.ClientCAFile != "" }

// Source says where a setting (one of the Setting* names) came from: "-zone", "QINGCLOUD_ZONE",
// "/home/me/.qingcloud/config.yaml:3: zone" or "default".
func (c *Config) Source(name string) string {
	if s, ok := c.sources[name]; ok {
		return s
	}
	return "default"
}

// value is one resolved setting.
type value struct {
	v        string
	src      string // for messages: "-zone", "QINGCLOUD_ZONE", "file:3: zone", "default -zone"
	fromFile bool
	set      bool // anything but the default
}

// Load parses args (without the program name), reads the environment through getenv and the
// configuration file, and validates everything. The default file is $HOME/.qingcloud/config.yaml
// (HOME from getenv); it may be absent. Errors name the setting as it was given.
func Load(args []string, getenv func(string) string) (*Config, error) {
	fset := flag.NewFlagSet("server", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	flags := map[string]*string{}
	for _, s := range settings {
		v := &flagValue{isBool: s.isBool}
		fset.Var(v, s.flag, s.usage)
		flags[s.name] = &v.v
	}
	configFlag := fset.String("config", "", "configuration file")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("config: %w (run with -h for the list of flags)", err)
	}
	if fset.NArg() > 0 {
		return nil, fmt.Errorf("config: unexpected argument %q (run with -h for usage)", fset.Arg(0))
	}
	visited := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { visited[f.Name] = true })

	file, err := readFile(*configFlag, visited["config"], getenv)
	if err != nil {
		return nil, err
	}
	l := &loader{flags: flags, visited: visited, getenv: getenv, file: file, c: &Config{sources: map[string]string{}}}
	return l.load()
}

// flagValue is a string flag; a boolean one may be given without a value.
type flagValue struct {
	v      string
	isBool bool
}

func (f *flagValue) String() string     { return f.v }
func (f *flagValue) Set(v string) error { f.v = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// readFile finds and parses the configuration file. A missing default file is no error; a missing
// file named by -config or QINGCLOUD_CONFIG is.
func readFile(flagPath string, flagSet bool, getenv func(string) string) (*fileData, error) {
	path, from, explicit := flagPath, "-config", flagSet
	if !flagSet {
		if p := getenv("QINGCLOUD_CONFIG"); p != "" {
			path, from, explicit = p, "QINGCLOUD_CONFIG", true
		} else {
			home := getenv("HOME")
			if home == "" {
				home = getenv("USERPROFILE")
			}
			if home == "" {
				return nil, nil
			}
			path, from = filepath.Join(home, ".qingcloud", "config.yaml"), "the default config file"
		}
	}
	if explicit && path == "" {
		return nil, fmt.Errorf("config: %s is empty: name a file", from)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("config: %s: %w", from, err)
	}
	f, err := parseFile(path, data)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return f, nil
}

// loader resolves and validates the settings.
type loader struct {
	flags   map[string]*string
	visited map[string]bool
	getenv  func(string) string
	file    *fileData
	c       *Config
	errs    []error
}

func (l *loader) fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

// get resolves a setting: flag, variable, file key, default.
func (l *loader) get(name string) value {
	s := settingByName(name)
	if l.visited[s.flag] {
		return l.record(name, value{v: strings.TrimSpace(*l.flags[name]), src: "-" + s.flag, set: true})
	}
	if v := l.getenv(s.env); v != "" {
		return l.record(name, value{v: strings.TrimSpace(v), src: s.env, set: true})
	}
	if l.file != nil && s.file != "" {
		if fv, ok := l.file.values[s.file]; ok {
			v := fv.value
			if s.path {
				v = l.file.resolve(v)
			}
			return l.record(name, value{v: v, src: l.file.at(fv.line, s.file), fromFile: true, set: true})
		}
	}
	return value{v: s.def, src: "the default of -" + s.flag}
}

func (l *loader) record(name string, v value) value {
	l.c.sources[name] = v.src
	return v
}

func (l *loader) load() (*Config, error) {
	c := l.c
	if l.file != nil {
		c.File = l.file.path
	}
	c.GRPCAddr = l.addr(SettingGRPCAddr, false)
	c.HTTPAddr = l.addr(SettingHTTPAddr, false)
	c.HealthAddr = l.addr(SettingHealthAddr, true)
	c.MetricsAddr = l.addr(SettingMetricsAddr, true)
	c.EmulatorAddr = l.addr(SettingEmulatorAddr, false)

	c.Credentials = l.credentials()
	c.Zone = l.zone(l.get(SettingZone))
	c.Endpoint = l.endpoint()
	c.ConnectionRetries = l.intIn(l.get(SettingConnectionRetries), 0, 10)
	if v := l.get(SettingConnectionTimeout); v.set {
		c.ConnectionTimeout = l.seconds(v, time.Millisecond, 10*time.Minute)
	}
	c.CallTimeout = l.duration(l.get(SettingCallTimeout), time.Millisecond, 24*time.Hour)
	c.AttemptTimeout = l.duration(l.get(SettingAttemptTimeout), time.Millisecond, time.Hour)
	c.Quota = l.quota(l.get(SettingQuotaRequests), l.get(SettingQuotaWindow), Quota{})
	c.ShutdownGrace = l.duration(l.get(SettingShutdownGrace), time.Millisecond, 24*time.Hour)
	c.IdempotencyRetention = l.duration(l.get(SettingIdempotencyTTL), time.Second, 30*24*time.Hour)
	c.HeaderTimeout = l.duration(l.get(SettingHeaderTimeout), time.Millisecond, time.Hour)
	c.BodyTimeout = l.duration(l.get(SettingBodyTimeout), time.Millisecond, time.Hour)
	c.IdleTimeout = l.duration(l.get(SettingIdleTimeout), time.Millisecond, 24*time.Hour)
	c.EmulatorJobPending = l.duration(l.get(SettingEmulatorJobPending), time.Millisecond, time.Hour)
	c.EmulatorJobWorking = l.duration(l.get(SettingEmulatorJobWorking), time.Millisecond, time.Hour)

	lv := l.get(SettingLogLevel)
	c.LogLevel = strings.ToLower(lv.v)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		l.fail("%s: log level %q must be debug, info, warn or error", lv.src, lv.v)
	}

	l.telemetry()
	l.redis()
	l.profiles()
	l.sharedKeys()
	l.tokens()
	l.tls()
	l.exposure()
	if len(l.errs) > 0 {
		return nil, fmt.Errorf("config: %w", errors.Join(l.errs...))
	}
	return c, nil
}

// telemetry reads the tracing settings.
func (l *loader) telemetry() {
	c := l.c
	ex := l.get(SettingTraceExporter)
	c.TraceExporter = strings.ToLower(ex.v)
	switch c.TraceExporter {
	case "none", "stdout", "otlp":
	default:
		l.fail("%s: trace exporter %q must be none, stdout or otlp", ex.src, ex.v)
	}
	c.OTLPEndpoint = l.get(SettingOTLPEndpoint).v
	ins := l.get(SettingOTLPInsecure)
	b, err := strconv.ParseBool(ins.v)
	if err != nil {
		l.fail("%s: %q must be true or false", ins.src, ins.v)
	}
	c.OTLPInsecure = b
	r := l.get(SettingTraceSampleRatio)
	f, err := strconv.ParseFloat(r.v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		l.fail("%s: sample ratio %q must be a number in (0, 1], such as 0.1", r.src, r.v)
	}
	c.TraceSampleRatio = f
}

// addr validates a host:port listen address.
func (l *loader) addr(name string, optional bool) string {
	v := l.get(name)
	if v.v == "" && optional {
		return ""
	}
	_, port, err := net.SplitHostPort(v.v)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			err = errors.New("the port must be a number from 0 to 65535")
		}
	}
	if err != nil {
		l.fail("%s: listen address %q must be host:port, e.g. 127.0.0.1:9090 (%v)", v.src, v.v, err)
	}
	return v.v
}

func (l *loader) zone(v value) string {
	if !zone.Valid(v.v) {
		l.fail("%s: zone %q must be a lower-case zone id such as pek3a", v.src, v.v)
	}
	return v.v
}

func (l *loader) intIn(v value, lo, hi int) int {
	n, err := strconv.Atoi(v.v)
	if err != nil || n < lo || n > hi {
		l.fail("%s: %q must be a whole number from %d to %d", v.src, v.v, lo, hi)
	}
	return n
}

// duration parses a Go duration ("15s", "1m30s") within [lo, hi].
func (l *loader) duration(v value, lo, hi time.Duration) time.Duration {
	d, err := time.ParseDuration(v.v)
	if err != nil || d < lo || d > hi {
		l.fail("%s: %q must be a duration from %v to %v, such as 15s or 2m", v.src, v.v, lo, hi)
	}
	return d
}

// seconds parses whole seconds (the official file's connection_timeout: 30) or a Go duration.
func (l *loader) seconds(v value, lo, hi time.Duration) time.Duration {
	if n, err := strconv.Atoi(v.v); err == nil {
		d := time.Duration(n) * time.Second
		if d < lo || d > hi {
			l.fail("%s: %q seconds must be from %v to %v", v.src, v.v, lo, hi)
		}
		return d
	}
	return l.duration(v, lo, hi)
}

// quota parses a budget; unset values take def's (or the defaults when def is zero).
func (l *loader) quota(req, win value, def Quota) Quota {
	q := def
	if req.set || def.Requests == 0 {
		if req.v == "-1" {
			q.Requests = -1 // no client-side budget
		} else {
			q.Requests = l.intIn(req, 1, 1_000_000)
		}
	}
	if win.set || def.Window == 0 {
		q.Window = l.duration(win, time.Second, 24*time.Hour)
	}
	return q
}
