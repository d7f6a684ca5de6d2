// Command server runs the qingcloud-grpc facade: typed gRPC and REST APIs over QingCloud IaaS.
//
// With no QingCloud keys configured it starts the built-in QingCloud emulator on a loopback port and
// serves from it, on loopback, without caller authentication:
//
//	go run ./cmd/server
//
// Keys come from QingCloud's own ~/.qingcloud/config.yaml, QINGCLOUD_* variables or flags (flags
// override variables override the file); this server's own settings (addresses, TLS, credential
// profiles, bearer tokens) live in the same file under "qingcloud_grpc:". See docs/configuration.md,
// docs/security.md, or run with -h.
//
// Subcommands:
//
//	server healthcheck [-grpc-addr host:port] [-tls] [-ca file] [-cert file -key file]
//	    exits 0 when a running server reports SERVING (for container HEALTHCHECK instructions)
//	server hash-token [-generate]
//	    prints the SHA-256 of a bearer token read from stdin, the form the config file stores
//
// On SIGTERM or SIGINT the server shuts down gracefully: health turns NOT_SERVING, new calls are
// refused, watch streams end with UNAVAILABLE, and in-flight calls get -shutdown-grace to finish.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/config"
)

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "healthcheck":
			err = healthcheck(os.Args[2:], os.Stdout)
		case "hash-token":
			err = hashToken(os.Args[2:], os.Stdin, os.Stdout)
		default:
			goto serve
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
serve:
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal terminates at once
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	stop()
	switch {
	case errors.Is(err, config.ErrHelp):
		config.Usage(os.Stdout)
	case err != nil:
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
