// Package switchyard is the Go API of Switchyard, an event-driven job and
// workflow platform: durable jobs on an embedded SQLite file or on
// PostgreSQL, run by typed in-process handlers.
//
// A client opens a database, registers handlers with Handle, starts, and
// enqueues:
//
//	client, err := switchyard.Open(ctx, switchyard.Config{Database: "sqlite:switchyard.db"})
//	switchyard.Handle(client, func(ctx context.Context, job *switchyard.Job[ResizeArgs]) error { … })
//	err = client.Start(ctx)
//	res, err := client.Enqueue(ctx, ResizeArgs{Path: "a.png"}, nil)
//
// Every acknowledged enqueue is durable before Enqueue returns. Jobs run at
// least once; every attempt's outcome is fenced by its lease token so a stale
// worker can never overwrite a newer attempt. See DESIGN.md for the promise.
package switchyard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/audit"
	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/ratelimit"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
)

// Durability levels.
const (
	// DurabilityFull survives power loss: SQLite synchronous=FULL,
	// PostgreSQL synchronous_commit=on.
	DurabilityFull = "full"
	// DurabilityRelaxed survives a process crash but may lose the last
	// commits on power loss (SQLite synchronous=NORMAL).
	DurabilityRelaxed = "relaxed"
)

// DefaultDatabase is where Open puts its data when Config.Database is empty.
const DefaultDatabase = "sqlite:switchyard.db"

// QueueConfig configures a queue this client works.
type QueueConfig struct {
	// Concurrency is how many of the queue's jobs run at once in this
	// process. Default 100.
	Concurrency int
}

