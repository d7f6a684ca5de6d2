// Command server runs the qingcloud-grpc facade: typed gRPC and REST APIs over QingCloud IaaS.
//
// With no credentials it starts the built-in QingCloud emulator on a loopback port and serves from it:
//
//	go run ./cmd/server
//
// With QINGCLOUD_ACCESS_KEY and QINGCLOUD_SECRET_KEY (and optionally QINGCLOUD_ZONE, QINGCLOUD_ENDPOINT)
// it calls the real API. Run with -h for the flags; flags override the variables.
//
// "server healthcheck [-grpc-addr host:port]" exits 0 when a running server reports SERVING; it is meant
// for container HEALTHCHECK instructions.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/backend"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/server"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/watch"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if err := healthcheck(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := config.Load(args, os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	creds, endpoint := cfg.Credentials, cfg.Endpoint
	if cfg.UseEmulator() {
		emu, err := emulator.Listen(cfg.EmulatorAddr, emulator.Options{
			JobPending: cfg.EmulatorJobPending,
			JobWorking: cfg.EmulatorJobWorking,
			Logger:     log.With("component", "emulator"),
		})
		if err != nil {
			return fmt.Errorf("start the built-in emulator: %w", err)
		}
		defer emu.Close()
		creds = signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}
		endpoint = emu.Endpoint()
		log.Info("no QingCloud credentials configured: serving from the built-in QingCloud emulator",
			"emulator_endpoint", endpoint,
			"example_access_key_id", emulator.DefaultAccessKeyID,
			"example_secret_access_key", emulator.DefaultSecretAccessKey,
			"zone", cfg.Zone)
	} else {
		log.Info("calling QingCloud", "endpoint", endpoint, "access_key_id", creds.AccessKeyID, "zone", cfg.Zone)
	}

	be, err := backend.New(backend.Config{Endpoint: endpoint, Credentials: creds, Logger: log.With("component", "backend")})
	if err != nil {
		return err
	}
	hub := watch.NewSingle(be, cfg.Zone, watch.Options{Logger: log.With("component", "watch")})
	defer hub.Close()
	srv, err := server.New(server.Config{Backend: be, DefaultZone: cfg.Zone, Watch: hub, Logger: log.With("component", "grpc")})
	if err != nil {
		return err
	}
	httpHandler, err := srv.HTTPHandler(ctx)
	if err != nil {
		return err
	}

	gl, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen -grpc-addr %s: %w", cfg.GRPCAddr, err)
	}
	hl, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("listen -http-addr %s: %w", cfg.HTTPAddr, err)
	}
	hs := &http.Server{Handler: httpHandler, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(gl) }()
	go func() { errc <- hs.Serve(hl) }()
	log.Info("serving", "grpc", gl.Addr().String(), "http", hl.Addr().String(), "actions", len(srv.Methods()))

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Health().Shutdown() // NOT_SERVING first, so load balancers stop sending new calls
	hub.Close()             // watch streams end UNAVAILABLE so clients resume elsewhere
	_ = hs.Shutdown(shutdownCtx)
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-shutdownCtx.Done():
		srv.Stop()
	}
	return nil
}
