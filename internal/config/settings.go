package config

import (
	"fmt"
	"io"
	"strings"
)

// setting is one scalar setting: a flag, a QINGCLOUD_* variable and (mostly) a key of the file.
type setting struct {
	name   string // the name Config.Source takes
	flag   string // without the dash
	env    string
	file   string // dotted key in the file; "" when the file has no such key
	def    string // default, as text; "" means unset
	usage  string
	path   bool // a file path: relative paths in the config file are relative to the file's folder
	isBool bool // a flag that may be given without a value (-otlp-insecure)
}

// Names of the settings, for Config.Source.
const (
	SettingAccessKey          = "access_key"
	SettingSecretKey          = "secret_key"
	SettingZone               = "zone"
	SettingEndpoint           = "endpoint"
	SettingConnectionRetries  = "connection_retries"
	SettingConnectionTimeout  = "connection_timeout"
	SettingCallTimeout        = "call_timeout"
	SettingAttemptTimeout     = "attempt_timeout"
	SettingQuotaRequests      = "quota_requests"
	SettingQuotaWindow        = "quota_window"
	SettingGRPCAddr           = "grpc_addr"
	SettingHTTPAddr           = "http_addr"
	SettingHealthAddr         = "health_addr"
	SettingMetricsAddr        = "metrics_addr"
	SettingTLSCertFile        = "tls_cert_file"
	SettingTLSKeyFile         = "tls_key_file"
	SettingTLSClientCAFile    = "tls_client_ca_file"
	SettingTokenSHA256        = "token_sha256"
	SettingShutdownGrace      = "shutdown_grace"
	SettingHeaderTimeout      = "header_timeout"
	SettingBodyTimeout        = "body_timeout"
	SettingIdleTimeout        = "idle_timeout"
	SettingLogLevel           = "log_level"
	SettingIdempotencyTTL     = "idempotency_retention"
	SettingEmulatorAddr       = "emulator_addr"
	SettingEmulatorJobPending = "emulator_job_pending"
	SettingEmulatorJobWorking = "emulator_job_working"
	SettingTraceExporter      = "trace_exporter"
	SettingOTLPEndpoint       = "otlp_endpoint"
	SettingOTLPInsecure       = "otlp_insecure"
	SettingTraceSampleRatio   = "trace_sample_ratio"
	SettingRedisURL           = "redis_url"
	SettingRedisPasswordFile  = "redis_password_file"
	SettingRedisFallbackShare = "redis_fallback_share"
)

