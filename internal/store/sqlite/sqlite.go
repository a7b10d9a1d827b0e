// Package sqlite is Switchyard's embedded store: store.Store on one SQLite
// file through modernc.org/sqlite (pure Go, so the binary stays static).
//
// SQLite allows one writer at a time, and every commit of a durable
// transaction costs an fsync, which takes far longer than the SQL it makes
// durable. So the driver never lets callers write concurrently. One writer
// goroutine owns the only write connection; every write method hands it an
// operation (a closure over the write transaction) and waits for the answer.
// The writer takes the first waiting operation, drains every other one that
// is waiting (up to Config.MaxBatch) and runs them all in one BEGIN IMMEDIATE
// … COMMIT: group commit, so a hundred concurrent enqueues share one fsync.
// Each operation runs inside its own SAVEPOINT, so one operation's error
// undoes only that operation. Callers hear their result, and listeners their
// notifications, only once the COMMIT has succeeded.
//
// Reads (Get, List, Queues, QueuePaused) go to a separate pool of query-only
// connections: in WAL mode they read the last committed snapshot and never
// wait for the writer.
//
// Leases need not survive a power loss (a lost lease only means the job runs
// again), so a batch that holds nothing but Lease and Heartbeat operations
// commits with synchronous=NORMAL; the next durable batch commits with the
// configured level, and in WAL mode its fsync covers the earlier frames too.
//
// Within an operation, work on many jobs runs as multi-row statements (an
// INSERT of up to 256 jobs, an UPDATE … FROM (VALUES …) completing or
// leasing up to 256), each prepared once on the write connection and kept:
// SQLite's per-statement cost, not its per-row cost, is what dominates
// one-row-at-a-time code. Values are bound on the caller's goroutine where
// possible, so that the writer, the one serial resource, spends its time in
// SQLite.
//
// The store is embedded in a single process, so the database clock is the
// process clock. Times are stored as INTEGER unix microseconds, UTC.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ store.Store = (*Store)(nil)

// ErrClosed is returned (wrapped) by operations on a closed Store.
var ErrClosed = errors.New("store closed")

// Config configures Open.
type Config struct {
	// Path is the database file; it is created if missing. Required.
	Path string
	// Durability is "full" (synchronous=FULL: an acknowledged write survives
	// power loss) or "relaxed" (synchronous=NORMAL: it survives a crash of the
	// process but may be lost with the machine's power). Default "full".
	Durability string
	// ReadConns is the size of the read-only connection pool. Default 4.
	ReadConns int
	// MaxBatch is the most operations one group commit carries. Default 1024.
	MaxBatch int
	// NoMigrate skips applying the embedded migrations at Open. Default false.
	NoMigrate bool
	// Logger receives the driver's rare operational messages. Default
	// slog.Default().
	Logger *slog.Logger
}

const (
	defaultReadConns = 4
	defaultMaxBatch  = 1024
	// busyTimeoutMS bounds how long a connection waits for a lock held by
	// another process sharing the file (a `switchyard migrate`, a backup).
	// Within this process only the writer ever takes the write lock.
	busyTimeoutMS = 10000
)

// Store is the SQLite implementation of store.Store. Create it with Open.
type Store struct {
	w      *writer
	events eventBatcher // RecordEvents calls waiting for the writer
	read   *sql.DB
	log    *slog.Logger
	rstmts readStmts

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// Open opens (creating if needed) the database at cfg.Path, starts the writer
// and, unless cfg.NoMigrate, applies pending migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: open: Config.Path is required")
	}
	if strings.ContainsRune(cfg.Path, '?') {
		// The driver takes connection options after a '?' in the name.
		return nil, fmt.Errorf("sqlite: open: path %q must not contain '?'", cfg.Path)
	}
	fullSync := true
	switch cfg.Durability {
	case "", "full":
	case "relaxed":
		fullSync = false
	default:
		return nil, fmt.Errorf("sqlite: open: Durability %q: want \"full\" or \"relaxed\"", cfg.Durability)
	}
	if cfg.ReadConns < 0 || cfg.MaxBatch < 0 {
		return nil, errors.New("sqlite: open: ReadConns and MaxBatch must not be negative")
	}
	if cfg.ReadConns == 0 {
		cfg.ReadConns = defaultReadConns
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	w, err := startWriter(ctx, cfg.Path, fullSync, cfg.MaxBatch)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	w.bus = joinBus(cfg.Path)
	s := &Store{w: w, events: eventBatcher{w: w}, log: cfg.Logger}

	// The read pool is opened after the writer has put the file in WAL mode:
	// query-only connections could not do it.
	bt := strconv.Itoa(busyTimeoutMS)
	s.read, err = sql.Open("sqlite", cfg.Path+"?_pragma=busy_timeout("+bt+")&_pragma=query_only(1)&_pragma=cache_size(-16000)")
	if err != nil {
		w.close()
		w.bus.leave(s)
		return nil, fmt.Errorf("sqlite: open read pool: %w", err)
	}
	s.read.SetMaxOpenConns(cfg.ReadConns)
	s.read.SetMaxIdleConns(cfg.ReadConns)
	s.read.SetConnMaxLifetime(0)
	s.read.SetConnMaxIdleTime(0)

	if !cfg.NoMigrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	return s, nil
}

// Backend returns "sqlite".
func (s *Store) Backend() string { return "sqlite" }

// Listen registers fn to receive the notifications of every committed write.
// fn runs on the writer goroutine right after the commit, so it must not
// block: the next group commit waits for it.
func (s *Store) Listen(fn func(store.Notification)) {
	s.w.bus.subscribe(s, fn)
}

// Now returns the database clock, which for an embedded single-process store
// is the process clock, at the stored (microsecond) resolution.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	if s.closed.Load() {
		return time.Time{}, fmt.Errorf("sqlite: now: %w", ErrClosed)
	}
	return time.Now().UTC().Truncate(time.Microsecond), nil
}

// Ping checks that the file can be read, and that the writer is running and
// can take the write lock (an empty write transaction).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: ping: %w", ErrClosed)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.w.do(ctx, false, func(*wtx) error { return nil }); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the writer, after it has finished the batch it is running, and
// closes every connection. Operations still waiting to be started get
// ErrClosed. Idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		errW := s.w.close()
		s.w.bus.leave(s)
		s.rstmts.close()
		errR := s.read.Close()
		if err := errors.Join(errW, errR); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// micros converts a time to the stored representation.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts a stored time back, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros converts a nullable stored time; NULL is the zero time.
func nullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}
