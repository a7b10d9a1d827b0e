package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// RescueExpired implements store.Store. The expired leases are locked first
// (SKIP LOCKED: a completion racing with the rescue wins, and two rescuers
// split the work) because the retry delay is the engine's policy, computed
// in Go per job; the update and the next-expiry query then go in one
// pipeline before the commit.
// It is RescueExpiredJobs, counting.
func (s *Store) RescueExpired(ctx context.Context, limit int, retryAt func(*store.Job) time.Duration) (int, time.Duration, error) {
	jobs, next, err := s.RescueExpiredJobs(ctx, limit, retryAt)
	return len(jobs), next, err
}

// readMoved reads rows of (tenant_id, queue, state, run_at) of jobs a
// statement moved, counting them into n and collecting their notifications.
func readMoved(n *int, notes *noteSet) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var (
			tenant, queue, state string
			runAt                time.Time
		)
		_, err := pgx.ForEachRow(rows, []any{&tenant, &queue, &state, &runAt}, func() error {
			*n++
			notes.add(tenant, queue, state, runAt.UTC())
			return nil
		})
		return err
	}
}

// readNext reads a microseconds-from-now column into d: none if NULL, and at
// least one microsecond otherwise, so a due time never reads as "none" when
// none is zero.
func readNext(d *time.Duration, none time.Duration) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var us pgtype.Int8
		_, err := pgx.ForEachRow(rows, []any{&us}, func() error { return nil })
		if err != nil {
			return err
		}
		switch {
		case !us.Valid:
			*d = none
		case none == 0 && us.Int64 < 1:
			*d = time.Microsecond
		case us.Int64 < 0:
			*d = 0
		default:
			*d = time.Duration(us.Int64) * time.Microsecond
		}
		return nil
	}
}

// PromoteScheduled implements store.Store. The promotion and the query for
// the next due time travel in one pipeline, which runs as one implicit
// transaction: the second statement sees the first's changes.
func (s *Store) PromoteScheduled(ctx context.Context, limit int) (int, time.Duration, error) {
	var (
		n     int
		next  time.Duration
		notes noteSet
	)
	b := &pgx.Batch{}
	b.Queue(sqlPromote, "", s.origin, limit)
	b.Queue(sqlNextPending)
	err := readBatch(s.pool.SendBatch(ctx, b), readMoved(&n, &notes), readNext(&next, -1))
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: promote scheduled: %w", err)
	}
	s.publish(notes.list...)
	return n, next, nil
}

// DeleteFinished implements store.Store: one DELETE per state with a
// retention age, sent together.
func (s *Store) DeleteFinished(ctx context.Context, p store.RetentionParams) (int, error) {
	var limit *int64 // NULL: no limit
	if p.Limit > 0 {
		l := int64(p.Limit)
		limit = &l
	}
	b := &pgx.Batch{}
	for _, r := range []struct {
		state string
		age   time.Duration
	}{
		{store.StateSucceeded, p.Succeeded},
		{store.StateCancelled, p.Cancelled},
		{store.StateDead, p.Dead},
	} {
		if r.age > 0 {
			b.Queue(sqlDeleteFinished, r.state, r.age.Microseconds(), limit)
		}
	}
	if b.Len() == 0 {
		return 0, nil
	}
	br := s.pool.SendBatch(ctx, b)
	n := 0
	for range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return 0, fmt.Errorf("postgres: delete finished: %w", err)
		}
		n += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("postgres: delete finished: %w", err)
	}
	s.countLeased(n) // deleted rows leave dead index entries too
	return n, nil
}
