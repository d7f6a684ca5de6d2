// Command load measures throughput: it keeps -c calls of DescribeZones in flight for -d and prints
// the completed calls per second. It is the direct signed-call baseline of scripts/load.sh (what an
// SDK does: sign, GET the emulator, decode the JSON, check ret_code) and, for comparison, the same
// calls through the facade over gRPC or REST.
//
//	go run ./scripts/load -mode direct -target http://127.0.0.1:7780/iaas/ -c 8 -d 10s
//	go run ./scripts/load -mode grpc -target 127.0.0.1:9090 -c 8 -d 10s
//	go run ./scripts/load -mode rest -target http://127.0.0.1:8080 -c 8 -d 10s
//
// With -unique each call carries a status filter of its own (active, plus a value no zone has), so
// that the facade cannot coalesce identical concurrent reads into one upstream call: every call
// then costs one upstream request, as a direct call does. The answer is the same either way.
//
// Output, one line: "<mode> c=<c> calls=<n> errors=<n> seconds=<s> rate=<calls/s>".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/emulator"
	"github.com/qingcloud-grpc/qingcloud-grpc/internal/signer"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	mode := fs.String("mode", "direct", "direct (signed GET to the emulator), grpc or rest (through the facade)")
	target := fs.String("target", "", "direct: the emulator's API URL (http://host:port/iaas/); grpc: host:port; rest: http://host:port")
	conc := fs.Int("c", 8, "calls in flight")
	dur := fs.Duration("d", 10*time.Second, "how long to run")
	unique := fs.Bool("unique", true, "give every call a parameter of its own, so the facade cannot coalesce them")
	zone := fs.String("zone", "pek3a", "zone of the direct calls")
	printAK := fs.Bool("print-access-key", false, "print the emulator's default access key id and exit")
	printSK := fs.Bool("print-secret-key", false, "print the emulator's default secret access key and exit (for scripts/load.sh)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *printAK:
		_, err := fmt.Fprint(out, emulator.DefaultAccessKeyID)
		return err
	case *printSK:
		_, err := fmt.Fprint(out, emulator.DefaultSecretAccessKey)
		return err
	}
	if *target == "" || *conc < 1 || *dur <= 0 {
		return errors.New("-target is required, -c and -d must be positive")
	}
	var call func(ctx context.Context, n int64) error
	switch *mode {
	case "direct":
		call = directCall(*target, *zone, *conc, *unique)
	case "grpc":
		conn, err := grpc.NewClient("passthrough:///"+*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		zc := iaasv1.NewZoneServiceClient(conn)
		call = func(ctx context.Context, n int64) error {
			req := &iaasv1.DescribeZonesRequest{Status: []string{"active"}}
			if *unique {
				req.Status = append(req.Status, "x"+strconv.FormatInt(n, 10))
			}
			_, err := zc.DescribeZones(ctx, req)
			return err
		}
	case "rest":
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
		call = func(ctx context.Context, n int64) error {
			u := *target + "/v1/iaas/DescribeZones?status=active"
			if *unique {
				u += "&status=x" + strconv.FormatInt(n, 10)
			}
			return getJSON(ctx, hc, u, false)
		}
	default:
		return fmt.Errorf("-mode %q is not direct, grpc or rest", *mode)
	}
	// Warm up connections.
	for i := range *conc {
		if err := call(context.Background(), -1-int64(i)); err != nil {
			return fmt.Errorf("first call: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var seq, done, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := call(context.Background(), seq.Add(1))
				switch {
				case err == nil:
					done.Add(1)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Fprintf(out, "%s c=%d calls=%d errors=%d seconds=%.2f rate=%.0f\n", *mode, *conc, done.Load(), failed.Load(), secs, float64(done.Load())/secs)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(out, "first error: %s\n", e)
	}
	return nil
}

// directCall signs DescribeZones with the emulator's default key pair and GETs it, as an SDK does.
func directCall(endpoint, zone string, conc int, unique bool) func(context.Context, int64) error {
	s := signer.Signer{Credentials: signer.Credentials{AccessKeyID: emulator.DefaultAccessKeyID, SecretAccessKey: emulator.DefaultSecretAccessKey}}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	path := "/iaas/"
	if u, err := url.Parse(endpoint); err == nil && u.Path != "" {
		path = u.EscapedPath()
	}
	return func(ctx context.Context, n int64) error {
		params := map[string]string{"action": "DescribeZones", "zone": zone, "status.1": "active"}
		if unique {
			params["status.2"] = "x" + strconv.FormatInt(n, 10)
		}
		q, err := s.Sign(http.MethodGet, path, params)
		if err != nil {
			return err
		}
		return getJSON(ctx, hc, endpoint+"?"+q, true)
	}
}

// getJSON GETs u and decodes the JSON answer; with retCode it also checks QingCloud's ret_code.
func getJSON(ctx context.Context, hc *http.Client, u string, retCode bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if retCode && out["ret_code"] != float64(0) {
		return fmt.Errorf("ret_code %v: %v", out["ret_code"], out["message"])
	}
	return nil
}
