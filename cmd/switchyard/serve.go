package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/kinds"
	"github.com/switchyard-dev/switchyard/internal/server"
)

// serveSettings are serve's settings. Each is a flag, an environment
// variable SWITCHYARD_<FLAG> and a key <flag_with_underscores> of the YAML
// config file; precedence flag > env > file > default.
type serveSettings struct {
	db              string
	addr            string
	noMigrate       bool
	durability      string
	keyFile         string
	concurrency     int
	leaseDuration   time.Duration
	shutdownTimeout time.Duration
	maxBodyBytes    int64
	metricsAuth     bool
	accessLog       bool
	logFormat       string
	logLevel        string
	nodeID          string
	corsOrigins     string
	trustedProxies  string
	rateLimit       float64
	rateBurst       int
	ipRateLimit     float64
	ipRateBurst     int
	auditRetention  time.Duration
	eventRetention  time.Duration
	allowPrivate    bool

	liveConnsPerIP   int
	liveConnsPerCred int
	liveMessageBytes int64
	liveMaxTopics    int
	liveKeepAlive    time.Duration
	liveIdleTimeout  time.Duration
	liveBuffer       int
	liveCoalesce     time.Duration

	adminKey string // env SWITCHYARD_ADMIN_KEY or the file's admin_key only: never a flag (ps shows flags)
}

const serveSynopsis = `Runs the Switchyard server: the HTTP API on --addr and workers for every
queue. With no flags it creates switchyard.db in the working directory and
serves on :8080.

On first start with an empty store it creates an admin API key, prints it
once and writes it to --key-file (mode 0600) so that the CLI on this machine
finds it. SWITCHYARD_ADMIN_KEY (at least 24 characters) sets the admin key
instead, for automation.

Settings come from flags, SWITCHYARD_<FLAG> environment variables and an
optional YAML file (--config) whose keys are the flag names with
underscores (lease_duration: 30s); precedence flag > env > file > default.`

