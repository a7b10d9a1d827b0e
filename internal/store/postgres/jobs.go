package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// jobScan holds the destinations for one row of jobColumns; prefix lets a
// statement put extra columns before them.
type jobScan struct {
	job                            store.Job
	startedAt, finishedAt, leaseEx pgtype.Timestamptz
	timeoutMS                      int64
	uniqueKey, leasedBy            pgtype.Text
}

func (s *jobScan) dests(prefix ...any) []any {
	j := &s.job
	return append(prefix,
		&j.ID, &j.TenantID, &j.Queue, &j.Kind, &j.Args, &j.Priority, &j.State, &j.Attempt, &j.MaxAttempts,
		&j.RunAt, &j.CreatedAt, &s.startedAt, &s.finishedAt, &s.timeoutMS, &s.uniqueKey, &j.Tags, &j.Result, &j.Errors,
		&j.Progress, &j.LeaseToken, &s.leaseEx, &s.leasedBy)
}

// result finishes the scanned row into a Job. Times are in UTC so that jobs
// read from either driver compare alike.
func (s *jobScan) result() *store.Job {
	j := s.job
	j.RunAt = j.RunAt.UTC()
	j.CreatedAt = j.CreatedAt.UTC()
	if s.startedAt.Valid {
		j.StartedAt = s.startedAt.Time.UTC()
	}
	if s.finishedAt.Valid {
		j.FinishedAt = s.finishedAt.Time.UTC()
	}
	if s.leaseEx.Valid {
		j.LeaseExpiresAt = s.leaseEx.Time.UTC()
	}
	j.Timeout = time.Duration(s.timeoutMS) * time.Millisecond
	j.UniqueKey = s.uniqueKey.String
	j.LeasedBy = s.leasedBy.String
	if j.Tags == nil {
		j.Tags = []string{}
	}
	return &j
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	j, err := getJob(ctx, s.pool, tenantID, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: get: %w", err)
	}
	return j, nil
}

func getJob(ctx context.Context, q querier, tenantID string, id int64) (*store.Job, error) {
	var js jobScan
	if err := q.QueryRow(ctx, sqlGet, id, tenantID).Scan(js.dests()...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	return js.result(), nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, p store.ListParams) ([]*store.Job, error) {
	sql := sqlListBase
	args := []any{p.TenantID}
	add := func(frag string, v any) {
		args = append(args, v)
		sql += frag + strconv.Itoa(len(args))
	}
	if p.Queue != "" {
		add(sqlListQueue, p.Queue)
	}
	if p.State != "" {
		add(sqlListState, p.State)
	}
	if p.Kind != "" {
		add(sqlListKind, p.Kind)
	}
	if p.Tag != "" {
		add(sqlListTag, p.Tag)
		sql += sqlListTagEnd
	}
	if p.Before > 0 {
		add(sqlListBefore, p.Before)
	}
	var limit *int64 // NULL: no limit
	if p.Limit > 0 {
		l := int64(p.Limit)
		limit = &l
	}
	add(sqlListOrder, limit)

	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list: %w", err)
	}
	jobs, err := collectJobs(rows, 0)
	if err != nil {
		return nil, fmt.Errorf("postgres: list: %w", err)
	}
	return jobs, nil
}

// collectJobs reads every row of jobColumns.
func collectJobs(rows pgx.Rows, sizeHint int) ([]*store.Job, error) {
	defer rows.Close()
	jobs := make([]*store.Job, 0, sizeHint)
	var js jobScan
	dests := js.dests()
	for rows.Next() {
		js = jobScan{}
		if err := rows.Scan(dests...); err != nil {
			return nil, err
		}
		jobs = append(jobs, js.result())
	}
	return jobs, rows.Err()
}

// Cancel implements store.Store.
func (s *Store) Cancel(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	j, err := s.finish(ctx, tenantID, id, store.StateCancelled)
	if err != nil {
		return j, fmt.Errorf("postgres: cancel: %w", err)
	}
	return j, nil
}

// Discard implements store.Store.
func (s *Store) Discard(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	j, err := s.finish(ctx, tenantID, id, store.StateDead)
	if err != nil {
		return j, fmt.Errorf("postgres: discard: %w", err)
	}
	return j, nil
}

// finish moves a live job to the final state, voiding a running job's lease.
func (s *Store) finish(ctx context.Context, tenantID string, id int64, state string) (*store.Job, error) {
	var (
		js        jobScan
		changed   bool
		prevState string
	)
	err := s.pool.QueryRow(ctx, sqlCancel, s.channel, s.origin, id, tenantID, state).Scan(js.dests(&changed, &prevState)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	j := js.result()
	if !changed {
		return j, fmt.Errorf("job %d is %s: %w", id, j.State, store.ErrConflict)
	}
	if prevState == store.StateRunning {
		s.deliver(store.Notification{Kind: store.NotifyCancel, TenantID: j.TenantID, Queue: j.Queue, JobID: j.ID})
	}
	return j, nil
}

// Retry implements store.Store.
func (s *Store) Retry(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	var (
		js      jobScan
		changed bool
	)
	err := s.pool.QueryRow(ctx, sqlRetry, s.channel, s.origin, id, tenantID).Scan(js.dests(&changed)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: retry: %w", store.ErrNotFound)
	}
	if isUniqueViolation(err) {
		// Another live job holds the unique key now; making this one live
		// again would break the key's promise.
		j, gerr := getJob(ctx, s.pool, tenantID, id)
		if gerr != nil {
			return nil, fmt.Errorf("postgres: retry: %w", gerr)
		}
		return j, fmt.Errorf("postgres: retry: job %d: unique key %q is held by another live job: %w", id, j.UniqueKey, store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: retry: %w", err)
	}
	j := js.result()
	if !changed {
		return j, fmt.Errorf("postgres: retry: job %d is %s: %w", id, j.State, store.ErrConflict)
	}
	s.deliver(store.Notification{Kind: store.NotifyInsert, TenantID: j.TenantID, Queue: j.Queue})
	return j, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	var (
		js      jobScan
		deleted bool
	)
	err := s.pool.QueryRow(ctx, sqlDeleteJob, id, tenantID).Scan(js.dests(&deleted)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: delete: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: delete: %w", err)
	}
	j := js.result()
	if !deleted {
		return j, fmt.Errorf("postgres: delete: job %d is running; cancel it first: %w", id, store.ErrConflict)
	}
	s.countLeased(1) // a deleted row leaves dead index entries
	return j, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
