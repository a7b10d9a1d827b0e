package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Lease implements store.Store with one statement: a CTE takes the first
// Limit ids from the fetch index with FOR UPDATE SKIP LOCKED, so concurrent
// leasers split the queue instead of waiting on each other, and the UPDATE
// leases exactly those rows.
//
// The lease commits without waiting for its WAL flush (asynchronous
// commit): a lease lost in a database crash only makes the job available
// again, which at-least-once delivery allows, and every later synchronous
// commit (the completion) flushes it anyway. Not waiting keeps the lease
// off the WAL flush queue that durable enqueues and completions wait in. The
// statement sets synchronous_commit itself, so a lease is one statement.
func (s *Store) Lease(ctx context.Context, p store.LeaseParams) ([]*store.Job, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	leasedBy := pgtype.Text{String: p.LeasedBy, Valid: p.LeasedBy != ""}
	rows, err := s.pool.Query(ctx, sqlLease, p.TenantID, p.Queue, p.Limit, p.Duration.Microseconds(), leasedBy)
	if err != nil {
		return nil, fmt.Errorf("postgres: lease: %w", err)
	}
	jobs, err := collectJobs(rows, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: lease: %w", err)
	}
	s.countLeased(len(jobs))
	// UPDATE … RETURNING yields rows in join order; hand them out in lease
	// order.
	slices.SortFunc(jobs, func(a, b *store.Job) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return jobs, nil
}

// leaseArrays are the fencing columns of a batch of leases.
type leaseArrays struct {
	ids      []int64
	attempts []int32
	tokens   []int64
	pos      []int // index of each lease in the caller's slice
}

func (a *leaseArrays) add(l store.Lease, pos int) {
	a.ids = append(a.ids, l.JobID)
	a.attempts = append(a.attempts, int32(l.Attempt))
	a.tokens = append(a.tokens, l.Token)
	a.pos = append(a.pos, pos)
}

// Complete implements store.Store. Succeeded completions, the hot path, go
// in one UPDATE … FROM unnest(…) that sends no notification; every other
// outcome goes in a second statement. When both are needed they travel in
// one pipeline ending in a single Sync, which PostgreSQL runs as one implicit
// transaction: one round trip, one commit, all or nothing.
func (s *Store) Complete(ctx context.Context, cs []store.Completion) ([]error, error) {
	errs := make([]error, len(cs))
	if len(cs) == 0 {
		return errs, nil
	}
	var (
		succ    leaseArrays
		results [][]byte
		anyRes  bool

		other    leaseArrays
		outcomes []int16
		messages []string
		delays   []int64
	)
	succ.ids = make([]int64, 0, len(cs))
	succ.attempts = make([]int32, 0, len(cs))
	succ.tokens = make([]int64, 0, len(cs))
	succ.pos = make([]int, 0, len(cs))
	results = make([][]byte, 0, len(cs))
	// A job completed twice in one call: the first completion ends the
	// lease, so the later ones are stale.
	var seen map[int64]struct{}
	if len(cs) > 1 {
		seen = make(map[int64]struct{}, len(cs))
	}
	for i := range cs {
		c := &cs[i]
		if c.Outcome < store.OutcomeSucceeded || c.Outcome > store.OutcomeCancelled {
			return nil, fmt.Errorf("postgres: complete: job %d: unknown outcome %d", c.Lease.JobID, c.Outcome)
		}
		if seen != nil {
			if _, dup := seen[c.Lease.JobID]; dup {
				errs[i] = store.ErrStaleLease
				continue
			}
			seen[c.Lease.JobID] = struct{}{}
		}
		if c.Outcome == store.OutcomeSucceeded {
			succ.add(c.Lease, i)
			results = append(results, c.Result)
			anyRes = anyRes || c.Result != nil
			continue
		}
		other.add(c.Lease, i)
		outcomes = append(outcomes, int16(c.Outcome))
		messages = append(messages, c.Error)
		var d time.Duration
		switch c.Outcome {
		case store.OutcomeFailed:
			d = c.RetryIn
		case store.OutcomeSnoozed:
			d = c.Delay
		}
		delays = append(delays, d.Microseconds())
	}
	var resArg any // NULL array: unnest pads it with NULL results
	if anyRes {
		resArg = results
	}
	succArgs := []any{succ.ids, succ.attempts, succ.tokens, resArg}
	otherArgs := []any{"", s.origin, other.ids, other.attempts, other.tokens, outcomes, messages, delays}

	var (
		succDone = make([]int64, 0, len(succ.ids))
		notes    noteSet
		err      error
	)
	readSucc := func(rows pgx.Rows) error {
		var id int64
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			succDone = append(succDone, id)
			return nil
		})
		return err
	}
	otherDone := make(map[int64]struct{}, len(other.ids))
	readOther := func(rows pgx.Rows) error {
		var (
			id            int64
			tenant, queue string
			state         string
			runAt         time.Time
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &tenant, &queue, &state, &runAt}, func() error {
			otherDone[id] = struct{}{}
			notes.add(tenant, queue, state, runAt.UTC())
			return nil
		})
		return err
	}
	switch {
	case len(other.ids) == 0:
		err = queryAndRead(ctx, s.pool, readSucc, sqlCompleteSucceeded, succArgs...)
	case len(succ.ids) == 0:
		err = queryAndRead(ctx, s.pool, readOther, sqlCompleteOther, otherArgs...)
	default:
		b := &pgx.Batch{}
		b.Queue(sqlCompleteSucceeded, succArgs...)
		b.Queue(sqlCompleteOther, otherArgs...)
		br := s.pool.SendBatch(ctx, b)
		err = readBatch(br, readSucc, readOther)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: complete: %w", err)
	}
	// The ids sent are distinct and an UPDATE returns each row once, so
	// as many rows as leases means every lease matched: the usual case needs
	// no lookup.
	if len(succDone) != len(succ.ids) {
		done := make(map[int64]struct{}, len(succDone))
		for _, id := range succDone {
			done[id] = struct{}{}
		}
		for k, id := range succ.ids {
			if _, ok := done[id]; !ok {
				errs[succ.pos[k]] = store.ErrStaleLease
			}
		}
	}
	for k, id := range other.ids {
		if _, ok := otherDone[id]; !ok {
			errs[other.pos[k]] = store.ErrStaleLease
		}
	}
	s.publish(notes.list...)
	return errs, nil
}