func serveFlags(fs *flag.FlagSet, s *serveSettings) {
	fs.String("config", "", "YAML config file; keys are the flag names with underscores")
	fs.StringVar(&s.db, "db", switchyard.DefaultDatabase, "database: sqlite:PATH or a postgres:// URL")
	fs.StringVar(&s.addr, "addr", ":8080", "HTTP listen address")
	fs.BoolVar(&s.noMigrate, "no-migrate", false, "do not apply migrations at start")
	fs.StringVar(&s.durability, "durability", switchyard.DurabilityFull, "full (survives power loss) or relaxed (SQLite: survives a process crash)")
	fs.StringVar(&s.keyFile, "key-file", "", "where the first-start admin key is written (default: switchyard.key beside the SQLite file, or in the working directory on PostgreSQL)")
	fs.IntVar(&s.concurrency, "concurrency", 100, "jobs of each queue run at once on this node, unless the queue's own setting (PATCH /v1/queues/{name}) says otherwise")
	fs.DurationVar(&s.leaseDuration, "lease-duration", 30*time.Second, "how long a running job's lease lasts unrenewed; a job whose worker died runs again after it")
	fs.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long running jobs may finish before they are released to run again")
	fs.Int64Var(&s.maxBodyBytes, "max-body-bytes", 1<<20, "request body limit in bytes; larger bodies answer 413 (POST /v1/jobs/batch allows 64 MiB)")
	fs.BoolVar(&s.metricsAuth, "metrics-auth", false, "require an API key on /metrics")
	fs.BoolVar(&s.accessLog, "access-log", true, "log one line per HTTP request")
	fs.StringVar(&s.logFormat, "log-format", "json", "json or text")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&s.nodeID, "node-id", "", "this node's name in leases and logs (default hostname-pid-random)")
	fs.StringVar(&s.corsOrigins, "cors-origins", "", "comma-separated browser origins (https://app.example) allowed to call the API; * for any")
	fs.StringVar(&s.trustedProxies, "trusted-proxies", "", "comma-separated proxy addresses or CIDRs whose X-Forwarded-For names the client")
	fs.Float64Var(&s.rateLimit, "rate-limit", 1000, "requests per second allowed to each API key and user, unless their tenant sets its own; 0 for no limit")
	fs.IntVar(&s.rateBurst, "rate-burst", 2000, "requests an API key or user may send at once (the token bucket's size)")
	fs.Float64Var(&s.ipRateLimit, "ip-rate-limit", 5, "requests per second allowed to each client IP on the unauthenticated login and refresh routes; 0 for no limit")
	fs.IntVar(&s.ipRateBurst, "ip-rate-burst", 20, "requests a client IP may send at once to the login and refresh routes")
	fs.DurationVar(&s.auditRetention, "audit-retention", 400*24*time.Hour, "how long audit log entries are kept")
	fs.DurationVar(&s.eventRetention, "event-retention", 30*24*time.Hour, "how long received events, and the log of their deliveries, are kept")
	fs.BoolVar(&s.allowPrivate, "allow-private", false, "let webhook deliveries and http jobs reach loopback, private and link-local addresses (development and tests only)")
	fs.IntVar(&s.liveConnsPerIP, "live-conns-per-ip", 1000, "open WebSocket and SSE connections allowed to one client IP on this node (429 beyond); 0 for no limit")
	fs.IntVar(&s.liveConnsPerCred, "live-conns-per-cred", 1000, "open WebSocket and SSE connections allowed to one API key, user or subscription-token subject on this node (429 beyond); 0 for no limit")
	fs.Int64Var(&s.liveMessageBytes, "live-message-bytes", 65536, "largest WebSocket message a client may send; a larger one closes its connection (1009)")
	fs.IntVar(&s.liveMaxTopics, "live-max-topics", 100, "topics one WebSocket or SSE connection may read at once")
	fs.DurationVar(&s.liveKeepAlive, "live-keepalive", 30*time.Second, "how often idle WebSocket connections are pinged and SSE streams get a keep-alive comment")
	fs.DurationVar(&s.liveIdleTimeout, "live-idle-timeout", 90*time.Second, "close a WebSocket connection from which nothing, not even a pong, came for this long (4002); 0 for never")
	fs.IntVar(&s.liveBuffer, "live-buffer", 64, "messages that may wait for one connection before it is dropped as a slow consumer (4000)")
	fs.DurationVar(&s.liveCoalesce, "live-coalesce", 20*time.Millisecond, "the longest a busy connection's messages wait to go out together (the window adapts to load; a quiet connection writes at once); 0 for every message at once")
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s serveSettings
	fs := newFlagSet("serve [flags]", serveSynopsis, stderr)
	serveFlags(fs, &s)
	fs.Usage = func() { printSettings(fs.Output(), fs) }
	fileOnly, err := parseLayered(fs, args, "admin_key")
	if err != nil {
		return err
	}
	s.adminKey = os.Getenv("SWITCHYARD_ADMIN_KEY")
	if s.adminKey == "" {
		s.adminKey = fileOnly["admin_key"]
	}
	logger, err := newLogger(stderr, s.logFormat, s.logLevel)
	if err != nil {
		return err
	}
	tuneGC()
	return serve(ctx, s, logger, stdout)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log-format %q: want json or text", format)
}

