// Package postgres is the PostgreSQL driver of Switchyard's store: it
// implements store.Store on github.com/jackc/pgx/v5 so that any number of
// nodes can share one plain PostgreSQL (13 or later) database.
//
// Design, in the order it matters for throughput and correctness:
//
//   - Every table lives in the schema switchyard, created by the embedded,
//     numbered migrations (migrations/*.sql). Migrate serialises concurrent
//     migrators across nodes with pg_advisory_xact_lock and records each
//     applied file in switchyard.schema_migrations.
//   - Everything is batched and almost everything is one statement, so one
//     round trip and one commit (one WAL flush) carry many jobs: Insert is a
//     multi-row INSERT … SELECT FROM unnest(array parameters); Lease is one
//     UPDATE fed by a CTE that picks ids from the fetch index with
//     FOR UPDATE SKIP LOCKED; Complete is one UPDATE … FROM unnest(…) for
//     the succeeded hot path plus one for every other outcome, sent together
//     in a pipeline when both are needed; Heartbeat is one UPDATE for all
//     leases. Statements are prepared once per connection by pgx's statement
//     cache and use the binary protocol.
//   - Fencing: a lease is (job id, attempt, random non-zero token). Every
//     statement that acts on a lease matches all three and state = 'running',
//     so a stale worker changes nothing.
//   - Time: every time decision (run_at from a delay, lease expiry,
//     promotion, rescue, leadership expiry, retention) uses the database's
//     now(), never the Go process clock, so nodes agree.
//   - Notifications: a writing statement calls pg_notify itself (one
//     NotifyInsert per distinct (tenant, queue) that got available jobs, one
//     NotifyScheduled per statement that scheduled any, never one per job),
//     so the wake-ups are part of the writing transaction and fire exactly
//     when it commits (InsertTx relies on this: the caller's rollback
//     discards them). One listener goroutine per Store holds its own
//     connection in LISTEN, decodes payloads and calls the function given to
//     Listen; it reconnects with capped exponential backoff and then reports
//     store.NotifyResync, because notifications sent while it was away are
//     lost. Writes made through this Store deliver their notifications
//     locally right after commit, which saves the trip through the server;
//     their payloads carry the Store's random origin id so that its listener
//     drops the copy, and each notification reaches the function once
//     (InsertTx's, which are not delivered locally, carry none).
//   - The real-time hub's messages (store.Hub) travel on the same channel,
//     in their own wire form (see hub.go), and are never delivered locally
//     first: every Store, the sender's included, hears them from its
//     listener, so all nodes see them in one order, the commit order of
//     their NOTIFYs. Payloads too large for a NOTIFY go through the
//     UNLOGGED table switchyard.hub_payloads and travel as their row id.
//   - Leadership is a row in switchyard.leaders taken with one upsert that
//     only succeeds when the row is absent, expired or already ours.
//   - Housekeeping: every lease leaves a dead entry in the fetch index that
//     later lease scans walk past until VACUUM removes it. Autovacuum visits
//     a database at most once a minute by default, far too rarely for a queue that churns
//     tens of thousands of rows a second, so the Store itself runs VACUUM on
//     the jobs table in the background every Config.VacuumEvery leased jobs
//     (one node at a time, under an advisory lock). Without it, lease cost
//     grew by half over a million jobs in our measurements; with it, it
//     stays flat.
//
// Durability is PostgreSQL's default: synchronous_commit stays on and no
// table is UNLOGGED, except the hub's payloads, which last minutes and are
// worth no more than the notifications that PostgreSQL forgets in a crash
// anyway.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Config configures Open.
type Config struct {
	// URL is the postgres:// connection URL. Required unless Pool is set.
	URL string
	// Pool, if set, is used instead of a pool made from URL; Close does not
	// close it. The listener opens one extra connection with Pool's
	// connection settings. Default nil.
	Pool *pgxpool.Pool
	// MaxConns is the size of the pool Open creates from URL. Default: the
	// URL's pool_max_conns if it has one, else max(8, 4*GOMAXPROCS).
	MaxConns int32
	// NoMigrate skips applying migrations at Open. Default false.
	NoMigrate bool
	// Logger receives the listener's connection problems. Default
	// slog.Default().
	Logger *slog.Logger
	// Channel is the LISTEN/NOTIFY channel shared by every node of one
	// installation. Default "switchyard".
	Channel string
	// VacuumEvery is how many jobs this Store leases between the VACUUMs of
	// the jobs table it runs in the background; negative disables them.
	// Every lease leaves a dead entry in the fetch index that each later
	// lease scan walks past until a VACUUM removes it, and autovacuum looks
	// at a table at most once a minute (if it is enabled at all), which at
	// tens of thousands of jobs a second lets lease cost grow severalfold.
	// Only one node vacuums at a time. Default 100000.
	VacuumEvery int
}

