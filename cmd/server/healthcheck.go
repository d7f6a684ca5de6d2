package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/auth"
)

// healthcheck asks a running server's gRPC health service whether it is SERVING, for container
// HEALTHCHECK instructions (distroless images have no shell or curl). It returns nil when it is.
// Health checking needs no bearer token; over TLS (-tls, or -ca) it verifies the server certificate,
// and with -cert/-key it presents a client certificate to a server that requires mutual TLS.
func healthcheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("grpc-addr", "127.0.0.1:9090", "gRPC address of the server to check")
	service := fs.String("service", "", "service to check; empty means the whole server")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for an answer")
	useTLS := fs.Bool("tls", false, "connect over TLS (implied by -ca, -cert)")
	caFile := fs.String("ca", "", "PEM CA certificates to verify the server with (default: the system's)")
	certFile := fs.String("cert", "", "PEM client certificate, for a server that requires mutual TLS")
	keyFile := fs.String("key", "", "PEM private key of -cert")
	serverName := fs.String("server-name", "", "name to verify the server certificate against (default: the host of -grpc-addr)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	creds := insecure.NewCredentials()
	if *useTLS || *caFile != "" || *certFile != "" || *keyFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: *serverName}
		if *caFile != "" {
			pool, err := auth.LoadCertPool(*caFile)
			if err != nil {
				return fmt.Errorf("healthcheck: -ca: %w", err)
			}
			cfg.RootCAs = pool
		}
		if (*certFile == "") != (*keyFile == "") {
			return errors.New("healthcheck: -cert and -key go together")
		}
		if *certFile != "" {
			cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				return fmt.Errorf("healthcheck: -cert/-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", *addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("healthcheck %s: %s", *addr, resp.GetStatus())
	}
	fmt.Fprintln(stdout, "SERVING")
	return nil
}