// check validates the settings that Open and the listener do not.
func (s *serveSettings) check() error {
	var errs []error
	if s.concurrency < 1 || s.concurrency > switchyard.MaxQueueConcurrency {
		errs = append(errs, fmt.Errorf("concurrency must be between 1 and %d, got %d", switchyard.MaxQueueConcurrency, s.concurrency))
	}
	if s.leaseDuration < time.Second {
		errs = append(errs, fmt.Errorf("lease-duration must be at least 1s, got %s", s.leaseDuration))
	}
	if s.shutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown-timeout must not be negative, got %s", s.shutdownTimeout))
	}
	if s.maxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max-body-bytes must be at least 1024, got %d", s.maxBodyBytes))
	}
	for _, l := range []struct {
		name  string
		rate  float64
		burst int
	}{{"rate", s.rateLimit, s.rateBurst}, {"ip-rate", s.ipRateLimit, s.ipRateBurst}} {
		if l.rate < 0 || math.IsNaN(l.rate) || math.IsInf(l.rate, 0) {
			errs = append(errs, fmt.Errorf("%s-limit must be a number of requests per second, 0 for none; got %v", l.name, l.rate))
		}
		if l.rate > 0 && l.burst < 1 {
			errs = append(errs, fmt.Errorf("%s-burst must be at least 1, got %d", l.name, l.burst))
		}
	}
	if s.liveConnsPerIP < 0 || s.liveConnsPerCred < 0 {
		errs = append(errs, errors.New("live-conns-per-ip and live-conns-per-cred must not be negative (0 for no limit)"))
	}
	if s.liveMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("live-message-bytes must be at least 1024, got %d", s.liveMessageBytes))
	}
	if s.liveMaxTopics < 1 {
		errs = append(errs, fmt.Errorf("live-max-topics must be at least 1, got %d", s.liveMaxTopics))
	}
	if s.liveKeepAlive < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("live-keepalive must be at least 100ms, got %s", s.liveKeepAlive))
	}
	if s.liveIdleTimeout != 0 && s.liveIdleTimeout <= s.liveKeepAlive {
		errs = append(errs, fmt.Errorf("live-idle-timeout must be longer than live-keepalive (%s), or 0 for none; got %s", s.liveKeepAlive, s.liveIdleTimeout))
	}
	if s.liveCoalesce < 0 || s.liveCoalesce > time.Second {
		errs = append(errs, fmt.Errorf("live-coalesce must be between 0 and 1s, got %s", s.liveCoalesce))
	}
	if s.liveBuffer < 1 {
		errs = append(errs, fmt.Errorf("live-buffer must be at least 1, got %d", s.liveBuffer))
	}
	if s.eventRetention < 24*time.Hour {
		// Webhook deliveries are deduplicated on the events kept: at least
		// the longest signature tolerance a source may set.
		errs = append(errs, fmt.Errorf("event-retention must be at least 24h, got %s", s.eventRetention))
	}
	if s.auditRetention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("audit-retention must be at least 24h, got %s", s.auditRetention))
	}
	backend, err := switchyard.BackendOf(s.db)
	if err != nil {
		errs = append(errs, err)
	} else if backend == "postgres" {
		if err := pgURLCheck(s.db); err != nil {
			errs = append(errs, fmt.Errorf("db: %w", err))
		}
	}
	if _, err := s.origins(); err != nil {
		errs = append(errs, err)
	}
	if _, err := s.proxies(); err != nil {
		errs = append(errs, err)
	}
	if s.adminKey != "" && len(s.adminKey) < 24 {
		errs = append(errs, errors.New("admin key (SWITCHYARD_ADMIN_KEY or the config file's admin_key) must be at least 24 characters"))
	}
	return errors.Join(errs...)
}

// limitSetting turns a rate flag into the server's setting, where 0 means
// the default and a negative rate means none.
func limitSetting(rate float64, burst int) switchyard.RateLimit {
	if rate == 0 {
		return switchyard.RateLimit{RequestsPerSecond: -1}
	}
	return switchyard.RateLimit{RequestsPerSecond: rate, Burst: burst}
}

// live turns the live-update flags into the server's settings, where 0
// means the default and a negative value none.
func (s *serveSettings) live() server.RealtimeConfig {
	orNone := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	idle := s.liveIdleTimeout
	if idle == 0 {
		idle = -1
	}
	coalesce := s.liveCoalesce
	if coalesce == 0 {
		coalesce = -1
	}
	return server.RealtimeConfig{
		MaxConnectionsPerIP:         orNone(s.liveConnsPerIP),
		MaxConnectionsPerCredential: orNone(s.liveConnsPerCred),
		MaxMessageBytes:             s.liveMessageBytes,
		MaxSubscriptions:            s.liveMaxTopics,
		KeepAlive:                   s.liveKeepAlive,
		IdleTimeout:                 idle,
		Coalesce:                    coalesce,
	}
}

// origins parses --cors-origins: "*" or scheme://host[:port] entries.
func (s *serveSettings) origins() ([]string, error) {
	var out []string
	for _, o := range strings.Split(s.corsOrigins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
				return nil, fmt.Errorf("cors-origins: %q is not an origin such as https://app.example", o)
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// proxies parses --trusted-proxies: addresses or CIDR prefixes.
func (s *serveSettings) proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range strings.Split(s.trustedProxies, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if a, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies: %q is neither an IP address nor a CIDR prefix", p)
		}
		out = append(out, prefix.Masked())
	}
	return out, nil
}

