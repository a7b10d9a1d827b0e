package main

// bench --mode ingest: single-job POST /v1/jobs requests from many
// keep-alive connections against a real HTTP server, measured client-side.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/kinds"
	"github.com/switchyard-dev/switchyard/internal/server"
)

// ingestQueue receives the benchmark's jobs. The in-process server pauses
// it, so that the figures are the ingest path's and not the workers'.
const ingestQueue = "bench-ingest"

// ingestWarmup is the warm-up before measuring (connections opened, caches
// and statements warm); its requests are not counted. Short runs warm up
// for a fifth of --duration instead.
const ingestWarmup = time.Second

// ingestTarget is the server the load goes to.
type ingestTarget struct {
	url     string // base URL, as http://127.0.0.1:PORT
	key     string
	backend string
	tenant  string // an in-process server's: the benchmark's own
	// sourceID and sourceSecret: the GitHub-style source that webhook
	// requests go to (--ingest webhooks).
	sourceID, sourceSecret string
	// stop shuts an in-process server down and removes its jobs; nil for a
	// server the benchmark did not start.
	stop func() error
}

func benchIngest(ctx context.Context, o benchOptions) (res benchResult, err error) {
	var t *ingestTarget
	if o.server != "" {
		t = &ingestTarget{url: strings.TrimRight(o.server, "/"), key: o.apiKey, backend: "remote"}
	} else {
		t, err = startIngestServer(ctx, o)
		if err != nil {
			return benchResult{}, err
		}
		defer func() { err = errors.Join(err, t.stop()) }()
	}
	res = benchResult{Backend: t.backend, Mode: "ingest", Ingest: o.ingest, Rules: o.rules, Connections: o.connections}
	if o.ingest != ingestJobs {
		res.PayloadBytes = o.payload
	}
	if o.server != "" {
		res.Server = t.url
	}
	shape, err := newIngestShape(o.ingest, t, o.payload)
	if err != nil {
		return res, err
	}
	l := ingestLoad{
		url:      t.url + shape.path,
		shape:    shape,
		key:      t.key,
		conns:    o.connections,
		warmup:   min(ingestWarmup, o.duration/5),
		duration: o.duration,
	}
	if o.jobsGiven {
		l.requests = int64(o.jobs)
	}
	if o.rateGiven {
		l.interval = time.Duration(float64(time.Second) * float64(o.connections) / float64(o.rate))
		res.Rate = o.rate
	}
	lat, elapsed, err := l.run(ctx)
	if err != nil {
		return res, err
	}
	slices.Sort(lat)
	res.Jobs = len(lat)
	res.RequestsPerSec = float64(len(lat)) / elapsed.Seconds()
	res.LatencyP50Ms = ms(percentile(lat, 0.50))
	res.LatencyP99Ms = ms(percentile(lat, 0.99))
	res.DurationSec = elapsed.Seconds()
	return res, nil
}

