package main

// bench --mode fanout: many WebSocket connections to one node, a publisher
// at a steady rate to the topic some of them read, and what it costs: the
// server's memory per connection and the publish→receive latency of every
// delivery.
//
// The server runs in this process, as --mode ingest runs it; the clients
// run in a child process (this binary again, as the hidden --mode
// fanout-clients), so that this process's memory is the server's alone and
// its growth while the clients connect is what the connections cost. With
// --server the clients run here against that server instead, and its
// memory is read from its /metrics (process_resident_memory_bytes), if it
// serves them.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server"
)

const (
	// fanoutTopic is the topic published to; connections that are not
	// subscribers of it each read a quiet topic of their own.
	fanoutTopic = "bench.fanout"
	// fanoutEnd is the event type of the last message: a subscriber that
	// has it has had everything.
	fanoutEnd = "end"
	// fanoutDialers open the connections in parallel (more would overflow
	// the listen backlog).
	fanoutDialers = 64
	// fanoutSenders share the publishing rate, as independent publishers.
	fanoutSenders = 8
	// fanoutDrain bounds the wait for the last messages after publishing.
	fanoutDrain = 60 * time.Second
	// fanoutChildEnv makes the test binary run a command instead of the
	// tests (see main_test.go); the switchyard binary ignores it.
	fanoutChildEnv = "SWITCHYARD_TEST_COMMAND_CHILD"
)

// fanoutResult is what --mode fanout reports.
type fanoutResult struct {
	Backend     string `json:"backend"`
	Mode        string `json:"mode"`
	Connections int    `json:"connections"` // subscribers and quiet connections, not counting the stalled
	Subscribers int    `json:"subscribers"` // connections reading the published topic
	Stalled     int    `json:"stalled"`     // more subscribers of it that never read
	Rate        int    `json:"rate"`
	Messages    int64  `json:"messages"`
	// Deliveries counts messages received by the subscribers (not the
	// stalled), of ExpectedDeliveries.
	Deliveries         int64 `json:"deliveries"`
	ExpectedDeliveries int64 `json:"expected_deliveries"`
	// StalledDropped counts the stalled connections the server dropped:
	// a stalled client's messages fill its socket's buffers, then its
	// buffer in the hub, and it is dropped as a slow consumer (with a
	// close frame it never reads, or none if the write it was stuck in
	// timed out first).
	StalledDropped int64 `json:"stalled_dropped"`
	// Evicted counts connections the server dropped as slow consumers
	// (the stalled ones should be; no subscriber should). Against a
	// --server, it counts the subscribers whose connection the server
	// closed.
	Evicted int64 `json:"evicted"`
	// RSSBytes is the server's resident memory growth while every
	// connection opened and subscribed; BytesPerConnection divides it by
	// the connections, stalled ones included.
	RSSBytes           int64   `json:"rss_bytes"`
	BytesPerConnection int64   `json:"bytes_per_connection"`
	HeapPerConnection  int64   `json:"heap_bytes_per_connection,omitempty"`
	StackPerConnection int64   `json:"stack_bytes_per_connection,omitempty"`
	LatencyP50Ms       float64 `json:"latency_p50_ms"`
	LatencyP99Ms       float64 `json:"latency_p99_ms"`
	LatencyMaxMs       float64 `json:"latency_max_ms"`
	// CoalesceMs is the in-process server's coalescing window.
	CoalesceMs  float64 `json:"coalesce_ms"`
	Server      string  `json:"server,omitempty"`
	DurationSec float64 `json:"duration_s"`
}