// Config configures a Client. The zero value is usable: an SQLite file
// switchyard.db in the working directory, tenant default.
type Config struct {
	// Database is "sqlite:PATH" or a postgres:// (postgresql://) URL.
	// Default "sqlite:switchyard.db".
	Database string
	// PgxPool, if set, is used instead of Database (PostgreSQL), so jobs can
	// be enqueued inside the application's own transactions. Not closed by
	// Close.
	PgxPool *pgxpool.Pool
	// Durability is DurabilityFull or DurabilityRelaxed (SQLite only).
	// Default DurabilityFull.
	Durability string
	// NoMigrate skips applying migrations at Open. Default false.
	NoMigrate bool

	// TenantID scopes every job this client enqueues, reads and works.
	// Default "default".
	TenantID string
	// NodeID names this process in leases and leadership. Default
	// hostname-pid-random.
	NodeID string
	// Queues to work, by name. If nil, AllQueues is false and a handler is
	// registered, the client works queue "default".
	Queues map[string]QueueConfig
	// AllQueues works every queue of the tenant: those in Queues with their
	// settings, and any other (existing now or receiving jobs later) with
	// DefaultConcurrency. A server uses it. Default false.
	AllQueues bool
	// AllTenants works every queue of every tenant (implies AllQueues); a
	// server uses it. Default false.
	AllTenants bool
	// DefaultConcurrency is how many jobs of a queue run at once in this
	// process when neither Queues nor the queue's stored setting says.
	// Default 100.
	DefaultConcurrency int
	// ExternalKinds are kinds this client may enqueue without a handler of
	// its own (another process works them). Default none.
	ExternalKinds []string

	// LeaseDuration is how long a running job's lease lasts unrenewed; the
	// client heartbeats every third of it, and a job whose worker died runs
	// again after it expires. Default 30s.
	LeaseDuration time.Duration
	// FetchBatch caps jobs leased per fetch. Default 1000.
	FetchBatch int
	// PollInterval is the fallback poll covering lost notifications. While
	// polls find nothing it slows down, up to 8× (an idle process should
	// sleep), and returns to this interval as soon as there is work.
	// Default 1s on PostgreSQL; none on SQLite (one process loses none).
	PollInterval time.Duration
	// ShutdownTimeout bounds Stop's wait for running jobs when Stop's
	// context has no deadline. Default 30s.
	ShutdownTimeout time.Duration

	// MaxArgsBytes limits encoded job args. Default 1 MiB.
	MaxArgsBytes int
	// DefaultMaxAttempts applies when an enqueue sets none. Default 25.
	DefaultMaxAttempts int
	// Retry is the default retry policy. Default ExponentialBackoff with
	// base 1s and cap 1h (full jitter).
	Retry RetryPolicy

	// Retention of finished jobs; zero fields take the defaults
	// (succeeded 24h, cancelled 7 days, dead 7 days).
	Retention Retention
	// AuditRetention is how long audit entries are kept. Default 400
	// days.
	AuditRetention time.Duration

	// Deliveries configures outbound webhook deliveries. Zero fields take
	// the defaults.
	Deliveries DeliveryConfig

	// Topics configures the real-time hub: how much history each topic
	// keeps for resuming subscribers, and how far a subscriber may fall
	// behind. Zero fields take the defaults.
	Topics TopicsConfig
	// LeaderTTL is how long maintenance leadership lasts unrenewed; it is
	// renewed every third of it. On PostgreSQL a leader whose process dies
	// is replaced at once (its session connection closes); the TTL bounds
	// how long a hung leader keeps the lead. Default 24s.
	LeaderTTL time.Duration
	// NoMaintenance keeps this client from ever leading maintenance (rescue,
	// promotion, retention). Default false.
	NoMaintenance bool
	// WorkerTimeout is how long this client's node may go without a
	// heartbeat (it sends one every LeaderTTL/3 once started) before the
	// maintenance leader declares it offline and announces worker.offline.
	// The node registers it, so nodes configured differently are each
	// judged by their own (a leader gives every node at least its own).
	// Default 4 × LeaderTTL/3: three heartbeats missed in a row.
	WorkerTimeout time.Duration
	// EventBuffer is how many lifecycle events (job.started, …) may wait
	// for publishing; beyond it new ones are dropped, counted in
	// switchyard_events_dropped_total, rather than slow the jobs down.
	// Default 10000.
	EventBuffer int
	// EventRate caps the lifecycle events this client publishes per
	// second; beyond it they wait in the buffer, and once that is full
	// they are dropped. Every event costs every node's hub work, so
	// without a cap a busy engine would spend much of its CPU announcing
	// jobs. Negative: no cap. Default 5000 (about 1,700 jobs a second
	// with their enqueued, started and succeeded events).
	EventRate int
	// OnLeaderChange, if set, is called when this client gains or loses
	// maintenance leadership, for example to run singleton duties of the
	// application's own. It must not block.
	OnLeaderChange func(leader bool)

	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the client's Prometheus metrics. Default none.
	Registerer prometheus.Registerer
}

// TopicsConfig configures real-time topics.
type TopicsConfig struct {
	// HistorySize is how many messages each topic keeps for resuming
	// subscribers. Default 1000.
	HistorySize int
	// HistoryTTL is how long a topic keeps a message. Default 10m.
	HistoryTTL time.Duration
	// SubscriberBuffer is how many messages may wait for a subscriber
	// before it is closed as a slow consumer. Default 64.
	SubscriberBuffer int
	// MaxMessageBytes limits a message's data. Default 64 KiB.
	MaxMessageBytes int
}

// Retention sets how long finished jobs and received events are kept.
type Retention struct {
	Succeeded time.Duration // default 24h
	Cancelled time.Duration // default 7 days
	Dead      time.Duration // default 7 days
	// Events is how long received events are kept. Default 30 days.
	Events time.Duration
}

// RetryPolicy decides how long a failed attempt waits before the next.
type RetryPolicy = queue.RetryPolicy

// ExponentialBackoff is the default retry policy: the delay after attempt n
// is uniformly random in [0, min(Max, Base·2^(n-1))] (full jitter).
type ExponentialBackoff = queue.ExponentialBackoff

