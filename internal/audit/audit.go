// Package audit writes the audit log: entries are gathered for a few
// milliseconds and appended in one store transaction, so that a server
// taking thousands of mutating requests a second does not add a commit per
// request; and entries older than the retention are swept away, which is
// the only way any leave the log. The same sweep deletes rate-limit buckets
// idle for a day, which are full again by then for any sensible limit.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Config configures a Writer.
type Config struct {
	// Store receives the entries. Required.
	Store store.Store
	// Retention is how long entries are kept. Default 400 days.
	Retention time.Duration
	// Gather is how long the writer waits for more entries after the first
	// before appending them together. Default 20ms.
	Gather time.Duration
	// MaxBatch caps entries per append. Default 1000.
	MaxBatch int
	// Buffer is how many entries may wait; Record blocks when it is full.
	// Default 20000.
	Buffer int
	// SweepEvery is how often the retention sweep runs. Default 1h.
	SweepEvery time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("audit: config: Store is required")
	}
	if c.Retention <= 0 {
		c.Retention = 400 * 24 * time.Hour
	}
	if c.Gather <= 0 {
		c.Gather = 20 * time.Millisecond
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.Buffer <= 0 {
		c.Buffer = 20000
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Writer appends audit entries in batches.
type Writer struct {
	cfg     Config
	entries chan store.AuditEntry
	flushes chan chan error
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New returns a Writer; Start starts it.
func New(cfg Config) (*Writer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Writer{
		cfg:     cfg,
		entries: make(chan store.AuditEntry, cfg.Buffer),
		flushes: make(chan chan error),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Start starts the writing loop.
func (w *Writer) Start(context.Context) error {
	go w.loop()
	return nil
}

// Stop writes what is pending and stops. Idempotent.
func (w *Writer) Stop() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
	})
}

// Record queues an entry. It blocks only while the buffer is full (the
// store is slower than the requests), until ctx ends.
func (w *Writer) Record(ctx context.Context, e store.AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	select {
	case w.entries <- e:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: record %s: %w", e.Action, context.Cause(ctx))
	case <-w.stop:
		return errors.New("audit: record: writer stopped")
	}
}

// Flush appends every entry recorded before it was called.
func (w *Writer) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-w.done:
		return errors.New("audit: flush: writer stopped")
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	sweep := time.NewTimer(time.Minute) // soon after start, then every SweepEvery
	defer sweep.Stop()
	batch := make([]store.AuditEntry, 0, w.cfg.MaxBatch)
	for {
		select {
		case e := <-w.entries:
			batch = append(batch[:0], e)
			batch = w.gather(batch)
			w.append(batch)
		case reply := <-w.flushes:
			reply <- w.drain(batch)
		case <-sweep.C:
			w.sweep()
			sweep.Reset(w.cfg.SweepEvery)
		case <-w.stop:
			if err := w.drain(batch); err != nil {
				w.cfg.Logger.Error("audit: entries lost at shutdown", "err", err)
			}
			return
		}
	}
}

// gather adds entries arriving within Gather, up to MaxBatch.
func (w *Writer) gather(batch []store.AuditEntry) []store.AuditEntry {
	timer := time.NewTimer(w.cfg.Gather)
	defer timer.Stop()
	for len(batch) < w.cfg.MaxBatch {
		select {
		case e := <-w.entries:
			batch = append(batch, e)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// drain appends everything buffered now.
func (w *Writer) drain(batch []store.AuditEntry) error {
	var errs []error
	for {
		batch = batch[:0]
	fill:
		for len(batch) < w.cfg.MaxBatch {
			select {
			case e := <-w.entries:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return errors.Join(errs...)
		}
		if err := w.append(batch); err != nil {
			errs = append(errs, err)
		}
	}
}

// append writes a batch, retrying for a while: an audit entry is only lost
// if the store stays down.
func (w *Writer) append(batch []store.AuditEntry) error {
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 8; attempt, wait = attempt+1, wait*2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = w.cfg.Store.AppendAudit(ctx, batch)
		cancel()
		if err == nil {
			return nil
		}
		w.cfg.Logger.Warn("audit: append failed; retrying", "entries", len(batch), "err", err)
		select {
		case <-time.After(wait):
		case <-w.stop:
			// Shutting down: one last try, below.
		}
	}
	w.cfg.Logger.Error("audit: entries lost", "entries", len(batch), "err", err)
	return fmt.Errorf("audit: append %d entries: %w", len(batch), err)
}

// idleBucket is how long a rate-limit bucket stays untouched before the
// sweep deletes it.
const idleBucket = 24 * time.Hour

func (w *Writer) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := time.Now().Add(-w.cfg.Retention)
	total := 0
	for {
		n, err := w.cfg.Store.DeleteAuditBefore(ctx, before, 5000)
		if err != nil {
			w.cfg.Logger.Error("audit: retention sweep", "err", err)
			return
		}
		total += n
		if n < 5000 {
			break
		}
	}
	if total > 0 {
		w.cfg.Logger.Info("audit: retention sweep", "deleted", total, "before", before)
	}
	for {
		n, err := w.cfg.Store.DeleteIdleRateBuckets(ctx, time.Now().Add(-idleBucket), 5000)
		if err != nil {
			w.cfg.Logger.Error("audit: sweep idle rate buckets", "err", err)
			return
		}
		if n < 5000 {
			return
		}
	}
}