func benchFanout(ctx context.Context, o benchOptions, stdout, stderr io.Writer) (err error) {
	res := fanoutResult{Mode: "fanout", Connections: o.connections, Subscribers: min(o.subscribers, o.connections), Stalled: o.stalled, Rate: o.rate}
	var (
		publish func(ctx context.Context, data []byte, event string) error
		clients fanoutSide
		before  memSnapshot
		evicted func() int64
	)
	if o.server != "" {
		base := strings.TrimRight(o.server, "/")
		res.Backend, res.Server = "remote", base
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: fanoutSenders}, Timeout: 30 * time.Second}
		defer hc.CloseIdleConnections()
		publish = func(ctx context.Context, data []byte, event string) error {
			return httpPublish(ctx, hc, base, o.apiKey, event, data)
		}
		before.rss = remoteRSS(ctx, hc, base, o.apiKey)
		local := newFanoutClients(base, o.apiKey)
		clients = local
		defer local.close() // after finish, a no-op
		if err := raiseFDLimit(o.connections + o.stalled + 256); err != nil {
			return err
		}
		if err := local.connect(ctx, o.connections, res.Subscribers, o.stalled); err != nil {
			return err
		}
		if after := remoteRSS(ctx, hc, base, o.apiKey); after > 0 && before.rss > 0 {
			res.RSSBytes = after - before.rss
		}
	} else {
		srv, err := startFanoutServer(ctx, o)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, srv.stop()) }()
		res.Backend = srv.backend
		res.CoalesceMs = float64(max(o.coalesce, 0).Microseconds()) / 1000
		publish = func(ctx context.Context, data []byte, event string) error {
			return srv.client.Publish(ctx, fanoutTopic, event, json.RawMessage(data))
		}
		evicted = srv.evicted
		before = takeMemSnapshot()
		child, err := startFanoutChild(ctx, o, srv.url, srv.key, res.Subscribers, stderr)
		if err != nil {
			return err
		}
		defer child.kill()
		clients = child
		if err := child.ready(); err != nil {
			return err
		}
		after := takeMemSnapshot()
		res.RSSBytes = after.rss - before.rss
		n := int64(o.connections + o.stalled)
		res.HeapPerConnection = (after.heap - before.heap) / n
		res.StackPerConnection = (after.stacks - before.stacks) / n
	}
	res.BytesPerConnection = res.RSSBytes / int64(o.connections+o.stalled)

	// Publish at the rate, each message carrying when it was published.
	start := time.Now()
	sent, perr := paceFanout(ctx, o, func(ctx context.Context, n int64) error {
		return publish(ctx, fmt.Appendf(nil, `{"t":%d,"n":%d}`, time.Now().UnixNano(), n), "tick")
	})
	res.DurationSec = time.Since(start).Seconds()
	res.Messages = sent
	if perr == nil {
		perr = publish(ctx, []byte(`{"t":0}`), fanoutEnd)
	}
	if perr != nil {
		return perr // the deferred cleanup closes the clients
	}
	got, err := clients.finish()
	if err != nil {
		return err
	}
	res.Deliveries = got.Deliveries
	res.StalledDropped = got.StalledDropped
	res.ExpectedDeliveries = sent * int64(res.Subscribers)
	res.LatencyP50Ms = float64(got.P50Micros) / 1000
	res.LatencyP99Ms = float64(got.P99Micros) / 1000
	res.LatencyMaxMs = float64(got.MaxMicros) / 1000
	if evicted != nil {
		res.Evicted = evicted()
	} else {
		res.Evicted = got.Closed
	}
	if o.jsonOut {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%s fanout: %d connections (%d subscribers, %d stalled), %d messages at %d/s: "+
			"%d of %d deliveries, p50 %.2f ms, p99 %.2f ms; %d evicted; server memory +%.1f MB, %.1f KB per connection\n",
			res.Backend, res.Connections, res.Subscribers, res.Stalled, res.Messages, res.Rate,
			res.Deliveries, res.ExpectedDeliveries, res.LatencyP50Ms, res.LatencyP99Ms, res.Evicted,
			float64(res.RSSBytes)/(1<<20), float64(res.BytesPerConnection)/1024)
	}
	return nil
}

