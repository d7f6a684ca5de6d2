// Package config loads the facade's settings.
//
// Precedence: command-line flags override QINGCLOUD_* environment variables, which override the
// configuration file, which overrides built-in defaults. The file is QingCloud's own
// ~/.qingcloud/config.yaml (the one the official SDK and CLI read: qy_access_key_id,
// qy_secret_access_key, zone, host, port, protocol, uri, connection_retries, connection_timeout), or
// the one -config or QINGCLOUD_CONFIG names. This server's own settings (listen addresses, TLS,
// credential profiles, bearer tokens) live in the same file under the top-level key "qingcloud_grpc",
// which the official tools ignore. The file is only ever read.
//
// Every error names the setting at fault the way it was given: the flag (-zone), the variable
// (QINGCLOUD_ZONE) or the file, line and key (/home/me/.qingcloud/config.yaml:3: zone). Errors never
// contain a secret key or a bearer token.
//
// With no QingCloud keys at all the server runs on its built-in emulator.
package config

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
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

	EmulatorAddr       string        // where the built-in emulator listens
	EmulatorJobPending time.Duration // emulator: time a job stays pending
	EmulatorJobWorking time.Duration // emulator: time a job stays working

	LogLevel string // debug, info, warn, error

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

// credentials resolves the default profile's key pair. The access key and the secret must come from
// the same place: the file, or flags and variables; a key from one with a secret from the other would
// be two different accounts' halves.
func (l *loader) credentials() signer.Credentials {
	key := l.get(SettingAccessKey)
	var secret value
	s := settingByName(SettingSecretKey)
	switch {
	case l.visited[s.flag]:
		path := strings.TrimSpace(*l.flags[SettingSecretKey])
		secret = l.record(SettingSecretKey, value{src: "-" + s.flag, set: true})
		b, err := os.ReadFile(path)
		if err != nil {
			l.fail("-%s: %v", s.flag, err)
			break
		}
		secret.v = strings.TrimSpace(string(b))
		if secret.v == "" {
			l.fail("-%s: the file %s is empty", s.flag, path)
		}
	default:
		secret = l.get(SettingSecretKey)
		if secret.fromFile {
			// get resolved it as a path (for -secret-key-file); the file key holds the secret itself.
			secret.v = l.file.values[s.file].value
		}
	}
	switch {
	case key.v != "" && secret.v == "":
		l.fail("%s sets an access key but no secret key is set: set QINGCLOUD_SECRET_KEY, -secret-key-file or qy_secret_access_key in the config file", key.src)
	case key.v == "" && secret.v != "":
		l.fail("%s sets a secret key but no access key is set: set QINGCLOUD_ACCESS_KEY, -access-key or qy_access_key_id in the config file", secret.src)
	case key.v != "" && key.fromFile != secret.fromFile:
		fileSide, otherSide := key, secret
		if secret.fromFile {
			fileSide, otherSide = secret, key
		}
		l.fail("%s overrides one half of the key pair in %s; set both the access key and the secret key by flags or variables", otherSide.src, strings.SplitN(fileSide.src, ":", 2)[0])
	}
	return signer.Credentials{AccessKeyID: key.v, SecretAccessKey: secret.v}
}

var zoneRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

func (l *loader) zone(v value) string {
	if !zoneRE.MatchString(v.v) {
		l.fail("%s: zone %q must be a lower-case zone id such as pek3a", v.src, v.v)
	}
	return v.v
}

// endpoint resolves the API URL: -endpoint, QINGCLOUD_ENDPOINT, the file's protocol/host/port/uri,
// or the default.
func (l *loader) endpoint() string {
	s := settingByName(SettingEndpoint)
	var v value
	switch {
	case l.visited[s.flag]:
		v = l.record(SettingEndpoint, value{v: strings.TrimSpace(*l.flags[SettingEndpoint]), src: "-" + s.flag})
	case l.getenv(s.env) != "":
		v = l.record(SettingEndpoint, value{v: strings.TrimSpace(l.getenv(s.env)), src: s.env})
	case l.file != nil && l.fileHasEndpoint():
		ep, src, err := l.fileEndpoint()
		l.record(SettingEndpoint, value{src: src})
		if err != nil {
			l.fail("%s: %v", src, err)
			return ""
		}
		return ep
	default:
		return DefaultEndpoint
	}
	if err := checkEndpoint(v.v); err != nil {
		l.fail("%s: endpoint %q %v, such as %s", v.src, redactURL(v.v), err, DefaultEndpoint)
	}
	return v.v
}

var endpointKeys = []string{"protocol", "host", "port", "uri"}

func (l *loader) fileHasEndpoint() bool {
	for _, k := range endpointKeys {
		if _, ok := l.file.values[k]; ok {
			return true
		}
	}
	return false
}

