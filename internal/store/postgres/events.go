package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// store.Events.

const (
	evCols  = `id, tenant_id, source, event_id, type, subject, event_time, received_at, body, dispatch`
	defCols = `kind, id, tenant_id, name, spec, created_at, updated_at, version`
	daCols  = `id, tenant_id, endpoint_id, event_id, job_id, attempt, at, status, latency_us, response_headers, response_body, error`

	// The insert claims (tenant, source, event_id): a concurrent insert of
	// the same key waits for this transaction, then inserts nothing.
	sqlEvInsert = `INSERT INTO switchyard.events (tenant_id, source, event_id, type, subject, event_time, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, source, event_id) DO NOTHING
		RETURNING ` + evCols
	sqlEvBySourceID  = `SELECT ` + evCols + ` FROM switchyard.events WHERE tenant_id = $1 AND source = $2 AND event_id = $3`
	sqlEvSetDispatch = `UPDATE switchyard.events SET dispatch = $2 WHERE id = $1`
	sqlEvGet         = `SELECT ` + evCols + ` FROM switchyard.events WHERE id = $1 AND tenant_id = $2`
	// The oldest by id, those of them received before $1.
	sqlEvDeleteOld = `DELETE FROM switchyard.events WHERE id IN (
		SELECT id FROM (SELECT id, received_at FROM switchyard.events ORDER BY id LIMIT $2) oldest WHERE received_at < $1)`

	// Parameter 6, at, is NULL for now.
	sqlDaInsert = `INSERT INTO switchyard.delivery_attempts (tenant_id, endpoint_id, event_id, job_id, attempt, at, status,
		latency_us, response_headers, response_body, error)
		VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), $7, $8, $9, $10, $11)
		RETURNING ` + daCols
	// The oldest made before $1, by when they were made (a delivery's
	// attempts are recorded as they end, not in the order they began).
	sqlDaDeleteOld = `DELETE FROM switchyard.delivery_attempts WHERE id IN (
		SELECT id FROM switchyard.delivery_attempts WHERE at < $1 ORDER BY at LIMIT $2)`

	sqlDefInsert = `INSERT INTO switchyard.definitions (kind, id, tenant_id, name, spec) VALUES ($1, $2, $3, $4, $5)
		RETURNING ` + defCols
	// Parameters: kind, id, tenant ("" for any).
	sqlDefGet  = `SELECT ` + defCols + ` FROM switchyard.definitions WHERE kind = $1 AND id = $2 AND ($3 = '' OR tenant_id = $3)`
	sqlDefList = `SELECT ` + defCols + ` FROM switchyard.definitions WHERE kind = $1 AND tenant_id = $2 AND id > $3 ORDER BY id LIMIT $4`
	// Parameter 6, the version, is 0 for any.
	sqlDefUpdate = `UPDATE switchyard.definitions SET name = $4, spec = $5, updated_at = now(), version = version + 1
		WHERE kind = $1 AND id = $2 AND tenant_id = $3 AND ($6 = 0 OR version = $6) RETURNING ` + defCols
	sqlDefDelete = `DELETE FROM switchyard.definitions WHERE kind = $1 AND id = $2 AND tenant_id = $3`
)

func scanEvent(row pgx.Row) (*store.Event, error) {
	var (
		e              store.Event
		at, received   pgtype.Timestamptz
		body, dispatch string
	)
	if err := row.Scan(&e.ID, &e.TenantID, &e.Source, &e.EventID, &e.Type, &e.Subject, &at, &received, &body, &dispatch); err != nil {
		return nil, err
	}
	e.Time, e.ReceivedAt = timeOf(at), timeOf(received)
	e.Body, e.Dispatch = []byte(body), []byte(dispatch)
	return &e, nil
}