// startIngestServer starts what `switchyard serve` runs, in this process,
// on a loopback port: a client working all queues with the built-in kinds
// and a metrics registry, and the HTTP API with its access log on. The
// access log is formatted as serve formats it (JSON) but written to
// io.Discard, so that its cost is measured and the terminal's is not.
func startIngestServer(ctx context.Context, o benchOptions) (*ingestTarget, error) {
	log := slog.New(splitLogHandler{
		quiet: slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}),
		loud:  slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tenant := "bench-" + hex.EncodeToString(b)
	c, err := switchyard.Open(ctx, switchyard.Config{
		Database:   o.db,
		Durability: o.durability,
		// A tenant of its own, as the other modes use, so that a shared
		// database's jobs are neither touched nor counted.
		TenantID:   tenant,
		AllQueues:  true,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	// Until the server runs, failures unwind here; afterwards stop does.
	ok, made := false, &ingestMade{}
	defer func() {
		if !ok {
			cleanupIngest(c, nil, made)
		}
	}()
	if err := c.Ready(ctx); err != nil {
		return nil, err
	}
	if err := kinds.Register(c, kinds.Config{}); err != nil {
		return nil, err
	}
	// Paused before the workers start: the jobs stay queued, and what is
	// measured is accepting them, not running them.
	if err := c.PauseQueue(ctx, ingestQueue); err != nil {
		return nil, err
	}
	// The key expires, so that a shared database is not left with a live
	// key should the benchmark die before revoking it.
	secret, key, err := c.CreateAPIKey(ctx, switchyard.NewAPIKey{
		Name:      "switchyard bench --mode ingest",
		Role:      switchyard.RoleOperator,
		ExpiresAt: time.Now().Add(o.duration + 24*time.Hour),
	})
	if err != nil {
		return nil, err
	}
	made.keyID = key.ID
	var src *switchyard.Source
	if o.ingest == ingestWebhooks {
		if src, err = c.CreateSource(ctx, "bench", switchyard.SourceSpec{Scheme: switchyard.SchemeGitHub}); err != nil {
			return nil, err
		}
		made.sourceID = src.ID
	}
	// --rules: rules that match every request's event, each enqueueing a
	// job from it (to the paused queue), so that their cost is measured.
	for i := range o.rules {
		r, err := c.CreateRule(ctx, fmt.Sprintf("bench-%d", i), switchyard.RuleSpec{
			Types: []string{ingestEventType, "github.*"}, Enabled: true, Filter: `data.i >= 0`,
			Actions: []switchyard.RuleAction{{Type: switchyard.RuleEnqueue, Queue: ingestQueue, Kind: "noop", Args: `{"i": data.i}`}},
		})
		if err != nil {
			return nil, err
		}
		made.ruleIDs = append(made.ruleIDs, r.ID)
	}
	// The benchmark's one key sends far more than a client's default
	// share; the limiter still runs, so its cost is measured.
	unlimited := switchyard.RateLimit{RequestsPerSecond: 1e9, Burst: 1e9}
	srv, err := server.New(server.Config{Client: c, Logger: log, Gatherer: reg, Registerer: reg, RateLimit: unlimited})
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	ok = true
	t := &ingestTarget{
		url:     "http://" + ln.Addr().String(),
		key:     secret,
		backend: c.Backend(),
		tenant:  tenant,
		stop: func() error {
			err := cleanupIngest(c, hs, made)
			if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
				err = errors.Join(err, fmt.Errorf("serve: %w", serr))
			}
			return err
		},
	}
	if src != nil {
		t.sourceID, t.sourceSecret = src.ID, src.Secrets[0]
	}
	return t, nil
}

// ingestMade is what the in-process server's setup created in the
// benchmark's tenant, for cleanupIngest.
type ingestMade struct {
	keyID    string
	sourceID string
	ruleIDs  []string
}

// cleanupIngest stops the server (if started) and the client, revokes the
// benchmark's key, and deletes its source, rules and jobs. The events it
// recorded stay until event retention removes them: the store deletes
// events by age, not by tenant.
func cleanupIngest(c *switchyard.Client, hs *http.Server, made *ingestMade) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if hs != nil {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if made.keyID != "" {
		if err := c.RevokeAPIKey(ctx, made.keyID); err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range made.ruleIDs {
		if err := c.DeleteRule(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if made.sourceID != "" {
		if err := c.DeleteSource(ctx, made.sourceID); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.Stop(ctx))
	if _, err := c.PurgeQueue(ctx, ingestQueue); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Close())
	return errors.Join(errs...)
}

// splitLogHandler formats records below warn with quiet (which the ingest
// server points at io.Discard: the access log's cost without the
// terminal's) and the rest with loud.
type splitLogHandler struct {
	quiet, loud slog.Handler
}

func (h splitLogHandler) pick(l slog.Level) slog.Handler {
	if l < slog.LevelWarn {
		return h.quiet
	}
	return h.loud
}

func (h splitLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.pick(l).Enabled(ctx, l)
}

func (h splitLogHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

func (h splitLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return splitLogHandler{h.quiet.WithAttrs(attrs), h.loud.WithAttrs(attrs)}
}

func (h splitLogHandler) WithGroup(name string) slog.Handler {
	return splitLogHandler{h.quiet.WithGroup(name), h.loud.WithGroup(name)}
}

// ingestLoad is a closed-loop load: conns goroutines, each on its own
// keep-alive connection, each sending its next request as soon as the last
// one is answered.
//
// The client writes each request with one Write on a plain connection and
// parses the answer with http.ReadResponse. It shares the machine's CPUs
// with the server, so it is kept lean: net/http's Transport costs two
// goroutines per connection and hand-offs between them on every request,
// which measurably took throughput from the server it measures.
type ingestLoad struct {
	url      string
	shape    *ingestShape
	key      string
	conns    int
	warmup   time.Duration
	duration time.Duration // measured time, unless requests is set
	requests int64         // if > 0: measure this many requests instead
	// interval, if set, paces each connection: it sends a request every
	// interval (open loop), and a request's latency counts from when it
	// was due, so that a server that falls behind is charged for the wait
	// it causes.
	interval time.Duration

	phase   atomic.Int32 // ingestWarm, ingestMeasure or ingestStop
	tickets atomic.Int64 // requests left to send, when requests is set
	seq     atomic.Int64 // the args' "i"

	failOnce sync.Once
	failed   chan struct{} // closed at the first failed request
	errs     atomic.Int64  // failed requests
	firstErr error         // written once, before failed is closed
}

const (
	ingestWarm int32 = iota
	ingestMeasure
	ingestStop
)

// ingestRequestTimeout bounds each request, so that a server that stops
// answering fails the benchmark instead of hanging it.
const ingestRequestTimeout = 30 * time.Second

// run sends the load and returns the latencies of the measured requests,
// unsorted, and the measured time.
func (l *ingestLoad) run(ctx context.Context) ([]time.Duration, time.Duration, error) {
	u, err := url.Parse(l.url)
	if err != nil {
		return nil, 0, fmt.Errorf("server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("server URL %q: want http://HOST:PORT", l.url)
	}
	l.failed = make(chan struct{})
	l.tickets.Store(l.requests)
	// Room for the samples of a fast run, so that recording rarely grows
	// a slice while measuring.
	var perConn int
	if l.requests > 0 {
		perConn = int(min(l.requests/int64(l.conns)*2+64, 1<<20))
	} else {
		perConn = int(min(50000*l.duration.Seconds()/float64(l.conns)+64, 1<<20))
	}
	senders := make([]*ingestSender, l.conns)
	for i := range senders {
		senders[i] = l.newSender(u, perConn)
	}
	closeAll := func() {
		for _, s := range senders {
			s.close()
		}
	}
	defer closeAll()
	// An interrupt ends the requests in flight at once.
	defer context.AfterFunc(ctx, closeAll)()
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx)
		}()
	}
	allDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(allDone)
	}()
	// finish stops the senders, waits for their last answers and reports
	// the first failure, if any.
	finish := func(err error) error {
		l.phase.Store(ingestStop)
		<-allDone
		if err == nil {
			err = ctx.Err()
		}
		select {
		case <-l.failed:
			if err == nil {
				return fmt.Errorf("%d request(s) failed; the first: %w", l.errs.Load(), l.firstErr)
			}
		default:
		}
		return err
	}

	select {
	case <-time.After(l.warmup):
	case <-l.failed:
		return nil, 0, finish(nil)
	case <-ctx.Done():
		return nil, 0, finish(ctx.Err())
	}
	start := time.Now()
	l.phase.Store(ingestMeasure)
	var timeout <-chan time.Time
	if l.requests == 0 {
		t := time.NewTimer(l.duration)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-allDone: // the requests were all sent
	case <-l.failed:
	case <-ctx.Done():
	}
	// Requests begun before the end count; the time runs until they are
	// answered.
	if err := finish(nil); err != nil {
		return nil, 0, err
	}
	elapsed := time.Since(start)
	n := 0
	for _, s := range senders {
		n += len(s.lat)
	}
	if n == 0 {
		return nil, 0, errors.New("no request was answered in the measured time")
	}
	lat := make([]time.Duration, 0, n)
	for _, s := range senders {
		lat = append(lat, s.lat...)
	}
	return lat, elapsed, nil
}

func (l *ingestLoad) fail(err error) {
	l.errs.Add(1)
	l.failOnce.Do(func() {
		l.firstErr = err
		close(l.failed)
	})
	l.phase.Store(ingestStop)
}

// ingestSender is one connection and the loop that sends on it.
type ingestSender struct {
	l    *ingestLoad
	u    *url.URL
	req  func(b []byte, seq int64) []byte // appends request seq
	buf  []byte                           // the request being sent
	br   *bufio.Reader
	lat  []time.Duration
	conn net.Conn // the loop's; nil until dialled and after the server closed it

	mu     sync.Mutex // guards open and closed, for close
	open   net.Conn
	closed bool
	due    time.Time // when the next request is due, when paced
}

func (l *ingestLoad) newSender(u *url.URL, samples int) *ingestSender {
	return &ingestSender{
		l:   l,
		u:   u,
		req: l.shape.newRequest(u, l.key),
		buf: make([]byte, 0, 1024),
		lat: make([]time.Duration, 0, samples),
	}
}

func (s *ingestSender) loop(ctx context.Context) {
	l := s.l
	for {
		ph := l.phase.Load()
		if ph == ingestStop {
			return
		}
		if ph == ingestMeasure && l.requests > 0 && l.tickets.Add(-1) < 0 {
			return
		}
		start := time.Now()
		if l.interval > 0 {
			if s.due.IsZero() {
				// Connections start spread over one interval.
				s.due = start.Add(time.Duration(mrand.Int64N(int64(l.interval))))
			}
			if wait := time.Until(s.due); wait > 0 {
				time.Sleep(wait)
			}
			start, s.due = s.due, s.due.Add(l.interval)
		}
		if err := s.send(ctx); err != nil {
			if ctx.Err() == nil {
				l.fail(fmt.Errorf("POST %s: %w", s.u, err))
			}
			return
		}
		if ph == ingestMeasure {
			s.lat = append(s.lat, time.Since(start))
		}
	}
}

// send posts one request and reads the whole answer, which must have the
// shape's status.
func (s *ingestSender) send(ctx context.Context) error {
	c := s.conn
	if c == nil {
		var err error
		if c, err = s.dial(ctx); err != nil {
			return err
		}
	}
	b := s.req(s.buf[:0], s.l.seq.Add(1))
	s.buf = b
	if err := c.SetDeadline(time.Now().Add(ingestRequestTimeout)); err != nil {
		return err
	}
	if _, err := c.Write(b); err != nil {
		return err
	}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != s.l.shape.status {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	resp.Body.Close()
	if resp.Close {
		// The server ends the connection; the next request dials again.
		s.mu.Lock()
		s.open = nil
		s.mu.Unlock()
		c.Close()
		s.conn = nil
	}
	return nil
}

func (s *ingestSender) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	var c net.Conn
	var err error
	if s.u.Scheme == "https" {
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: s.u.Hostname()}}
		c, err = td.DialContext(ctx, "tcp", hostPort(s.u))
	} else {
		c, err = d.DialContext(ctx, "tcp", hostPort(s.u))
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	s.conn, s.open = c, c
	if s.br == nil {
		s.br = bufio.NewReaderSize(c, 4096)
	} else {
		s.br.Reset(c)
	}
	return c, nil
}

// close closes the connection from any goroutine, ending a request in
// flight; the sender dials no more.
func (s *ingestSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.open != nil {
		s.open.Close()
		s.open = nil
	}
}

// hostPort is the URL's host with the scheme's port if it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}