// settings lists every scalar setting in the order -h shows them.
var settings = []setting{
	{name: SettingAccessKey, flag: "access-key", env: "QINGCLOUD_ACCESS_KEY", file: "qy_access_key_id",
		usage: "QingCloud access key ID of the default profile"},
	{name: SettingSecretKey, flag: "secret-key-file", env: "QINGCLOUD_SECRET_KEY", file: "qy_secret_access_key",
		usage: "file holding the QingCloud secret access key (the variable and the file key hold the key itself); a file keeps it out of process lists", path: true},
	{name: SettingZone, flag: "zone", env: "QINGCLOUD_ZONE", file: "zone", def: DefaultZone,
		usage: "default zone for requests that set none"},
	{name: SettingEndpoint, flag: "endpoint", env: "QINGCLOUD_ENDPOINT", file: "host, port, protocol, uri", def: DefaultEndpoint,
		usage: "QingCloud API endpoint URL; the file builds it from protocol://host:port/uri as the official SDK does"},
	{name: SettingConnectionRetries, flag: "connection-retries", env: "QINGCLOUD_CONNECTION_RETRIES", file: "connection_retries", def: "3",
		usage: "retries of one upstream call, at most: calls that provably never reached QingCloud, and read-only calls on transient failures (mutations that may have arrived are never repeated)"},
	{name: SettingConnectionTimeout, flag: "connection-timeout", env: "QINGCLOUD_CONNECTION_TIMEOUT", file: "connection_timeout", def: "5s",
		usage: "timeout of connecting to QingCloud: a duration, or whole seconds as in the official file"},
	{name: SettingGRPCAddr, flag: "grpc-addr", env: "QINGCLOUD_GRPC_ADDR", file: Section + ".grpc_addr", def: "127.0.0.1:9090",
		usage: "gRPC listen address; a non-loopback address requires caller authentication"},
	{name: SettingHTTPAddr, flag: "http-addr", env: "QINGCLOUD_HTTP_ADDR", file: Section + ".http_addr", def: "127.0.0.1:8080",
		usage: "REST listen address; a non-loopback address requires caller authentication"},
	{name: SettingHealthAddr, flag: "health-addr", env: "QINGCLOUD_HEALTH_ADDR", file: Section + ".health_addr",
		usage: "optional plaintext listener serving only gRPC health checking (for probes that cannot do TLS or tokens); empty: off"},
	{name: SettingMetricsAddr, flag: "metrics-addr", env: "QINGCLOUD_METRICS_ADDR", file: Section + ".metrics_addr",
		usage: "optional plaintext listener serving only GET /metrics, which then leaves the REST listener (keep scrapes on an internal network); empty: /metrics on the REST listener"},
	{name: SettingTLSCertFile, flag: "tls-cert", env: "QINGCLOUD_TLS_CERT_FILE", file: Section + ".tls.cert_file",
		usage: "PEM certificate chain: serve gRPC and REST over TLS (1.2 or later)", path: true},
	{name: SettingTLSKeyFile, flag: "tls-key", env: "QINGCLOUD_TLS_KEY_FILE", file: Section + ".tls.key_file",
		usage: "PEM private key of -tls-cert", path: true},
	{name: SettingTLSClientCAFile, flag: "tls-client-ca", env: "QINGCLOUD_TLS_CLIENT_CA_FILE", file: Section + ".tls.client_ca_file",
		usage: "PEM CA certificates: require client certificates signed by them (mutual TLS)", path: true},
	{name: SettingTokenSHA256, flag: "token-sha256", env: "QINGCLOUD_TOKEN_SHA256",
		usage: "comma-separated SHA-256 hashes of bearer tokens of the default profile (`server hash-token` prints one); the file lists tokens under " + Section + ".tokens"},
	{name: SettingShutdownGrace, flag: "shutdown-grace", env: "QINGCLOUD_SHUTDOWN_GRACE", file: Section + ".shutdown_grace", def: "15s",
		usage: "on SIGTERM: how long in-flight calls may finish before connections are closed"},
	{name: SettingHeaderTimeout, flag: "header-timeout", env: "QINGCLOUD_HEADER_TIMEOUT", file: Section + ".header_timeout", def: "10s",
		usage: "how long a new connection may take to send its headers (REST: each request's; gRPC: the TLS handshake and HTTP/2 preface) before it is closed"},
	{name: SettingBodyTimeout, flag: "body-timeout", env: "QINGCLOUD_BODY_TIMEOUT", file: Section + ".body_timeout", def: "30s",
		usage: "how long a REST request may take to send its body before it is refused (400) and its connection closed"},
	{name: SettingIdleTimeout, flag: "idle-timeout", env: "QINGCLOUD_IDLE_TIMEOUT", file: Section + ".idle_timeout", def: "2m",
		usage: "connections with no request or call in progress for this long are closed (gRPC: GOAWAY first)"},
	{name: SettingCallTimeout, flag: "call-timeout", env: "QINGCLOUD_CALL_TIMEOUT", file: Section + ".call_timeout", def: "60s",
		usage: "deadline of a call whose caller set none (a gRPC deadline or Grpc-Timeout header always wins)"},
	{name: SettingAttemptTimeout, flag: "attempt-timeout", env: "QINGCLOUD_ATTEMPT_TIMEOUT", file: Section + ".attempt_timeout", def: "30s",
		usage: "how long one upstream HTTP attempt may take, waiting for QingCloud's answer included"},
	{name: SettingQuotaRequests, flag: "quota-requests", env: "QINGCLOUD_QUOTA_REQUESTS", file: Section + ".quota_requests", def: "2000",
		usage: "client-side API quota budget per access key: requests per quota window, -1 for none (profiles may set their own)"},
	{name: SettingQuotaWindow, flag: "quota-window", env: "QINGCLOUD_QUOTA_WINDOW", file: Section + ".quota_window", def: "1h",
		usage: "window of the quota budget"},
	{name: SettingIdempotencyTTL, flag: "idempotency-retention", env: "QINGCLOUD_IDEMPOTENCY_RETENTION", file: Section + ".idempotency_retention", def: "24h",
		usage: "how long the outcome of a mutation sent with an Idempotency-Key is kept for retries with the same key"},
	{name: SettingLogLevel, flag: "log-level", env: "QINGCLOUD_LOG_LEVEL", file: Section + ".log_level", def: "info",
		usage: "log level: debug, info, warn or error"},
	{name: SettingTraceExporter, flag: "trace-exporter", env: "QINGCLOUD_TRACE_EXPORTER", file: Section + ".trace_exporter", def: "none",
		usage: "OpenTelemetry span export: none, stdout or otlp (incoming trace context is passed on either way)"},
	{name: SettingOTLPEndpoint, flag: "otlp-endpoint", env: "QINGCLOUD_OTLP_ENDPOINT", file: Section + ".otlp_endpoint",
		usage: "OTLP/gRPC collector host:port or URL (default: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317)"},
	{name: SettingOTLPInsecure, flag: "otlp-insecure", env: "QINGCLOUD_OTLP_INSECURE", file: Section + ".otlp_insecure", def: "false", isBool: true,
		usage: "send OTLP without TLS (a collector on the same host or pod)"},
	{name: SettingTraceSampleRatio, flag: "trace-sample-ratio", env: "QINGCLOUD_TRACE_SAMPLE_RATIO", file: Section + ".trace_sample_ratio", def: "1",
		usage: "share of new traces recorded, in (0, 1]; a sampled incoming trace is always recorded"},
	{name: SettingRedisURL, flag: "redis-url", env: "QINGCLOUD_GRPC_REDIS_URL", file: Section + ".redis_url",
		usage: "Redis shared by the replicas (quota budget, one poller per account and zone): redis://[user:password@]host:port[/db], rediss:// for TLS, ?master_name=NAME for Sentinel, ?cluster=true or several &addr= for Cluster; empty: this process alone (see docs/scale-out.md)"},
	{name: SettingRedisPasswordFile, flag: "redis-password-file", env: "QINGCLOUD_GRPC_REDIS_PASSWORD_FILE", file: Section + ".redis_password_file",
		usage: "file holding Redis's password (wins over one in -redis-url); keeps it out of process lists and config files", path: true},
	{name: SettingRedisFallbackShare, flag: "redis-fallback-share", env: "QINGCLOUD_GRPC_REDIS_FALLBACK_SHARE", file: Section + ".redis_fallback_share",
		usage: "share of each quota limit, in (0, 1], a replica may use alone while Redis is unreachable; empty: 1 / the replicas last seen alive"},
	{name: SettingEmulatorAddr, flag: "emulator-addr", env: "QINGCLOUD_EMULATOR_ADDR", file: Section + ".emulator.addr", def: "127.0.0.1:0",
		usage: "loopback address of the built-in emulator (used when no QingCloud keys are configured)"},
	{name: SettingEmulatorJobPending, flag: "emulator-job-pending", env: "QINGCLOUD_EMULATOR_JOB_PENDING", file: Section + ".emulator.job_pending", def: "500ms",
		usage: "emulator: how long a job stays pending"},
	{name: SettingEmulatorJobWorking, flag: "emulator-job-working", env: "QINGCLOUD_EMULATOR_JOB_WORKING", file: Section + ".emulator.job_working", def: "2s",
		usage: "emulator: how long a job stays working"},
}