// RecordEvents implements store.Events.
func (s *Store) RecordEvents(ctx context.Context, recs []store.EventRecord) ([]store.RecordedEvent, error) {
	if len(recs) == 0 {
		return []store.RecordedEvent{}, nil
	}
	var (
		out   []store.RecordedEvent
		notes []store.Notification
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out, notes = make([]store.RecordedEvent, len(recs)), nil
		for i := range recs {
			r := &recs[i]
			e := &r.Event
			stored, err := scanEvent(tx.QueryRow(ctx, sqlEvInsert, e.TenantID, e.Source, e.EventID, e.Type, e.Subject, e.Time, string(e.Body)))
			if errors.Is(err, pgx.ErrNoRows) {
				// Recorded before: by a committed transaction, or earlier
				// in this one.
				if stored, err = scanEvent(tx.QueryRow(ctx, sqlEvBySourceID, e.TenantID, e.Source, e.EventID)); err != nil {
					return fmt.Errorf("event %d: read the recorded one: %w", i, err)
				}
				out[i] = store.RecordedEvent{Event: stored, Existing: true}
				continue
			}
			if err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			var jobs []store.InsertResult
			if len(r.Jobs) > 0 {
				var ns []store.Notification
				if jobs, ns, err = s.insert(ctx, tx, r.Jobs, s.origin); err != nil {
					return fmt.Errorf("event %d: jobs: %w", i, err)
				}
				notes = append(notes, ns...)
			}
			if len(r.Outcomes) > 0 {
				if stored.Dispatch, err = store.EncodeDispatch(r.Outcomes, jobs); err != nil {
					return fmt.Errorf("event %d: %w", i, err)
				}
				if _, err := tx.Exec(ctx, sqlEvSetDispatch, stored.ID, string(stored.Dispatch)); err != nil {
					return fmt.Errorf("event %d: dispatch: %w", i, err)
				}
			}
			out[i] = store.RecordedEvent{Event: stored, Jobs: jobs}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: record events: %w", err)
	}
	s.publish(notes...)
	return out, nil
}

// GetEvent implements store.Events.
func (s *Store) GetEvent(ctx context.Context, tenantID string, id int64) (*store.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, sqlEvGet, id, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get event %d: %w", id, err)
	}
	return e, nil
}

// ListEvents implements store.Events.
func (s *Store) ListEvents(ctx context.Context, p store.EventListParams) ([]*store.Event, error) {
	var q strings.Builder
	args := []any{p.TenantID}
	q.WriteString(`SELECT ` + evCols + ` FROM switchyard.events WHERE tenant_id = $1`)
	add := func(format string, arg any) {
		args = append(args, arg)
		q.WriteString(strings.ReplaceAll(format, "$", "$"+strconv.Itoa(len(args))))
	}
	if p.Type != "" {
		add(` AND type = $`, p.Type)
	}
	if p.Source != "" {
		add(` AND source = $`, p.Source)
	}
	if p.Subject != "" {
		add(` AND subject = $`, p.Subject)
	}
	if !p.Since.IsZero() {
		add(` AND event_time >= $`, p.Since)
	}
	if !p.Until.IsZero() {
		add(` AND event_time < $`, p.Until)
	}
	if p.Before > 0 {
		add(` AND id < $`, p.Before)
	}
	q.WriteString(` ORDER BY id DESC`)
	if p.Limit > 0 {
		add(` LIMIT $`, int64(p.Limit))
	}
	out, err := accQueryAll(ctx, s.pool, scanEvent, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	return out, nil
}

// DeleteEventsBefore implements store.Events.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteOldest(ctx, "events", sqlEvDeleteOld, before, limit)
}

// deleteOldest runs one of the retention deletes, whose parameters are
// before and limit.
func (s *Store) deleteOldest(ctx context.Context, what, sql string, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sql, before, noLimitIfZero(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete old %s: %w", what, err)
	}
	return int(tag.RowsAffected()), nil
}

// noLimitIfZero is a LIMIT parameter: NULL, no limit, for limit <= 0.
func noLimitIfZero(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

// EventBySource implements store.Events.
func (s *Store) EventBySource(ctx context.Context, tenantID, source, eventID string) (*store.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, sqlEvBySourceID, tenantID, source, eventID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: event %s %s: %w", source, eventID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: event %s %s: %w", source, eventID, err)
	}
	return e, nil
}

func scanDeliveryAttempt(row pgx.Row) (*store.DeliveryAttempt, error) {
	var (
		a               store.DeliveryAttempt
		attempt, status int32
		at              pgtype.Timestamptz
		latency         int64
		headers         string
	)
	if err := row.Scan(&a.ID, &a.TenantID, &a.EndpointID, &a.EventID, &a.JobID, &attempt, &at, &status, &latency,
		&headers, &a.ResponseBody, &a.Error); err != nil {
		return nil, err
	}
	a.Attempt, a.Status = int(attempt), int(status)
	a.At, a.Latency = timeOf(at), time.Duration(latency)*time.Microsecond
	a.ResponseHeaders = []byte(headers)
	return &a, nil
}

// RecordDeliveryAttempt implements store.Events.
func (s *Store) RecordDeliveryAttempt(ctx context.Context, a store.DeliveryAttempt) (*store.DeliveryAttempt, error) {
	headers := string(a.ResponseHeaders)
	if headers == "" {
		headers = "{}"
	}
	got, err := scanDeliveryAttempt(s.pool.QueryRow(ctx, sqlDaInsert, a.TenantID, a.EndpointID, a.EventID, a.JobID,
		int32(a.Attempt), nullTime(a.At), int32(a.Status), a.Latency.Microseconds(), headers, a.ResponseBody, a.Error))
	if err != nil {
		return nil, fmt.Errorf("postgres: record delivery attempt: %w", err)
	}
	return got, nil
}