// Store is the PostgreSQL implementation of store.Store. Create it with Open.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	channel  string
	log      *slog.Logger
	// origin identifies this Store in the payloads it sends, so that its
	// listener can drop the copies of notifications it already delivered
	// locally: each notification reaches fn once.
	origin string

	fn atomic.Pointer[func(store.Notification)]

	listener  *listener
	publisher *publisher

	sessionsMu sync.Mutex
	sessions   map[string]*session // leadership sessions by name

	// Background vacuum, see Config.VacuumEvery.
	vacuumEvery int64
	leased      atomic.Int64 // jobs leased since the last vacuum started
	vacuuming   atomic.Bool
	bgCtx       context.Context // cancelled by Close
	bgCancel    context.CancelFunc
	bg          sync.WaitGroup
	onVacuum    func(error) // test hook: called after each background vacuum

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to PostgreSQL, applies pending migrations unless
// cfg.NoMigrate, and starts the notification listener. The listener is
// listening when Open returns, so no notification committed afterwards is
// missed.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Channel == "" {
		cfg.Channel = "switchyard"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.VacuumEvery == 0:
		cfg.VacuumEvery = 100000
	case cfg.VacuumEvery < 0:
		cfg.VacuumEvery = 0
	}
	s := &Store{channel: cfg.Channel, log: cfg.Logger, origin: newOrigin(), vacuumEvery: int64(cfg.VacuumEvery)}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	if cfg.Pool != nil {
		s.pool = cfg.Pool
	} else {
		if cfg.URL == "" {
			return nil, errors.New("postgres: open: Config.URL or Config.Pool is required")
		}
		pc, err := pgxpool.ParseConfig(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("postgres: open: %w", err)
		}
		// pgxpool pings a connection idle for over a second before handing
		// it out: for an engine that wakes every few seconds that is an
		// extra round trip (and on a VM an extra wake-up) per query. A
		// connection that died is found by its query failing anyway, and
		// the pool then drops it, so ping only long-idle ones.
		pc.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
			return p.IdleDuration > 30*time.Second
		}
		switch {
		case cfg.MaxConns > 0:
			pc.MaxConns = cfg.MaxConns
		case !strings.Contains(cfg.URL, "pool_max_conns"):
			pc.MaxConns = max(8, 4*int32(runtime.GOMAXPROCS(0)))
		}
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("postgres: open: %w", err)
		}
		s.pool, s.ownsPool = pool, true
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if !cfg.NoMigrate {
		if err := s.Migrate(ctx); err != nil {
			s.closeAll()
			return nil, err
		}
	}
	l, err := startListener(ctx, s.pool.Config().ConnConfig, s.channel, s.origin, s.log, s.deliver)
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("postgres: open: listener: %w", err)
	}
	s.listener = l
	s.publisher = startPublisher(s)
	return s, nil
}

// Pool returns the connection pool, for callers that want to run their own
// transactions (see InsertTx).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Backend implements store.Store.
func (s *Store) Backend() string { return "postgres" }

// Listen implements store.Store. fn is called from the listener goroutine and,
// for writes made through this Store, from the writing goroutine right after
// commit; it must not block.
func (s *Store) Listen(fn func(store.Notification)) {
	s.fn.Store(&fn)
}

// deliver hands notifications to the registered function, if any.
func (s *Store) deliver(ns ...store.Notification) {
	fp := s.fn.Load()
	if fp == nil || *fp == nil {
		return
	}
	for _, n := range ns {
		(*fp)(n)
	}
}

// Now implements store.Store.
func (s *Store) Now(ctx context.Context) (t time.Time, err error) {
	if err := s.pool.QueryRow(ctx, sqlNow).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("postgres: now: %w", err)
	}
	return t.UTC(), nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close stops the listener and closes the pool if Open created it. It is
// idempotent and waits for every goroutine the Store started.
func (s *Store) Close() error {
	s.closeOnce.Do(s.closeAll)
	return nil
}

func (s *Store) closeAll() {
	s.stopSessions()
	if s.publisher != nil {
		s.publisher.stop()
	}
	if s.listener != nil {
		s.listener.stop()
	}
	s.bgCancel()
	s.bg.Wait()
	s.closePool()
}

// newOrigin returns a random id for a Store's notifications.
func newOrigin() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Store) closePool() {
	if s.ownsPool {
		s.pool.Close()
	}
}

// querier is what the statements run on: the pool, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