// paceFanout calls publish at o.rate from fanoutSenders goroutines, each
// on its own ticker, for o.duration or, with --jobs, o.jobs times. It
// returns how many were published.
func paceFanout(ctx context.Context, o benchOptions, publish func(context.Context, int64) error) (int64, error) {
	interval := time.Duration(float64(time.Second) * fanoutSenders / float64(o.rate))
	deadline := time.Now().Add(o.duration)
	var tickets, seq atomic.Int64
	tickets.Store(int64(o.jobs))
	var wg sync.WaitGroup
	errc := make(chan error, fanoutSenders)
	for i := range fanoutSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the senders over the interval.
			select {
			case <-time.After(interval * time.Duration(i) / fanoutSenders):
			case <-ctx.Done():
				return
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				if o.jobsGiven {
					if tickets.Add(-1) < 0 {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				if err := publish(ctx, seq.Add(1)); err != nil {
					errc <- err
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return seq.Load(), err
	}
	return seq.Load(), ctx.Err()
}

// fanoutServer is the in-process server.
type fanoutServer struct {
	url, key, backend string
	client            *switchyard.Client
	evicted           func() int64
	stop              func() error
}

// startFanoutServer starts what serve runs (the hub, the HTTP API with its
// access log formatted and discarded) on a loopback port, with no limit on
// connections per IP or per key: every client comes from one IP with one
// key.
func startFanoutServer(ctx context.Context, o benchOptions) (*fanoutServer, error) {
	log := slog.New(splitLogHandler{
		quiet: slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}),
		loud:  slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
	})
	if err := raiseFDLimit(o.connections + o.stalled + 256); err != nil {
		return nil, err
	}
	coalesce := o.coalesce
	if coalesce <= 0 {
		coalesce = -1
	}
	reg := prometheus.NewRegistry()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	c, err := switchyard.Open(ctx, switchyard.Config{
		Database:   o.db,
		Durability: o.durability,
		TenantID:   "bench-" + hex.EncodeToString(b),
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	secret, key, err := c.CreateAPIKey(ctx, switchyard.NewAPIKey{
		Name: "switchyard bench --mode fanout", Role: switchyard.RoleViewer,
		ExpiresAt: time.Now().Add(o.duration + 24*time.Hour),
	})
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	srv, err := server.New(server.Config{
		Client: c, Logger: log, Gatherer: reg, Registerer: reg,
		RateLimit: switchyard.RateLimit{RequestsPerSecond: 1e9, Burst: 1e9},
		Realtime:  server.RealtimeConfig{MaxConnectionsPerIP: -1, MaxConnectionsPerCredential: -1, Coalesce: coalesce},
	})
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	return &fanoutServer{
		url: "http://" + ln.Addr().String(), key: secret, backend: c.Backend(), client: c,
		evicted: func() int64 {
			return int64(gatherCounter(reg, "switchyard_hub_evictions_total", "reason", "slow_consumer"))
		},
		stop: func() error {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv.CloseRealtime()
			errs := []error{hs.Shutdown(sctx)}
			if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("serve: %w", serr))
			}
			errs = append(errs, c.RevokeAPIKey(sctx, key.ID), c.Close())
			return errors.Join(errs...)
		},
	}, nil
}

func gatherCounter(g prometheus.Gatherer, name, label, value string) float64 {
	families, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label && lp.GetValue() == value && m.Counter != nil {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return 0
}

// memSnapshot is the process's memory after a full collection.
type memSnapshot struct {
	rss    int64 // resident set
	heap   int64 // live heap objects
	stacks int64 // goroutine stacks
}

func takeMemSnapshot() memSnapshot {
	runtime.GC()
	debug.FreeOSMemory() // what was freed goes back, so RSS shows what is held
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(samples)
	v := func(i int) int64 { return int64(samples[i].Value.Uint64()) }
	s := memSnapshot{heap: v(0), stacks: v(1)}
	if rss, err := procRSS(); err == nil {
		s.rss = rss
	} else {
		s.rss = v(2) - v(3) // what the runtime holds from the OS and has not released
	}
	return s
}

// procRSS reads this process's resident set size from /proc.
func procRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// remoteRSS reads a server's process_resident_memory_bytes from its
// /metrics, or 0.
func remoteRSS(ctx context.Context, hc *http.Client, base, key string) int64 {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return 0
}

func httpPublish(ctx context.Context, hc *http.Client, base, key, event string, data []byte) error {
	body := fmt.Appendf(nil, `{"event":%q,"data":%s}`, event, data)
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/topics/"+fanoutTopic+"/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("publish: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// raiseFDLimit raises the open-file limit to at least n, raising the hard
// limit too where the process may (root).
func raiseFDLimit(n int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("open-file limit: %w", err)
	}
	want := uint64(n)
	if l.Cur >= want {
		return nil
	}
	l.Cur = want
	if l.Max < want {
		l.Max = want
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("%d connections need %d open files, and the limit cannot be raised to that (ulimit -n): %w", n-256, n, err)
	}
	return nil
}

// fanoutSide is where the clients run: a child process or this one.
type fanoutSide interface {
	// finish waits for every subscriber to have the last message (or
	// fanoutDrain), closes the connections and reports.
	finish() (fanoutClientResult, error)
}

// fanoutClientResult is what the clients report.
type fanoutClientResult struct {
	Deliveries int64 `json:"deliveries"`
	Closed     int64 `json:"closed"` // subscribers the server closed
	// StalledDropped counts the stalled connections the server closed.
	StalledDropped int64 `json:"stalled_dropped"`
	P50Micros      int64 `json:"p50_us"`
	P99Micros      int64 `json:"p99_us"`
	MaxMicros      int64 `json:"max_us"`
}

// fanoutChild is the client process.
type fanoutChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startFanoutChild(ctx context.Context, o benchOptions, url, key string, subscribers int, stderr io.Writer) (*fanoutChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"bench", "--mode", "fanout-clients", "--server", url, "--api-key", key,
		"--connections", strconv.Itoa(o.connections), "--subscribers", strconv.Itoa(subscribers),
		"--stalled", strconv.Itoa(o.stalled)}
	if o.cpuProfile != "" {
		args = append(args, "--cpuprofile", o.cpuProfile+".clients")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), fanoutChildEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the client process: %w", err)
	}
	return &fanoutChild{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}, nil
}

// ready waits until every connection is open and subscribed.
func (c *fanoutChild) ready() error {
	if !c.out.Scan() {
		return errors.Join(errors.New("the client process ended before its connections were ready"), c.cmd.Wait())
	}
	if line := c.out.Text(); line != "ready" {
		return fmt.Errorf("the client process said %q", line)
	}
	return nil
}

func (c *fanoutChild) finish() (fanoutClientResult, error) {
	var r fanoutClientResult
	c.stdin.Close() // publishing is over
	if !c.out.Scan() {
		return r, errors.Join(errors.New("the client process ended without its figures"), c.cmd.Wait())
	}
	if err := json.Unmarshal(c.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("the client process said %q: %w", c.out.Text(), err)
	}
	return r, c.cmd.Wait()
}

func (c *fanoutChild) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	}
}