// Client enqueues, manages and (once started) works jobs.
type Client struct {
	cfg      Config
	store    store.Store
	registry *queue.Registry
	external map[string]bool
	metrics  *queue.Metrics
	log      *slog.Logger

	// shared is the state a client and its tenant views (ForTenant) have in
	// common: caches, the runner, the lifecycle.
	*shared
}

type shared struct {
	keys      keyCache
	access    accessCaches
	rules     authCache[string, []*compiledRule] // by tenant
	sources   authCache[string, *Source]         // by id, any tenant; nil for an unknown id
	endpoints authCache[string, []*Endpoint]     // by tenant
	delivery  *deliverer
	signing   signingKeyState
	audit     *audit.Writer
	limiter   *ratelimit.Limiter
	hub       *hub.Hub
	events    *eventPublisher

	runner  atomic.Pointer[queue.Runner]
	mu      sync.Mutex
	started bool
	closed  bool
}

// ForTenant returns a view of c that enqueues, reads and manages the jobs,
// queues and keys of another tenant. The view shares c's database,
// handlers, caches and lifecycle: starting, stopping or closing either
// does so for both. A server uses one view per request.
func (c *Client) ForTenant(tenantID string) *Client {
	if tenantID == c.cfg.TenantID {
		return c
	}
	v := *c
	v.cfg.TenantID = tenantID
	return &v
}

// TenantID is the tenant this client acts in.
func (c *Client) TenantID() string { return c.cfg.TenantID }

// Open opens (and unless NoMigrate, migrates) the database and returns a
// client that enqueues and manages jobs. Call Start to also work them.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		store:    st,
		registry: queue.NewRegistry(),
		external: map[string]bool{},
		log:      cfg.Logger,
		shared:   &shared{},
	}
	for _, k := range cfg.ExternalKinds {
		c.external[k] = true
	}
	c.delivery = newDeliverer(c)
	c.registry.Add(c.delivery.kind())
	c.audit, err = audit.New(audit.Config{Store: st, Retention: cfg.AuditRetention, Logger: cfg.Logger})
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	// On PostgreSQL several nodes share each rate-limit bucket through the
	// store; on SQLite one process owns the database and its buckets.
	limits := ratelimit.Config{Logger: cfg.Logger, Registerer: cfg.Registerer}
	if st.Backend() == "postgres" {
		limits.Store = st
	}
	if c.limiter, err = ratelimit.New(limits); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	c.hub, err = hub.New(hub.Config{
		Store: st, HistorySize: cfg.Topics.HistorySize, HistoryTTL: cfg.Topics.HistoryTTL,
		SubscriberBuffer: cfg.Topics.SubscriberBuffer, MaxMessageBytes: cfg.Topics.MaxMessageBytes,
		Logger: cfg.Logger, Registerer: cfg.Registerer,
	})
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	if c.events, err = newEventPublisher(c.hub, cfg.EventBuffer, cfg.EventRate, cfg.Logger, cfg.Registerer); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	if cfg.Registerer != nil {
		c.metrics = queue.NewMetrics(cfg.Registerer)
		c.store = store.Instrument(st, c.metrics.ObserveStore)
	}
	st.Listen(func(n store.Notification) {
		switch n.Kind {
		case store.NotifyHub:
			c.hub.Notify(n)
			return
		case store.NotifyKeys:
			// A credential or role changed somewhere.
			c.keys.clear()
			c.access.clear()
		case store.NotifyDefinitions:
			c.clearDefinitions()
		case store.NotifyResync:
			// Any news may be lost: of credentials, of rules, of hub
			// messages.
			c.keys.clear()
			c.access.clear()
			c.clearDefinitions()
			c.hub.Notify(n)
		}
		if r := c.runner.Load(); r != nil {
			r.Notify(n)
		}
	})
	if err := c.audit.Start(ctx); err != nil {
		return nil, errors.Join(err, st.Close())
	}
	if err := c.hub.Start(ctx); err != nil {
		c.audit.Stop()
		return nil, errors.Join(err, st.Close())
	}
	if cfg.PgxPool == nil && st.Backend() == "sqlite" {
		file := strings.TrimPrefix(cfg.Database, "sqlite:")
		if abs, err := filepath.Abs(file); err == nil {
			file = abs
		}
		c.events.sqliteFile = file
		addLocalHub(file, c.hub)
	}
	c.events.router = newSystemRouter(c)
	c.events.start()
	return c, nil
}

