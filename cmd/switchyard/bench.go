package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard"
)

const benchSynopsis = `bench [--db URL] [--mode throughput|latency|idle|ingest|fanout|all] [--jobs N]
                 [--batch N] [--workers N] [--rate R] [--duration D]
                 [--connections C] [--ingest jobs|events|webhooks] [--rules N]
                 [--payload BYTES]
                 [--subscribers S] [--stalled N]
                 [--server URL --api-key KEY] [--json]

Measures the engine on a database:
  throughput  insert --jobs no-op jobs in batches of --batch, then work them
              down with --workers in-process workers; insert and work rates
              are reported separately (work ends when every completion is
              durably recorded)
  latency     enqueue single jobs at --rate per second from several
              goroutines for --duration; report enqueue→handler-start p50/p99
  idle        CPU used by a started engine with nothing to do over --duration,
              measured from 2s after start
  ingest      the HTTP API: one job per request (POST /v1/jobs), or with
              --ingest events one CloudEvent (POST /v1/events), or with
              --ingest webhooks one GitHub-signed webhook to a source the
              bench creates (POST /hooks/{source}; in-process server only);
              --rules N adds N rules that match every event, each with a
              filter and an enqueue action; --payload BYTES makes each
              event's data about that much bigger, with a nested object
              shaped like a GitHub push's repository (real webhooks carry
              several KB; the default sends a few dozen bytes). Requests
              come from
              --connections keep-alive HTTP/1.1 connections over loopback,
              each sending its next request as soon as the last is answered,
              for --duration (or until --jobs requests if --jobs is given)
              after a 1s warm-up that is not counted (a fifth of --duration
              if that is shorter). Every answer must be 201. Reports
              requests/s and client-side request latency p50/p99 (from
              request written to answer read). The client writes requests on
              plain keep-alive connections: net/http's Transport would take
              a measurable share of the CPUs from the server it measures.
              The server runs in this process as 'switchyard serve' does
              (all queues, built-in kinds, metrics, JSON access log at info,
              written to a discarding writer: its formatting is measured,
              terminal output is not); its workers run, but queue
              bench-ingest, which the jobs go to, is paused so that accepting
              jobs is measured, not running them. Client and server share
              the machine's CPUs, and --cpuprofile covers both.
              With --server URL --api-key KEY the load goes to that running
              server instead (--db is then not used): its jobs are left in
              queue bench-ingest (nothing is cleaned up, and its workers run
              them unless the queue is paused there).
  fanout      the live endpoints: --connections WebSocket connections
              (default 10000) to one node over loopback, --subscribers of
              them (default 1000) reading one topic and the rest a quiet
              topic each, plus --stalled subscribers (default 1) that never
              read; messages are published to the topic at --rate for
              --duration (or --jobs messages), each carrying its publish
              time. Reports the server's memory growth while the
              connections opened (rss_bytes, bytes_per_connection), and
              the publish→receive latency p50/p99 of every delivery. The
              server runs in this process as for ingest; the clients run in
              a child process, so that this process's memory is the
              server's. With --server URL --api-key KEY (an operator's) the
              clients run here against that server, publishing over HTTP,
              and its memory is read from its /metrics.
  all         idle, latency and throughput in turn (not ingest or fanout)

Without --db, a temporary SQLite file is used and removed afterwards. On a
given database the benchmark works in its own tenant and deletes its jobs
when done, and for ingest its rules and source. Ingest leaves there its
paused queue bench-ingest, its revoked API key, and the events it recorded,
which event retention removes (after 30 days by default).`

type benchOptions struct {
	db         string
	mode       string
	jobs       int
	batch      int
	workers    int
	rate       int
	duration   time.Duration
	durability string
	jsonOut    bool
	cpuProfile string
	memProfile string

	jobsGiven   bool // --jobs set explicitly: ingest sends that many requests
	rateGiven   bool // --rate set explicitly: ingest paces its requests
	connections int
	server      string
	apiKey      string
	ingest      string        // ingest: what the requests carry
	rules       int           // ingest: rules matching every event
	payload     int           // ingest: bytes added to each event's data
	subscribers int           // fanout
	stalled     int           // fanout
	coalesce    time.Duration // fanout
}