// ListDeliveryAttempts implements store.Events.
func (s *Store) ListDeliveryAttempts(ctx context.Context, p store.DeliveryAttemptListParams) ([]*store.DeliveryAttempt, error) {
	var q strings.Builder
	args := []any{p.TenantID}
	q.WriteString(`SELECT ` + daCols + ` FROM switchyard.delivery_attempts WHERE tenant_id = $1`)
	add := func(format string, arg any) {
		args = append(args, arg)
		q.WriteString(strings.ReplaceAll(format, "$", "$"+strconv.Itoa(len(args))))
	}
	if p.EndpointID != "" {
		add(` AND endpoint_id = $`, p.EndpointID)
	}
	if p.EventID != 0 {
		add(` AND event_id = $`, p.EventID)
	}
	if p.Before > 0 {
		add(` AND id < $`, p.Before)
	}
	q.WriteString(` ORDER BY id DESC`)
	if p.Limit > 0 {
		add(` LIMIT $`, int64(p.Limit))
	}
	out, err := accQueryAll(ctx, s.pool, scanDeliveryAttempt, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list delivery attempts: %w", err)
	}
	return out, nil
}

// DeleteDeliveryAttemptsBefore implements store.Events.
func (s *Store) DeleteDeliveryAttemptsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteOldest(ctx, "delivery attempts", sqlDaDeleteOld, before, limit)
}

func scanDefinition(row pgx.Row) (*store.Definition, error) {
	var (
		d                store.Definition
		spec             string
		created, updated pgtype.Timestamptz
	)
	if err := row.Scan(&d.Kind, &d.ID, &d.TenantID, &d.Name, &spec, &created, &updated, &d.Version); err != nil {
		return nil, err
	}
	d.Spec, d.CreatedAt, d.UpdatedAt = []byte(spec), timeOf(created), timeOf(updated)
	return &d, nil
}

// CreateDefinition implements store.Events.
func (s *Store) CreateDefinition(ctx context.Context, d store.Definition) (*store.Definition, error) {
	got, err := scanDefinition(s.pool.QueryRow(ctx, sqlDefInsert, d.Kind, d.ID, d.TenantID, d.Name, string(d.Spec)))
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("postgres: create %s: a %s named %q exists: %w", d.Kind, d.Kind, d.Name, store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: create %s: %w", d.Kind, err)
	}
	s.publish(store.Notification{Kind: store.NotifyDefinitions, TenantID: d.TenantID})
	return got, nil
}

// GetDefinition implements store.Events.
func (s *Store) GetDefinition(ctx context.Context, kind, tenantID, id string) (*store.Definition, error) {
	d, err := scanDefinition(s.pool.QueryRow(ctx, sqlDefGet, kind, id, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get %s %s: %w", kind, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %s %s: %w", kind, id, err)
	}
	return d, nil
}

// ListDefinitions implements store.Events.
func (s *Store) ListDefinitions(ctx context.Context, kind, tenantID, after string, limit int) ([]*store.Definition, error) {
	out, err := accQueryAll(ctx, s.pool, scanDefinition, sqlDefList, kind, tenantID, after, noLimitIfZero(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: list %ss: %w", kind, err)
	}
	return out, nil
}

// UpdateDefinition implements store.Events.
func (s *Store) UpdateDefinition(ctx context.Context, d store.Definition) (*store.Definition, error) {
	got, err := scanDefinition(s.pool.QueryRow(ctx, sqlDefUpdate, d.Kind, d.ID, d.TenantID, d.Name, string(d.Spec), d.Version))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Unknown, or of another version.
		if _, gerr := s.GetDefinition(ctx, d.Kind, d.TenantID, d.ID); gerr == nil {
			return nil, fmt.Errorf("postgres: update %s %s: %w", d.Kind, d.ID, store.ErrChanged)
		}
		return nil, fmt.Errorf("postgres: update %s %s: %w", d.Kind, d.ID, store.ErrNotFound)
	case isUniqueViolation(err):
		return nil, fmt.Errorf("postgres: update %s %s: a %s named %q exists: %w", d.Kind, d.ID, d.Kind, d.Name, store.ErrConflict)
	case err != nil:
		return nil, fmt.Errorf("postgres: update %s %s: %w", d.Kind, d.ID, err)
	}
	s.publish(store.Notification{Kind: store.NotifyDefinitions, TenantID: d.TenantID})
	return got, nil
}

// DeleteDefinition implements store.Events.
func (s *Store) DeleteDefinition(ctx context.Context, kind, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, sqlDefDelete, kind, id, tenantID)
	if err != nil {
		return fmt.Errorf("postgres: delete %s %s: %w", kind, id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete %s %s: %w", kind, id, store.ErrNotFound)
	}
	s.publish(store.Notification{Kind: store.NotifyDefinitions, TenantID: tenantID})
	return nil
}