func (cfg *Config) setDefaults() error {
	if cfg.Database == "" && cfg.PgxPool == nil {
		cfg.Database = DefaultDatabase
	}
	switch cfg.Durability {
	case "":
		cfg.Durability = DurabilityFull
	case DurabilityFull, DurabilityRelaxed:
	default:
		return fmt.Errorf("switchyard: config: durability must be %q or %q, got %q", DurabilityFull, DurabilityRelaxed, cfg.Durability)
	}
	if cfg.Topics.MaxMessageBytes == 0 {
		cfg.Topics.MaxMessageBytes = 64 << 10 // the hub's default, known here for SendEvents
	}
	cfg.Deliveries.setDefaults()
	if cfg.TenantID == "" {
		cfg.TenantID = "default"
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		cfg.NodeID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if cfg.MaxArgsBytes <= 0 {
		cfg.MaxArgsBytes = 1 << 20
	}
	if cfg.DefaultMaxAttempts <= 0 {
		cfg.DefaultMaxAttempts = 25
	}
	if cfg.DefaultConcurrency <= 0 {
		cfg.DefaultConcurrency = 100
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = defaultEventBuffer
	}
	if cfg.EventRate == 0 {
		cfg.EventRate = defaultEventRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for name, q := range cfg.Queues {
		if err := validName("queue", name); err != nil {
			return fmt.Errorf("switchyard: config: %w", err)
		}
		if q.Concurrency < 0 {
			return fmt.Errorf("switchyard: config: queue %q: concurrency must not be negative", name)
		}
	}
	return nil
}

// BackendOf names the backend a database URL selects: "sqlite" or
// "postgres"; an error for anything else.
func BackendOf(database string) (string, error) {
	switch {
	case strings.HasPrefix(database, "sqlite:"):
		if strings.TrimPrefix(database, "sqlite:") == "" {
			return "", errors.New(`switchyard: database "sqlite:" needs a file path, as in sqlite:switchyard.db`)
		}
		return "sqlite", nil
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		return "postgres", nil
	default:
		return "", fmt.Errorf("switchyard: database %q: want sqlite:PATH or a postgres:// URL", database)
	}
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.PgxPool != nil {
		return postgres.Open(ctx, postgres.Config{Pool: cfg.PgxPool, NoMigrate: cfg.NoMigrate, Logger: cfg.Logger})
	}
	backend, err := BackendOf(cfg.Database)
	if err != nil {
		return nil, err
	}
	if backend == "sqlite" {
		return sqlite.Open(ctx, sqlite.Config{
			Path:       strings.TrimPrefix(cfg.Database, "sqlite:"),
			Durability: cfg.Durability,
			NoMigrate:  cfg.NoMigrate,
			Logger:     cfg.Logger,
		})
	}
	return postgres.Open(ctx, postgres.Config{URL: cfg.Database, NoMigrate: cfg.NoMigrate, Logger: cfg.Logger})
}

// Backend names the database backend: "sqlite" or "postgres".
func (c *Client) Backend() string { return c.store.Backend() }

// Start starts working the configured queues (fetch loops, workers,
// heartbeats) and competing for maintenance leadership. Register handlers
// before Start.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("switchyard: start: client is closed")
	}
	if c.started {
		return errors.New("switchyard: start: already started")
	}
	queues := map[string]queue.QueueConfig{}
	for name, q := range c.cfg.Queues {
		queues[name] = queue.QueueConfig{Concurrency: q.Concurrency}
	}
	// The delivery kind is always registered; the application's own kinds
	// are the others.
	if c.cfg.Queues == nil && !c.cfg.AllQueues && c.registry.Len() > 1 {
		queues["default"] = queue.QueueConfig{Concurrency: c.cfg.DefaultConcurrency}
	}
	poll, leaderTTL := c.cfg.PollInterval, c.cfg.LeaderTTL
	if poll == 0 && c.store.Backend() == "postgres" {
		poll = time.Second
	}
	if leaderTTL == 0 {
		// Renewing leadership wakes the process, and on a VM each wake-up
		// from idle costs milliseconds of CPU, so renewals are rare: every
		// 8s, with the other idle work. On PostgreSQL a dead leader is
		// still replaced at once: its session connection closes and a
		// follower's session lock wait returns (see the postgres driver);
		// the TTL only bounds a hung leader. On SQLite one process normally
		// owns the file.
		leaderTTL = 24 * time.Second
	}
	r, err := queue.New(queue.Config{
		Store:     c.store,
		Registry:  c.registry,
		TenantID:  c.cfg.TenantID,
		NodeID:    c.cfg.NodeID,
		Queues:    queues,
		AllQueues: c.cfg.AllQueues,

		AllTenants:         c.cfg.AllTenants,
		DefaultConcurrency: c.cfg.DefaultConcurrency,
		LeaseDuration:      c.cfg.LeaseDuration,
		FetchBatch:         c.cfg.FetchBatch,
		PollInterval:       poll,
		Retry:              c.cfg.Retry,
		Maintenance: queue.MaintenanceConfig{
			Disabled:    c.cfg.NoMaintenance,
			LeaderTTL:   leaderTTL,
			NodeTimeout: c.cfg.WorkerTimeout,
			Retention: store.RetentionParams{
				Succeeded: c.cfg.Retention.Succeeded,
				Cancelled: c.cfg.Retention.Cancelled,
				Dead:      c.cfg.Retention.Dead,
			},
			EventRetention: c.cfg.Retention.Events,
		},
		Logger:         c.log,
		Metrics:        c.metrics,
		OnLeaderChange: c.cfg.OnLeaderChange,
		Events:         c.events,
	})
	if err != nil {
		return fmt.Errorf("switchyard: start: %w", err)
	}
	c.runner.Store(r)
	if err := r.Start(ctx); err != nil {
		c.runner.Store(nil)
		return fmt.Errorf("switchyard: start: %w", err)
	}
	c.started = true
	return nil
}

// Stop shuts down gracefully: it stops fetching, waits for running jobs
// until ctx ends (or ShutdownTimeout if ctx has no deadline), then cancels
// them and releases their jobs at once so they run again promptly. Stop does
// not close the database; Close does.
func (c *Client) Stop(ctx context.Context) error {
	r := c.runner.Load()
	if r == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.ShutdownTimeout)
		defer cancel()
	}
	return r.Stop(ctx)
}

// Close stops the client (as Stop with ShutdownTimeout) and closes the
// database. Idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.Stop(context.Background())
	c.events.stop()
	c.events.router.stop()
	if c.events.sqliteFile != "" {
		removeLocalHub(c.events.sqliteFile, c.hub)
	}
	c.hub.Stop()
	c.audit.Stop()
	return errors.Join(err, c.store.Close())
}

// IsLeader reports whether this client currently leads maintenance.
func (c *Client) IsLeader() bool {
	r := c.runner.Load()
	return r != nil && r.IsLeader()
}

// Migrate applies pending migrations to database (as Open does) and closes
// it again.
func Migrate(ctx context.Context, database string) error {
	cfg := Config{Database: database, NoMigrate: true}
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	return errors.Join(st.Migrate(ctx), st.Close())
}