// pgURLCheck rejects a PostgreSQL URL that cannot be parsed, before any
// connection is tried.
func pgURLCheck(db string) error {
	u, err := url.Parse(db)
	if err != nil {
		return fmt.Errorf("malformed PostgreSQL URL: %w", err)
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return errors.New("PostgreSQL URL has no host, as in postgres://user@127.0.0.1:5432/db")
	}
	return nil
}

// keyFilePath is where the first-start key goes by default: beside the
// SQLite file, or in the working directory.
func (s *serveSettings) keyFilePath() string {
	if s.keyFile != "" {
		return s.keyFile
	}
	if path, ok := strings.CutPrefix(s.db, "sqlite:"); ok {
		return filepath.Join(filepath.Dir(path), "switchyard.key")
	}
	return "switchyard.key"
}

// serve runs the server until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, s serveSettings, log *slog.Logger, stdout io.Writer) error {
	if err := s.check(); err != nil {
		return err
	}
	// Listen first: a port in use fails before anything is opened.
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	defer ln.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c, err := switchyard.Open(ctx, switchyard.Config{
		Database:           s.db,
		Durability:         s.durability,
		NoMigrate:          s.noMigrate,
		NodeID:             s.nodeID,
		AllQueues:          true,
		AllTenants:         true,
		DefaultConcurrency: s.concurrency,
		AuditRetention:     s.auditRetention,
		Retention:          switchyard.Retention{Events: s.eventRetention},
		Deliveries:         switchyard.DeliveryConfig{AllowPrivateTargets: s.allowPrivate},
		LeaseDuration:      s.leaseDuration,
		ShutdownTimeout:    s.shutdownTimeout,
		Topics:             switchyard.TopicsConfig{SubscriberBuffer: s.liveBuffer},
		Logger:             log,
		Registerer:         reg,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Ready(ctx); err != nil {
		return err
	}
	if err := kinds.Register(c, kinds.Config{AllowPrivateTargets: s.allowPrivate}); err != nil {
		return err
	}
	if err := ensureAdminKey(ctx, c, s, log, stdout); err != nil {
		return err
	}
	origins, _ := s.origins() // checked above
	proxies, _ := s.proxies()
	srv, err := server.New(server.Config{
		Client: c, Logger: log, Gatherer: reg, Registerer: reg,
		MaxBodyBytes: s.maxBodyBytes, MetricsAuth: s.metricsAuth, NoAccessLog: !s.accessLog,
		AllowedOrigins: origins, TrustedProxies: proxies,
		RateLimit:   limitSetting(s.rateLimit, s.rateBurst),
		IPRateLimit: limitSetting(s.ipRateLimit, s.ipRateBurst),
		Realtime:    s.live(),
	})
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Bounds a client that trickles a body; a 64 MiB batch needs well
		// under this on any link an API client uses.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for no WebSocket (hijacked) and for every SSE stream:
	// close them at once, each with a reason, so clients reconnect elsewhere.
	hs.RegisterOnShutdown(srv.CloseRealtime)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("switchyard serving", "addr", ln.Addr().String(), "backend", c.Backend(), "version", version)

	select {
	case err := <-served:
		// The listener failed under us; stop the workers as on a signal.
		stopCtx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		defer cancel()
		return errors.Join(fmt.Errorf("serve: %w", err), c.Stop(stopCtx))
	case <-ctx.Done():
	}
	log.Info("switchyard shutting down", "timeout", s.shutdownTimeout.String())
	stopCtx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	// Stop accepting and let in-flight requests finish; then let running
	// jobs finish until the deadline, releasing the rest to run again.
	// Connections still open at the deadline are closed, as jobs are
	// released: that is what the deadline is for, not a failed shutdown.
	// (Shutdown alone would leave them open with the database closed.)
	if err := hs.Shutdown(stopCtx); err != nil {
		log.Warn("switchyard closed connections still open at the shutdown deadline", "err", err)
		hs.Close()
	}
	stopErr := c.Stop(stopCtx)
	if stopErr == nil {
		log.Info("switchyard stopped")
	}
	return stopErr
}

// ensureAdminKey makes sure the API can be used: the key from the
// environment, or on an empty store a new key printed once and saved.
func ensureAdminKey(ctx context.Context, c *switchyard.Client, s serveSettings, log *slog.Logger, stdout io.Writer) error {
	if s.adminKey != "" {
		created, err := c.EnsureAdminKey(ctx, s.adminKey)
		if err != nil {
			return err
		}
		if created {
			log.Info("stored the configured admin key")
		}
		return nil
	}
	secret, created, err := c.CreateFirstAdminKey(ctx)
	if err != nil || !created {
		return err
	}
	path := s.keyFilePath()
	werr := writeKeyFile(path, secret)
	fmt.Fprintf(stdout, "\nCreated the admin API key. It is shown only this once:\n\n    %s\n\n", secret)
	if werr != nil {
		log.Error("could not save the admin key; copy it from above", "path", path, "err", werr)
	} else {
		fmt.Fprintf(stdout, "Saved to %s (readable only by you); the switchyard CLI in this directory uses it.\n\n", path)
	}
	return nil
}

// writeKeyFile writes the key readable by its owner only, replacing any
// older file atomically.
func writeKeyFile(path, secret string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".switchyard.key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// printSettings prints serve's help: every setting as a table of its flag,
// environment variable, config-file key and default, then what it does.
func printSettings(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: switchyard serve [flags]\n\n%s\n\nSettings (flag, environment variable, config-file key, default):\n\n", serveSynopsis)
	// The usage lines go under their rows after the table is aligned: in
	// the tabwriter they would widen the first column to the longest one.
	var table strings.Builder
	var usages []string
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FLAG\tENVIRONMENT\tFILE KEY\tDEFAULT")
	row := func(flagName, env, key, def, usage string) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", flagName, env, key, def)
		usages = append(usages, usage)
	}
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = "-"
		}
		key := strings.ReplaceAll(f.Name, "-", "_")
		if f.Name == "config" {
			key = "-"
		}
		row("--"+f.Name, envName(f.Name), key, def, f.Usage)
	})
	row("-", "SWITCHYARD_ADMIN_KEY", "admin_key", "-", "the admin API key, at least 24 characters (never a flag: flags show in ps)")
	row("-", "GOGC", "-", strconv.Itoa(serverGCPercent), "Go's garbage-collector target; serve sets it unless GOGC is given")
	tw.Flush()
	lines := strings.Split(table.String(), "\n")
	fmt.Fprintln(w, lines[0])
	for i, usage := range usages {
		fmt.Fprintf(w, "%s\n      %s\n", lines[i+1], usage)
	}
}