// benchResult carries the keys DESIGN.md lists for bench --json.
type benchResult struct {
	Backend          string  `json:"backend"`
	Mode             string  `json:"mode"`
	Jobs             int     `json:"jobs,omitempty"`
	Batch            int     `json:"batch,omitempty"`
	Workers          int     `json:"workers,omitempty"`
	InsertJobsPerSec float64 `json:"insert_jobs_per_sec,omitempty"`
	WorkJobsPerSec   float64 `json:"work_jobs_per_sec,omitempty"`
	Rate             int     `json:"rate,omitempty"`
	LatencyP50Ms     float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms     float64 `json:"latency_p99_ms,omitempty"`
	IdleCPUPercent   float64 `json:"idle_cpu_percent"`
	RequestsPerSec   float64 `json:"requests_per_sec,omitempty"`
	Ingest           string  `json:"ingest,omitempty"`        // ingest: jobs, events or webhooks
	Rules            int     `json:"rules,omitempty"`         // ingest: rules matching every event
	PayloadBytes     int     `json:"payload_bytes,omitempty"` // ingest: --payload
	Connections      int     `json:"connections,omitempty"`
	Server           string  `json:"server,omitempty"`
	DurationSec      float64 `json:"duration_s"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(benchSynopsis, "", stderr)
	var o benchOptions
	fs.StringVar(&o.db, "db", "", "database: sqlite:PATH or a postgres:// URL (default: a temporary SQLite file)")
	fs.StringVar(&o.mode, "mode", "throughput", "throughput, latency, idle, ingest, fanout or all")
	fs.IntVar(&o.jobs, "jobs", 200000, "throughput: jobs to insert and work; ingest: if given, requests to measure instead of --duration; fanout: if given, messages to publish instead of --duration")
	fs.IntVar(&o.batch, "batch", 1000, "throughput: jobs per insert transaction")
	fs.IntVar(&o.workers, "workers", 500, "workers (queue concurrency)")
	fs.IntVar(&o.rate, "rate", 1000, "latency: enqueues per second; fanout: messages per second; ingest: if given, requests per second in all (open loop) instead of each connection sending as soon as it is answered")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "latency, idle and ingest: how long to measure")
	fs.IntVar(&o.connections, "connections", 64, "ingest: concurrent keep-alive HTTP connections; fanout: WebSocket connections (default 10000)")
	fs.StringVar(&o.ingest, "ingest", ingestJobs, "ingest: what each request carries: jobs (POST /v1/jobs), events (POST /v1/events, a CloudEvent) or webhooks (POST /hooks/{source}, GitHub-signed)")
	fs.IntVar(&o.rules, "rules", 0, "ingest: rules that match every event and enqueue a job from it (events and webhooks)")
	fs.IntVar(&o.payload, "payload", 0, "ingest: make each event's data about this many `BYTES` bigger (events and webhooks)")
	fs.IntVar(&o.subscribers, "subscribers", 1000, "fanout: connections that read the published topic")
	fs.IntVar(&o.stalled, "stalled", 1, "fanout: more subscribers that never read")
	fs.DurationVar(&o.coalesce, "coalesce", 20*time.Millisecond, "fanout: the in-process server's coalescing window (serve --live-coalesce); 0 for none")
	fs.StringVar(&o.server, "server", "", "ingest, fanout: load this running server's base `URL` instead of starting one (nothing is cleaned up)")
	fs.StringVar(&o.apiKey, "api-key", "", "ingest, fanout: the API `key` for --server")
	fs.StringVar(&o.durability, "durability", switchyard.DurabilityFull, "SQLite durability: full or relaxed")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per mode")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (fanout: the clients' to FILE.clients)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the run (go tool pprof -sample_index=alloc_space) to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tuneGC() // measure what serve runs with
	if (o.mode == "fanout" || o.mode == "fanout-clients") && !given(fs, "connections") {
		o.connections = 10000
	}
	if o.jobs < 1 || o.batch < 1 || o.workers < 1 || o.rate < 1 || o.duration <= 0 || o.connections < 1 {
		return errors.New("--jobs, --batch, --workers, --rate, --duration and --connections must be positive")
	}
	if o.payload < 0 || o.payload > maxIngestPayload {
		return fmt.Errorf("--payload must be between 0 and %d", maxIngestPayload)
	}
	if o.subscribers < 1 || o.stalled < 0 {
		return errors.New("--subscribers must be positive and --stalled not negative")
	}
	o.jobsGiven = given(fs, "jobs")
	o.rateGiven = given(fs, "rate")
	if o.server != "" {
		// SWITCHYARD_SERVER alone, set for the client commands, does not
		// stop the other modes, nor does SWITCHYARD_DB stop --server.
		onCommandLine := setOnCommandLine(fs, "server")
		remote := o.mode == "ingest" || o.mode == "fanout" || o.mode == "fanout-clients"
		switch {
		case !remote && onCommandLine:
			return errors.New("--server works with --mode ingest only (or fanout)")
		case !remote:
			o.server = ""
		case o.apiKey == "":
			return errors.New("--server needs --api-key (or SWITCHYARD_API_KEY)")
		case setOnCommandLine(fs, "db") && onCommandLine:
			return errors.New("give --db or --server, not both: with --server the running server's database is used")
		default:
			o.db = ""
		}
	}
	if o.db == "" && o.server == "" {
		dir, err := os.MkdirTemp("", "switchyard-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.db = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	if o.server == "" {
		if _, err := switchyard.BackendOf(o.db); err != nil {
			return err
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		defer writeAllocProfile(o.memProfile)
	}
	modes := []string{o.mode}
	if o.mode == "all" {
		// Idle first: after a throughput run the Go runtime spends a while
		// returning the grown heap to the OS, which is not the engine's cost.
		modes = []string{"idle", "latency", "throughput"}
	}
	for _, m := range modes {
		var res benchResult
		var err error
		switch m {
		case "throughput":
			res, err = benchThroughput(ctx, o)
		case "latency":
			res, err = benchLatency(ctx, o)
		case "idle":
			res, err = benchIdle(ctx, o)
		case "ingest":
			res, err = benchIngest(ctx, o)
		case "fanout":
			if err := benchFanout(ctx, o, stdout, stderr); err != nil {
				return fmt.Errorf("fanout: %w", err)
			}
			continue
		case "fanout-clients":
			// The client side of fanout, in a process of its own.
			return runFanoutClients(ctx, o, os.Stdin, stdout)
		default:
			return fmt.Errorf("unknown --mode %q: want throughput, latency, idle, ingest, fanout or all", m)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		printBench(stdout, res, o.jsonOut)
	}
	return nil
}

func printBench(w io.Writer, r benchResult, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
		return
	}
	switch r.Mode {
	case "throughput":
		fmt.Fprintf(w, "%s throughput: %d jobs, batch %d, %d workers: insert %.0f jobs/s, work %.0f jobs/s\n",
			r.Backend, r.Jobs, r.Batch, r.Workers, r.InsertJobsPerSec, r.WorkJobsPerSec)
	case "latency":
		fmt.Fprintf(w, "%s latency: %d jobs at %d/s: enqueue→start p50 %.2f ms, p99 %.2f ms\n",
			r.Backend, r.Jobs, r.Rate, r.LatencyP50Ms, r.LatencyP99Ms)
	case "idle":
		fmt.Fprintf(w, "%s idle: %.3f%% of one core over %.0fs\n", r.Backend, r.IdleCPUPercent, r.DurationSec)
	case "ingest":
		route := map[string]string{ingestJobs: "/v1/jobs", ingestEvents: "/v1/events", ingestWebhooks: "/hooks/{source}"}[r.Ingest]
		rules := ""
		if r.Rules > 0 {
			rules = fmt.Sprintf(" (%d rules)", r.Rules)
		}
		if r.PayloadBytes > 0 {
			rules += fmt.Sprintf(" (data +%d bytes)", r.PayloadBytes)
		}
		fmt.Fprintf(w, "%s ingest: %d POST %s%s over %d connections in %.1fs: %.0f requests/s, p50 %.2f ms, p99 %.2f ms\n",
			r.Backend, r.Jobs, route, rules, r.Connections, r.DurationSec, r.RequestsPerSec, r.LatencyP50Ms, r.LatencyP99Ms)
	}
}

// noopArgs is the benchmark's job: it does nothing, so the figures measure
// the engine. Sent is when the enqueue call began, for the latency mode.
type noopArgs struct {
	Sent int64 `json:"sent,omitempty"`
}

func (noopArgs) Kind() string { return "bench.noop" }

// openBench opens a client in a tenant of its own so a shared database's
// other jobs are neither touched nor counted.
func openBench(ctx context.Context, o benchOptions) (*switchyard.Client, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return switchyard.Open(ctx, switchyard.Config{
		Database:   o.db,
		Durability: o.durability,
		TenantID:   "bench-" + hex.EncodeToString(b),
		Queues:     map[string]switchyard.QueueConfig{"bench": {Concurrency: o.workers}},
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

func cleanupBench(c *switchyard.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.Stop(ctx)
	_, _ = c.PurgeQueue(ctx, "bench")
	_ = c.Close()
}

func benchThroughput(ctx context.Context, o benchOptions) (benchResult, error) {
	c, err := openBench(ctx, o)
	if err != nil {
		return benchResult{}, err
	}
	defer cleanupBench(c)
	res := benchResult{Backend: c.Backend(), Mode: "throughput", Jobs: o.jobs, Batch: o.batch, Workers: o.workers}

	var done atomic.Int64
	finished := make(chan struct{})
	switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[noopArgs]) error {
		if done.Add(1) == int64(o.jobs) {
			close(finished)
		}
		return nil
	})

	batch := make([]switchyard.EnqueueParams, 0, o.batch)
	opts := &switchyard.EnqueueOpts{Queue: "bench"}
	start := time.Now()
	for left := o.jobs; left > 0; {
		n := min(left, o.batch)
		batch = batch[:0]
		for range n {
			batch = append(batch, switchyard.EnqueueParams{Args: noopArgs{}, Opts: opts})
		}
		if _, err := c.EnqueueMany(ctx, batch); err != nil {
			return res, err
		}
		left -= n
	}
	res.InsertJobsPerSec = float64(o.jobs) / time.Since(start).Seconds()

	start = time.Now()
	if err := c.Start(ctx); err != nil {
		return res, err
	}
	select {
	case <-finished:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	// Stop flushes the last completions, so every job counted is durably
	// recorded as succeeded.
	if err := c.Stop(ctx); err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.WorkJobsPerSec = float64(o.jobs) / elapsed.Seconds()
	res.DurationSec = elapsed.Seconds()
	return res, nil
}

func benchLatency(ctx context.Context, o benchOptions) (benchResult, error) {
	c, err := openBench(ctx, o)
	if err != nil {
		return benchResult{}, err
	}
	defer cleanupBench(c)
	res := benchResult{Backend: c.Backend(), Mode: "latency", Rate: o.rate, Workers: o.workers}

	var mu sync.Mutex
	latencies := make([]time.Duration, 0, int(float64(o.rate)*o.duration.Seconds())+16)
	var handled atomic.Int64
	allDone := make(chan struct{}, 1)
	var sent atomic.Int64
	var sending atomic.Bool
	sending.Store(true)
	switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[noopArgs]) error {
		d := time.Since(time.Unix(0, j.Args.Sent))
		mu.Lock()
		latencies = append(latencies, d)
		mu.Unlock()
		if n := handled.Add(1); !sending.Load() && n == sent.Load() {
			select {
			case allDone <- struct{}{}:
			default:
			}
		}
		return nil
	})
	if err := c.Start(ctx); err != nil {
		return res, err
	}

	// Several goroutines share the rate, each on its own ticker, as
	// independent clients would.
	const senders = 8
	interval := time.Duration(float64(time.Second) * senders / float64(o.rate))
	deadline := time.Now().Add(o.duration)
	opts := &switchyard.EnqueueOpts{Queue: "bench"}
	var wg sync.WaitGroup
	errc := make(chan error, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				sent.Add(1)
				if _, err := c.Enqueue(ctx, noopArgs{Sent: time.Now().UnixNano()}, opts); err != nil {
					sent.Add(-1)
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	sending.Store(false)
	select {
	case err := <-errc:
		return res, err
	default:
	}
	if handled.Load() < sent.Load() {
		select {
		case <-allDone:
		case <-time.After(30 * time.Second):
			return res, fmt.Errorf("only %d of %d jobs started within 30s", handled.Load(), sent.Load())
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	res.Jobs = len(latencies)
	res.LatencyP50Ms = ms(percentile(latencies, 0.50))
	res.LatencyP99Ms = ms(percentile(latencies, 0.99))
	res.DurationSec = o.duration.Seconds()
	return res, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchIdle(ctx context.Context, o benchOptions) (benchResult, error) {
	c, err := openBench(ctx, o)
	if err != nil {
		return benchResult{}, err
	}
	defer cleanupBench(c)
	res := benchResult{Backend: c.Backend(), Mode: "idle", Workers: o.workers}
	switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[noopArgs]) error { return nil })
	if err := c.Start(ctx); err != nil {
		return res, err
	}
	// Let start-up settle (first fetch, leadership, maintenance pass) so the
	// figure is the engine's steady idle cost.
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	before, err := cpuTime()
	if err != nil {
		return res, err
	}
	start := time.Now()
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	after, err := cpuTime()
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.IdleCPUPercent = 100 * (after - before).Seconds() / elapsed.Seconds()
	res.DurationSec = elapsed.Seconds()
	return res, nil
}

// idleSettle is how long idle mode waits after start before measuring.
const idleSettle = 2 * time.Second

// cpuTime is the user+system CPU this process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// writeAllocProfile writes what the process allocated since it started
// (sampled, as Go's heap profile is), for --memprofile. The benchmark ends
// anyway, so a failure is only reported.
func writeAllocProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchyard bench: write allocation profile: %v\n", err)
	}
}