// runFanoutClients is the client process: it connects, says "ready",
// waits for stdin to close (publishing is over), then reports its figures
// as one JSON line.
func runFanoutClients(ctx context.Context, o benchOptions, stdin io.Reader, stdout io.Writer) error {
	if err := raiseFDLimit(o.connections + o.stalled + 256); err != nil {
		return err
	}
	fc := newFanoutClients(strings.TrimRight(o.server, "/"), o.apiKey)
	if err := fc.connect(ctx, o.connections, min(o.subscribers, o.connections), o.stalled); err != nil {
		fc.close()
		return err
	}
	fmt.Fprintln(stdout, "ready")
	_, _ = io.Copy(io.Discard, stdin)
	r, err := fc.finish()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(b))
	return nil
}

// fanoutClients are the WebSocket clients: a minimal RFC 6455 client on
// plain connections, one goroutine each, that parses frames in place, so
// that the clients take as little of the machine as they can from the
// server they measure.
type fanoutClients struct {
	addr, host, path, key string

	mu    sync.Mutex
	conns []*fanConn
	wg    sync.WaitGroup
}

type fanConn struct {
	c        net.Conn
	br       *bufio.Reader
	sub      bool // a subscriber of fanoutTopic (not a quiet or stalled one)
	stalled  bool
	lat      []uint32 // each delivery's latency in microseconds, in order
	received int64
	closed   bool          // the server closed it
	end      chan struct{} // closed when the end message came or the connection ended
}