func settingByName(name string) setting {
	for _, s := range settings {
		if s.name == name {
			return s
		}
	}
	panic("config: unknown setting " + name)
}

// Usage writes the -h text: every flag with its variable, file key and default.
func Usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  server [flags]                 serve gRPC and REST
  server healthcheck [flags]     exit 0 when a running server reports SERVING (-h for its flags)
  server hash-token [-generate]  print the SHA-256 of a bearer token read from stdin

Settings come from flags, then QINGCLOUD_* variables, then the config file (QingCloud's own
~/.qingcloud/config.yaml unless -config or QINGCLOUD_CONFIG names another), then defaults.
This server's own settings live under the file's "`+Section+`:" key; see docs/configuration.md.

Flags:
  -config path
        configuration file (QINGCLOUD_CONFIG; default ~/.qingcloud/config.yaml, skipped when absent)
`)
	for _, s := range settings {
		fmt.Fprintf(w, "  -%s value\n        %s\n        (%s", s.flag, s.usage, s.env)
		if s.file != "" {
			fmt.Fprintf(w, "; file: %s", s.file)
		}
		if s.def != "" {
			fmt.Fprintf(w, "; default %s", s.def)
		}
		fmt.Fprintln(w, ")")
	}
	fmt.Fprintln(w, "\n"+strings.TrimSpace(`
The config file can also define credential profiles (`+Section+`.profiles) and bearer tokens
mapped to them (`+Section+`.tokens).`))
}
