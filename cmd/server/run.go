package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/operations"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/telemetry"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/tenant"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

// listening are the addresses a running server bound (useful when the configuration asks for port 0).
type listening struct {
	GRPC, HTTP, Health string // Health is empty without -health-addr
	Metrics            string // empty without -metrics-addr
}

// run loads the configuration from args and getenv, serves until ctx ends, then shuts down
// gracefully within the configured grace period and returns. Logs go to logw. ready, when not nil, is
// called once every listener is serving.
func run(ctx context.Context, args []string, getenv func(string) string, logw io.Writer, ready func(listening)) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	// Every line logged with a call's context carries its request id (and trace id when traced).
	log := telemetry.WrapLogger(newLogger(logw, cfg.LogLevel))
	if n := applySoftMemoryLimit(); n > 0 {
		log.Info("soft memory limit set from the container's memory limit", "bytes", n, "share", memLimitShare)
	}
	if cfg.File != "" {
		log.Info("read configuration file", "path", cfg.File)
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	tel, err := telemetry.New(context.Background(), telemetry.Options{
		Exporter:     cfg.TraceExporter,
		OTLPEndpoint: cfg.OTLPEndpoint,
		OTLPInsecure: cfg.OTLPInsecure,
		SampleRatio:  cfg.TraceSampleRatio,
	})
	if err != nil {
		return fmt.Errorf("tracing (%s): %w", cfg.Source(config.SettingTraceExporter), err)
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(fctx); err != nil {
			log.Warn("flushing spans failed", "error", err)
		}
	}()

	co, err := openCoordination(cfg, tel, log)
	if err != nil {
		return err
	}
	defer co.close()
	tenants, err := tenant.Build(cfg, tenant.Options{Telemetry: tel, Logger: log, SharedBudget: co.budgetShared})
	if err != nil {
		return err
	}
	defer tenants.Close()

	authn, err := newAuthenticator(cfg)
	if err != nil {
		return err
	}
	hub, err := watch.New(watch.Options{Tenants: tenants, Logger: log.With("component", "watch"), Shared: co.watchShared()})
	if err != nil {
		return err
	}
	defer hub.Close()

	var tlsCfg *tls.Config
	if cfg.TLS.Enabled() {
		if tlsCfg, err = auth.ServerTLS(cfg.TLS, log.With("component", "tls")); err != nil {
			return fmt.Errorf("TLS (%s): %w", cfg.Source(config.SettingTLSCertFile), err)
		}
	}
	ops, err := operations.New(operations.Options{Hub: hub, Tenants: tenants})
	if err != nil {
		return err
	}
	scfg := server.Config{
		Tenants:            tenants,
		Watch:              hub,
		Operations:         ops,
		Idempotency:        co.idempotencyStore(cfg.IdempotencyRetention),
		Logger:             log.With("component", "grpc"),
		Telemetry:          tel,
		WatchStats:         hub.Stats,
		UnaryInterceptors:  []grpc.UnaryServerInterceptor{authn.UnaryInterceptor()},
		StreamInterceptors: []grpc.StreamServerInterceptor{authn.StreamInterceptor()},
	}
	// Callers are checked from their headers before any body or message is read, then again by the
	// interceptors.
	scfg.ServerOptions = append(scfg.ServerOptions, grpc.InTapHandle(authn.TapHandle()))
	scfg.CheckCaller = authn.CheckHTTP
	scfg.Limits = server.Limits{HeaderTimeout: cfg.HeaderTimeout, BodyTimeout: cfg.BodyTimeout, IdleTimeout: cfg.IdleTimeout}
	if tlsCfg != nil {
		scfg.ServerOptions = append(scfg.ServerOptions, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	scfg.MetricsElsewhere = cfg.MetricsAddr != ""
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	defer srv.Stop()
	co.setHealth(srv.Health())
	// The gateway's in-process connection lives until run returns, not until ctx ends: REST calls in
	// flight at shutdown must be able to finish.
	gwCtx, gwCancel := context.WithCancel(context.Background())
	defer gwCancel()
	httpHandler, err := srv.HTTPHandler(gwCtx)
	if err != nil {
		return err
	}

	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}
	listen := func(setting, addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s (%s): %w", addr, cfg.Source(setting), err)
		}
		lns = append(lns, l)
		return l, nil
	}
	gl, err := listen(config.SettingGRPCAddr, cfg.GRPCAddr)
	if err != nil {
		return err
	}
	hl, err := listen(config.SettingHTTPAddr, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	var healthLn net.Listener
	if cfg.HealthAddr != "" {
		if healthLn, err = listen(config.SettingHealthAddr, cfg.HealthAddr); err != nil {
			return err
		}
	}

	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = listen(config.SettingMetricsAddr, cfg.MetricsAddr); err != nil {
			return err
		}
	}

	hs := &http.Server{
		Handler:  httpHandler,
		ErrorLog: slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
	srv.ConfigureHTTP(hs) // header, idle and HTTP/2 limits
	errc := make(chan error, 4)
	go func() { errc <- srv.Serve(gl) }()
	if tlsCfg != nil {
		hs.TLSConfig = tlsCfg.Clone()
	}
	go func() { errc <- srv.ServeHTTP(hs, hl) }()
	// The health-only listener shares the main server's health status, so it turns NOT_SERVING at
	// shutdown too; it serves nothing else and needs neither TLS nor a token.
	if healthLn != nil {
		go func() { errc <- srv.ServeHealth(healthLn) }()
	}
	// The metrics-only listener: plaintext scrapes, nothing else, stopped last at shutdown.
	if metricsLn != nil {
		go func() { errc <- srv.ServeMetrics(metricsLn) }()
	}

	addrs := listening{GRPC: gl.Addr().String(), HTTP: hl.Addr().String()}
	if healthLn != nil {
		addrs.Health = healthLn.Addr().String()
	}
	if metricsLn != nil {
		addrs.Metrics = metricsLn.Addr().String()
	}
	log.Info("serving", "grpc", addrs.GRPC, "http", addrs.HTTP, "health", addrs.Health, "metrics", addrs.Metrics,
		"tls", tlsMode(cfg), "caller_auth", authMode(cfg), "profiles", strings.Join(tenants.Profiles(), ","),
		"actions", len(srv.Methods()), "shutdown_grace", cfg.ShutdownGrace)
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace)
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			serveErr = err
			log.Error("a listener failed; shutting down", "error", err)
		}
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn(err.Error(), "grace", cfg.ShutdownGrace)
	} else {
		log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	}
	return serveErr
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}

func newAuthenticator(cfg *config.Config) (*auth.Authenticator, error) {
	if len(cfg.Tokens) > 0 {
		return auth.New(auth.Config{Tokens: cfg.Tokens})
	}
	return auth.New(auth.Config{Anonymous: config.DefaultProfile})
}

func tlsMode(cfg *config.Config) string {
	switch {
	case cfg.TLS.ClientCAFile != "":
		return "mutual"
	case cfg.TLS.Enabled():
		return "on"
	}
	return "off"
}

func authMode(cfg *config.Config) string {
	var m []string
	if len(cfg.Tokens) > 0 {
		m = append(m, fmt.Sprintf("bearer tokens (%d)", len(cfg.Tokens)))
	}
	if cfg.TLS.ClientCAFile != "" {
		m = append(m, "client certificates")
	}
	if len(m) == 0 {
		return "none (loopback only)"
	}
	return strings.Join(m, " + ")
}
