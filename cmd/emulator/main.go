// Command emulator serves the QingCloud IaaS API emulator on a loopback port, for the official
// SDKs, the CLI, Terraform and tests. It prints its endpoint and keys, and serves until interrupted.
//
//	go run ./cmd/emulator -addr 127.0.0.1:7780
//
// It refuses an address beyond loopback unless -allow-remote is given: its control API has no
// authentication.
//
// Faults can be set with flags and changed at run time through the control API
// (GET/PUT /_emulator/faults, GET /_emulator/stats, POST /_emulator/reset). See docs/emulator.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "emulator:", err)
		os.Exit(2)
	}
}

// config is the parsed command line.
type config struct {
	addr        string
	allowRemote bool
	logLevel    string
	opts        emulator.Options
}

// checkLoopback refuses a listen address beyond loopback unless allowRemote: the control API
// (/_emulator/) has no authentication, and the default keys are the documentation's example pair.
func checkLoopback(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: want host:port: %w", addr, err)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("-addr %q is not a loopback address: the emulator's control API (/_emulator/) has no "+
		"authentication and anyone reaching it can change faults or reset state; listen on 127.0.0.1 or [::1], "+
		"or pass -allow-remote to listen beyond loopback anyway", addr)
}

// listFlag is a comma-separated list of names.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// keysFlag is a comma-separated list of access_key_id:secret pairs.
type keysFlag map[string]string

func (k *keysFlag) String() string {
	ids := make([]string, 0, len(*k))
	for id := range *k {
		ids = append(ids, id+":***")
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

func (k *keysFlag) Set(s string) error {
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		id, secret, ok := strings.Cut(pair, ":")
		if !ok || id == "" || secret == "" {
			return fmt.Errorf("want access_key_id:secret pairs separated by commas")
		}
		m[id] = secret
	}
	if len(m) == 0 {
		return fmt.Errorf("no keys given")
	}
	*k = m
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &c.opts
	var keys keysFlag
	fs.StringVar(&c.addr, "addr", "127.0.0.1:7780", "listen address (host:port); loopback only unless -allow-remote")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow an -addr beyond loopback (the control API has no authentication)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug (one line per request), info, warn, error")
	fs.Var(&keys, "keys", "access keys as id:secret,id2:secret2 (default: the example pair "+
		emulator.DefaultAccessKeyID+":"+emulator.DefaultSecretAccessKey+"); each key is an isolated account")
	fs.DurationVar(&o.JobPending, "job-pending", emulator.DefaultJobPending, "time a job stays pending")
	fs.DurationVar(&o.JobWorking, "job-working", emulator.DefaultJobWorking, "time a job then stays working")
	fs.DurationVar(&o.TimeWindow, "time-window", emulator.DefaultTimeWindow, "allowed |now - time_stamp|; negative disables the time_stamp and expires checks")
	fs.IntVar(&o.Quota, "quota", emulator.DefaultQuota, "API requests per quota window per access key; negative disables")
	fs.DurationVar(&o.QuotaWindow, "quota-window", emulator.DefaultQuotaWindow, "sliding window of the quota")
	fs.DurationVar(&o.Retention, "retention", emulator.DefaultRetention, "how long deleted resources stay visible")
	f := &o.Faults
	fs.Float64Var(&f.RetCode5100, "fault-5100", 0, "probability of answering ret_code 5100 (server busy)")
	fs.Float64Var(&f.RetCode5000, "fault-5000", 0, "probability of answering ret_code 5000 (internal error)")
	fs.Float64Var(&f.RetCode2500, "fault-2500", 0, "probability of answering ret_code 2500 (quota exceeded)")
	fs.Float64Var(&f.HTTP502, "fault-502", 0, "probability of answering HTTP 502")
	fs.Float64Var(&f.HTTP503, "fault-503", 0, "probability of answering HTTP 503")
	fs.Float64Var(&f.ConnReset, "fault-reset", 0, "probability of resetting the connection")
	fs.Float64Var(&f.TruncatedBody, "fault-truncate", 0, "probability of a truncated JSON body (the action runs)")
	fs.DurationVar(&f.Latency, "latency", 0, "latency added to every request")
	fs.Var((*listFlag)(&f.FailActions), "fail-actions", "comma-separated delayed actions whose jobs end failed")
	fs.Var((*listFlag)(&f.DoneWithFailure), "done-with-failure", "comma-separated delayed actions whose jobs end done with failure")
	fs.Var((*listFlag)(&f.Actions), "fault-actions", "comma-separated actions the faults apply to (default all)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := checkLoopback(c.addr, c.allowRemote); err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		o.Keys = keys
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c.opts.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := emulator.Listen(c.addr, c.opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	if c.allowRemote {
		log.Warn("listening beyond loopback: the control API /_emulator/ has no authentication", "addr", srv.Addr().String())
	}
	printBanner(stdout, srv.Endpoint(), c.opts.Keys)
	<-ctx.Done()
	log.Info("shutting down")
	return srv.Close()
}

// printBanner prints the endpoint, the keys (secrets only for the documented example pair) and
// the control API.
func printBanner(w io.Writer, endpoint string, keys map[string]string) {
	fmt.Fprintf(w, "QingCloud emulator listening\n  endpoint:    %s\n", endpoint)
	if keys == nil {
		fmt.Fprintf(w, "  access key:  %s\n  secret key:  %s\n", emulator.DefaultAccessKeyID, emulator.DefaultSecretAccessKey)
	} else {
		ids := make([]string, 0, len(keys))
		for id := range keys {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(w, "  access keys: %s (secrets as given with -keys)\n", strings.Join(ids, ", "))
	}
	base := strings.TrimSuffix(endpoint, "iaas/")
	fmt.Fprintf(w, "  control API: %s_emulator/faults (GET, PUT), %s_emulator/stats, %s_emulator/reset (POST)\n", base, base, base)
}