// queryAndRead runs one statement and hands its rows to read.
func queryAndRead(ctx context.Context, q querier, read func(pgx.Rows) error, sql string, args ...any) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	return read(rows)
}

// readBatch reads the results of a batch's queries in order, then closes it
// (which reports an error of the batch's implicit transaction).
func readBatch(br pgx.BatchResults, reads ...func(pgx.Rows) error) error {
	for _, read := range reads {
		rows, err := br.Query()
		if err == nil {
			err = read(rows)
		}
		if err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// Heartbeat implements store.Store with one UPDATE for all leases.
func (s *Store) Heartbeat(ctx context.Context, leases []store.Lease, extend time.Duration) ([]store.Lease, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	var a leaseArrays
	for i, l := range leases {
		a.add(l, i)
	}
	rows, err := s.pool.Query(ctx, sqlHeartbeat, a.ids, a.attempts, a.tokens, extend.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: heartbeat: %w", err)
	}
	alive := make(map[int64]struct{}, len(leases))
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		alive[id] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: heartbeat: %w", err)
	}
	var stale []store.Lease
	for _, l := range leases {
		if _, ok := alive[l.JobID]; !ok {
			stale = append(stale, l)
		}
	}
	return stale, nil
}

// SetProgress implements store.Store.
func (s *Store) SetProgress(ctx context.Context, l store.Lease, progress []byte) error {
	tag, err := s.pool.Exec(ctx, sqlSetProgress, l.JobID, int32(l.Attempt), l.Token, progress)
	if err != nil {
		return fmt.Errorf("postgres: set progress: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: set progress: job %d: %w", l.JobID, store.ErrStaleLease)
	}
	return nil
}