// fileEndpoint builds the endpoint from the file as QingCloud's Go SDK does.
func (l *loader) fileEndpoint() (string, string, error) {
	var given []string
	vals := map[string]string{}
	for _, k := range endpointKeys {
		if fv, ok := l.file.values[k]; ok {
			vals[k] = fv.value
			given = append(given, k)
		}
	}
	sort.Slice(given, func(i, j int) bool { return l.file.values[given[i]].line < l.file.values[given[j]].line })
	line := l.file.values[given[0]].line
	src := l.file.at(line, strings.Join(given, ", "))
	port := 0
	if p, ok := vals["port"]; ok && p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", l.file.at(l.file.values["port"].line, "port"), fmt.Errorf("port %q must be a number from 1 to 65535", p)
		}
		port = n
	}
	ep, err := BuildEndpoint(vals["protocol"], vals["host"], port, vals["uri"])
	return ep, src, err
}

// BuildEndpoint builds an API URL from the official config file's keys, as QingCloud's Go SDK does:
// protocol://host:port followed by uri, with repeated slashes collapsed. Empty values take the SDK's
// defaults: protocol https, host api.qingcloud.com, port 443 for https and 80 for http, uri /iaas.
func BuildEndpoint(protocol, host string, port int, uri string) (string, error) {
	protocol = strings.ToLower(strings.TrimSpace(protocol))
	if protocol == "" {
		protocol = "https"
	}
	if protocol != "https" && protocol != "http" {
		return "", fmt.Errorf("protocol %q must be https or http", protocol)
	}
	host = strings.TrimSpace(host)
	if host == "" {
		host = "api.qingcloud.com"
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return "", fmt.Errorf("host %q must be a host name or IP address only", host)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if port == 0 {
		port = 443
		if protocol == "http" {
			port = 80
		}
	}
	uri = strings.TrimSpace(uri)
	if uri == "" {
		uri = "/iaas"
	}
	path := "/" + uri
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	ep := protocol + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	if err := checkEndpoint(ep); err != nil {
		return "", fmt.Errorf("the endpoint %q they make %v", ep, err)
	}
	return ep, nil
}

// redactURL hides a password in a URL given by mistake.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}

// checkEndpoint accepts an http(s) URL with a host and no user information, query or fragment.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an http or https URL")
	case u.Hostname() == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not carry user information (keys are separate settings)")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	return nil
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

var profileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// profiles builds the default profile and qingcloud_grpc.profiles.
func (l *loader) profiles() {
	c := l.c
	var named []Profile
	if l.file != nil {
		for _, fp := range l.file.sortedProfiles() {
			at := func(key string) string {
				if fv, ok := fp.values[key]; ok {
					return l.file.at(fv.line, Section+".profiles."+fp.name+"."+key)
				}
				return l.file.at(fp.line, Section+".profiles."+fp.name)
			}
			switch {
			case fp.name == DefaultProfile:
				l.fail("%s: the profile name %q is reserved for the top-level keys (qy_access_key_id, ...); choose another name", at(""), DefaultProfile)
				continue
			case !profileNameRE.MatchString(fp.name):
				l.fail("%s: a profile name must be letters, digits, '_', '.' and '-' (at most 63)", at(""))
				continue
			}
			p := Profile{Name: fp.name, Zone: c.Zone}
			p.Credentials.AccessKeyID = fp.values["qy_access_key_id"].value
			secret, hasSecret := fp.values["qy_secret_access_key"]
			secretFile, hasFile := fp.values["secret_access_key_file"]
			switch {
			case hasSecret && hasFile:
				l.fail("%s: set qy_secret_access_key or secret_access_key_file, not both", at("secret_access_key_file"))
			case hasFile:
				b, err := os.ReadFile(l.file.resolve(secretFile.value))
				if err != nil {
					l.fail("%s: %v", at("secret_access_key_file"), err)
				} else if p.Credentials.SecretAccessKey = strings.TrimSpace(string(b)); p.Credentials.SecretAccessKey == "" {
					l.fail("%s: the file is empty", at("secret_access_key_file"))
				}
			case hasSecret:
				p.Credentials.SecretAccessKey = secret.value
			}
			switch {
			case p.Credentials.AccessKeyID != "" && p.Credentials.SecretAccessKey == "" && !hasFile:
				l.fail("%s: the profile has an access key but no qy_secret_access_key or secret_access_key_file", at("qy_access_key_id"))
			case p.Credentials.AccessKeyID == "" && (hasSecret || hasFile):
				l.fail("%s: the profile has a secret key but no qy_access_key_id", at(""))
			}
			if fv, ok := fp.values["zone"]; ok {
				p.Zone = l.zone(value{v: fv.value, src: at("zone")})
			}
			req, win := value{}, value{}
			if fv, ok := fp.values["quota_requests"]; ok {
				req = value{v: fv.value, src: at("quota_requests"), set: true}
			}
			if fv, ok := fp.values["quota_window"]; ok {
				win = value{v: fv.value, src: at("quota_window"), set: true}
			}
			p.Quota = l.quota(req, win, c.Quota)
			named = append(named, p)
		}
	}
	emulated := c.Credentials.AccessKeyID == ""
	for _, p := range named {
		if p.Credentials.AccessKeyID != "" {
			emulated = false
		}
	}
	if !emulated {
		for _, p := range named {
			if p.Credentials.AccessKeyID == "" {
				l.fail("%s: the profile has no qy_access_key_id (only when no keys are configured anywhere do profiles run on the built-in emulator)",
					l.file.at(profileLine(l.file, p.Name), Section+".profiles."+p.Name))
			}
		}
	}
	if c.Credentials.AccessKeyID != "" || emulated {
		c.Profiles = append(c.Profiles, Profile{Name: DefaultProfile, Credentials: c.Credentials, Zone: c.Zone, Quota: c.Quota})
	}
	c.Profiles = append(c.Profiles, named...)
}

// sharedKeys checks that profiles sharing an access key agree on its quota budget: the budget belongs
// to the key, not to the profile.
func (l *loader) sharedKeys() {
	first := map[string]Profile{}
	for _, p := range l.c.Profiles {
		k := p.Credentials.AccessKeyID
		if k == "" {
			continue
		}
		if q, ok := first[k]; ok && q.Quota != p.Quota {
			l.fail("profiles %s and %s use the same access key %s but different quota budgets (%d per %v, %d per %v); the budget belongs to the key: give them the same quota_requests and quota_window",
				q.Name, p.Name, k, q.Quota.Requests, q.Quota.Window, p.Quota.Requests, p.Quota.Window)
			continue
		}
		first[k] = p
	}
}

func profileLine(f *fileData, name string) int {
	for _, p := range f.profiles {
		if p.name == name {
			return p.line
		}
	}
	return 0
}

// hasProfile reports whether callers can act as profile.
func (l *loader) hasProfile(name string) bool {
	for _, p := range l.c.Profiles {
		if p.Name == name {
			return true
		}
	}
	return false
}

// tokens reads -token-sha256 / QINGCLOUD_TOKEN_SHA256 (default profile) and qingcloud_grpc.tokens.
func (l *loader) tokens() {
	c := l.c
	seen := map[[sha256.Size]byte]string{}
	names := map[string]string{}
	add := func(t auth.Token, src string) {
		if other, dup := seen[t.Hash]; dup {
			l.fail("%s: the same token hash is also given by %s", src, other)
			return
		}
		if other, dup := names[t.Name]; dup {
			l.fail("%s: the token name %q is also used by %s", src, t.Name, other)
			return
		}
		seen[t.Hash], names[t.Name] = src, src
		c.Tokens = append(c.Tokens, t)
	}
	if v := l.get(SettingTokenSHA256); v.v != "" {
		for i, h := range strings.Split(v.v, ",") {
			src := fmt.Sprintf("%s (hash %d)", v.src, i+1)
			hash, err := auth.ParseHash(h)
			if err != nil {
				l.fail("%s: %v", src, err)
				continue
			}
			if !l.hasProfile(DefaultProfile) {
				l.fail("%s: these tokens act as the default profile, which has no QingCloud keys (set qy_access_key_id and qy_secret_access_key, or QINGCLOUD_ACCESS_KEY and QINGCLOUD_SECRET_KEY)", src)
				continue
			}
			add(auth.Token{Name: fmt.Sprintf("%s#%d", strings.TrimPrefix(v.src, "-"), i+1), Hash: hash, Profile: DefaultProfile}, src)
		}
	}
	if l.file != nil {
		l.fileTokens(add)
	}
	if len(c.Tokens) == 0 && !l.hasProfile(DefaultProfile) && len(l.errs) == 0 {
		l.fail("%s: profiles are configured but no bearer tokens: callers without a token act as the default profile, which has no QingCloud keys; add %s.tokens naming the profiles, or set the top-level keys",
			l.file.at(profileLine(l.file, c.Profiles[0].Name), Section+".profiles"), Section)
	}
}

// fileTokens reads qingcloud_grpc.tokens.
func (l *loader) fileTokens(add func(auth.Token, string)) {
	for _, ft := range l.file.tokens {
		key := fmt.Sprintf("%s.tokens[%d]", Section, ft.index)
		at := func(k string) string {
			if fv, ok := ft.values[k]; ok {
				return l.file.at(fv.line, key+"."+k)
			}
			return l.file.at(ft.line, key)
		}
		t := auth.Token{Name: ft.values["name"].value, Profile: ft.values["profile"].value}
		if t.Name == "" {
			t.Name = key
		}
		if t.Profile == "" {
			t.Profile = DefaultProfile
		}
		hv, ok := ft.values["sha256"]
		if !ok || hv.value == "" {
			l.fail("%s: the token has no sha256 (the SHA-256 of the token, from `server hash-token`)", at(""))
			continue
		}
		hash, err := auth.ParseHash(hv.value)
		if err != nil {
			l.fail("%s: %v", at("sha256"), err)
			continue
		}
		if !l.hasProfile(t.Profile) {
			if t.Profile == DefaultProfile {
				l.fail("%s: the token acts as the default profile, which has no QingCloud keys; name a profile of %s.profiles or set the top-level keys", at("profile"), Section)
			} else {
				l.fail("%s: no profile %q in %s.profiles", at("profile"), t.Profile, Section)
			}
			continue
		}
		t.Hash = hash
		add(t, at("sha256"))
	}
}

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