// parseLayered parses flags, then fills each flag not given from its
// SWITCHYARD_<FLAG> variable, then from the YAML file named by --config
// (or SWITCHYARD_CONFIG). The file's keys are the flag names with
// underscores, plus fileOnly keys (settings that are never flags, such as
// secrets), whose string values it returns. Unknown keys are an error.
func parseLayered(fs *flag.FlagSet, args []string, fileOnly ...string) (map[string]string, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := os.LookupEnv(envName(f.Name)); ok {
			set[f.Name] = true
		}
	})
	extra := map[string]string{}
	path := fs.Lookup("config").Value.String()
	if path == "" {
		return extra, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	known := slices.Clone(fileOnly)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			known = append(known, strings.ReplaceAll(f.Name, "-", "_"))
		}
	})
	slices.Sort(known)
	var errs []error
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		v := file[key]
		switch v.(type) {
		case map[string]any, []any, nil:
			errs = append(errs, fmt.Errorf("config file %s: %s: want a single value", path, key))
			continue
		}
		if slices.Contains(fileOnly, key) {
			extra[key] = fmt.Sprint(v)
			continue
		}
		name := strings.ReplaceAll(key, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "config" || strings.Contains(key, "-") {
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q (known: %s)", path, key, strings.Join(known, ", ")))
			continue
		}
		if set[name] {
			continue // the flag or the environment wins
		}
		if err := f.Value.Set(fmt.Sprint(v)); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: %s: %q: %w", path, key, fmt.Sprint(v), err))
		}
	}
	return extra, errors.Join(errs...)
}