func newFanoutClients(base, key string) *fanoutClients {
	u, _ := url.Parse(base)
	host := u.Host
	addr := host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &fanoutClients{addr: addr, host: host, path: "/v1/ws", key: key}
}

// connect opens the connections: subscribers read fanoutTopic, the other
// connections (up to n) a quiet topic each, and stalled more connections
// subscribe to fanoutTopic and never read.
func (fc *fanoutClients) connect(ctx context.Context, n, subscribers, stalled int) error {
	total := n + stalled
	next := atomic.Int64{}
	errc := make(chan error, fanoutDialers)
	var wg sync.WaitGroup
	for range fanoutDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil {
					return
				}
				topic, kind := fanoutTopic, "subscriber"
				switch {
				case i >= n:
					kind = "stalled"
				case i >= subscribers:
					topic, kind = fanoutTopic+".quiet."+strconv.Itoa(i), "quiet"
				}
				if err := fc.dial(ctx, topic, kind); err != nil {
					errc <- fmt.Errorf("connection %d of %d: %w", i+1, total, err)
					next.Store(int64(total))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return ctx.Err()
}

func (fc *fanoutClients) dial(ctx context.Context, topic, kind string) error {
	d := &net.Dialer{Timeout: 30 * time.Second}
	if kind == "stalled" {
		// A small receive window: the server's writes stall soon.
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}
	}
	c, err := d.DialContext(ctx, "tcp", fc.addr)
	if err != nil {
		return err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	req := "GET " + fc.path + " HTTP/1.1\r\nHost: " + fc.host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(k[:]) + "\r\n" +
		"Authorization: Bearer " + fc.key + "\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		c.Close()
		return fmt.Errorf("handshake: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	if err := writeFrame(c, 1, fmt.Appendf(nil, `{"type":"subscribe","id":"s","topics":[%q]}`, topic)); err != nil {
		c.Close()
		return err
	}
	// The subscribed answer.
	var buf []byte
	for {
		op, payload, err := readFrame(br, buf)
		if err != nil {
			c.Close()
			return fmt.Errorf("subscribe: %w", err)
		}
		buf = payload[:0]
		if op == 1 && bytes.Contains(payload, []byte(`"type":"subscribed"`)) {
			break
		}
		if op == 1 && bytes.Contains(payload, []byte(`"type":"error"`)) {
			c.Close()
			return fmt.Errorf("subscribe: %s", payload)
		}
	}
	_ = c.SetDeadline(time.Time{})
	fcn := &fanConn{c: c, br: br, end: make(chan struct{}), stalled: kind == "stalled"}
	if kind == "subscriber" {
		fcn.sub = true
		fcn.lat = make([]uint32, 0, 1024)
	}
	fc.mu.Lock()
	fc.conns = append(fc.conns, fcn)
	fc.mu.Unlock()
	if kind != "stalled" {
		fc.wg.Add(1)
		go func() {
			defer fc.wg.Done()
			fcn.read()
		}()
	}
	return nil
}

// sentMarker opens a message's data, {"t":<publish time in unix
// nanoseconds>,…}; the end message's time is 0. The data object is the
// first '{' after the message's own, since topic, epoch and event hold
// none.
var sentMarker = []byte(`{"t":`)

// read reads until the end message or the connection's end, recording the
// latency of each message. It is kept cheap (one scan per message, the
// latency appended to a slice), as the clients share the machine with the
// server they measure.
func (f *fanConn) read() {
	defer close(f.end)
	var buf []byte
	for {
		op, payload, err := readFrame(f.br, buf)
		if err != nil {
			f.closed = true
			return
		}
		buf = payload[:0]
		switch op {
		case 1:
			if !f.sub {
				continue
			}
			now := time.Now().UnixNano()
			for len(payload) > 1 {
				i := bytes.IndexByte(payload[1:], '{') + 1
				if i == 0 || !bytes.HasPrefix(payload[i:], sentMarker) {
					break
				}
				payload = payload[i+len(sentMarker):]
				var sent int64
				j := 0
				for ; j < len(payload) && '0' <= payload[j] && payload[j] <= '9'; j++ {
					sent = sent*10 + int64(payload[j]-'0')
				}
				payload = payload[j:]
				if sent == 0 {
					return // the end message
				}
				us := (now - sent) / 1000
				f.lat = append(f.lat, uint32(min(max(us, 0), math.MaxUint32)))
				f.received++
				// On to the next message's line.
				if k := bytes.IndexByte(payload, '\n'); k >= 0 {
					payload = payload[k+1:]
				} else {
					payload = nil
				}
			}
		case 9: // ping
			if writeFrame(f.c, 10, payload) != nil {
				f.closed = true
				return
			}
		case 8: // close
			f.closed = true
			return
		}
	}
}

// finish waits for the subscribers' last message, then closes every
// connection and adds up.
func (fc *fanoutClients) finish() (fanoutClientResult, error) {
	var r fanoutClientResult
	deadline := time.After(fanoutDrain)
	fc.mu.Lock()
	conns := fc.conns
	fc.mu.Unlock()
wait:
	for _, c := range conns {
		if !c.sub {
			continue
		}
		select {
		case <-c.end:
		case <-deadline:
			break wait
		}
	}
	// The stalled connections read at last: what the server sent them
	// ends with a close frame, or the connection's end, if it dropped
	// them.
	for _, c := range conns {
		if c.stalled && c.droppedByServer() {
			r.StalledDropped++
		}
	}
	fc.close()
	var all []uint32
	for _, c := range conns {
		if !c.sub {
			continue
		}
		all = append(all, c.lat...)
		r.Deliveries += c.received
		if c.closed {
			r.Closed++
		}
	}
	slices.Sort(all)
	at := func(p float64) int64 {
		if len(all) == 0 {
			return 0
		}
		return int64(all[int(p*float64(len(all)-1))])
	}
	r.P50Micros, r.P99Micros, r.MaxMicros = at(0.50), at(0.99), at(1)
	return r, nil
}

// droppedByServer reads a stalled connection to its end, for a while,
// and reports whether the server closed it.
func (f *fanConn) droppedByServer() bool {
	_ = f.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var buf []byte
	for {
		op, payload, err := readFrame(f.br, buf)
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout()) // still open: not dropped
		}
		buf = payload[:0]
		if op == 8 {
			return true
		}
	}
}

func (fc *fanoutClients) close() {
	fc.mu.Lock()
	for _, c := range fc.conns {
		c.c.Close()
	}
	fc.mu.Unlock()
	fc.wg.Wait()
}

// readFrame reads one frame's opcode and payload (into buf, grown as
// needed). Server frames are not masked.
func readFrame(br *bufio.Reader, buf []byte) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	op := h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 64<<20 {
		return 0, nil, fmt.Errorf("a %d-byte frame", n)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return 0, nil, err
	}
	return op, buf, nil
}

// writeFrame writes one masked frame, as clients must.
func writeFrame(w io.Writer, op byte, payload []byte) error {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], mrand.Uint32())
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	_, err := w.Write(b)
	return err
}
