package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// store.Events. Events and their jobs are written by the writer in one op,
// so a recording is one transaction and nothing writes between the check
// for a repeat and the insert.

const (
	evCols  = `id, tenant_id, source, event_id, type, subject, event_time, received_at, body, dispatch`
	defCols = `kind, id, tenant_id, name, spec, created_at, updated_at, version`
	daCols  = `id, tenant_id, endpoint_id, event_id, job_id, attempt, at, status, latency_us, response_headers, response_body, error`

	// The columns an insert sets, in the order insertEvents binds them.
	evInsertCols    = `tenant_id, source, event_id, type, subject, event_time, received_at, body, dispatch`
	evInsertColN    = 9
	sqlEvBySourceID = `SELECT ` + evCols + ` FROM events WHERE tenant_id = ? AND source = ? AND event_id = ?`
	sqlEvGet        = `SELECT ` + evCols + ` FROM events WHERE id = ? AND tenant_id = ?`
	// Parameters: before, limit.
	// The oldest by id, those of them received before before.
	// Parameters: limit, before.
	sqlEvDeleteOld = `DELETE FROM events WHERE id IN (
		SELECT id FROM (SELECT id, received_at FROM events ORDER BY id LIMIT ?) WHERE received_at < ?)`

	sqlDaInsert = `INSERT INTO delivery_attempts (tenant_id, endpoint_id, event_id, job_id, attempt, at, status,
		latency_us, response_headers, response_body, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	// Parameters: before, limit.
	// The oldest made before ?2, by when they were made (a delivery's
	// attempts are recorded as they end, not in the order they began).
	// Parameters: limit, before.
	sqlDaDeleteOld = `DELETE FROM delivery_attempts WHERE id IN (
		SELECT id FROM delivery_attempts WHERE at < ?2 ORDER BY at LIMIT ?1)`

	sqlDefInsert = `INSERT INTO definitions (` + defCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, 1)`
	// Parameters: kind, id, tenant ("" for any).
	sqlDefGet  = `SELECT ` + defCols + ` FROM definitions WHERE kind = ?1 AND id = ?2 AND (?3 = '' OR tenant_id = ?3)`
	sqlDefList = `SELECT ` + defCols + ` FROM definitions WHERE kind = ? AND tenant_id = ? AND id > ? ORDER BY id LIMIT ?`
	// Parameters: name, spec, updated_at, kind, id, tenant.
	// Parameters: name, spec, updated_at, kind, id, tenant, version (0: any).
	sqlDefUpdate = `UPDATE definitions SET name = ?1, spec = ?2, updated_at = ?3, version = version + 1
		WHERE kind = ?4 AND id = ?5 AND tenant_id = ?6 AND (?7 = 0 OR version = ?7)`
	sqlDefDelete = `DELETE FROM definitions WHERE kind = ? AND id = ? AND tenant_id = ?`
)

func scanEvent(sc scanner) (*store.Event, error) {
	var (
		e              store.Event
		at, received   sqlInt
		body, dispatch string
	)
	if err := sc.Scan(&e.ID, &e.TenantID, &e.Source, &e.EventID, &e.Type, &e.Subject, &at, &received, &body, &dispatch); err != nil {
		return nil, err
	}
	e.Time, e.ReceivedAt = fromMicros(int64(at)), fromMicros(int64(received))
	e.Body, e.Dispatch = []byte(body), []byte(dispatch)
	return &e, nil
}

// GetEvent implements store.Events.
func (s *Store) GetEvent(ctx context.Context, tenantID string, id int64) (*store.Event, error) {
	e, err := scanEvent(s.read.QueryRowContext(ctx, sqlEvGet, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get event %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get event %d: %w", id, err)
	}
	return e, nil
}

// ListEvents implements store.Events.
func (s *Store) ListEvents(ctx context.Context, p store.EventListParams) ([]*store.Event, error) {
	var q strings.Builder
	args := []any{p.TenantID}
	q.WriteString(`SELECT ` + evCols + ` FROM events WHERE tenant_id = ?`)
	add := func(cond string, arg any) {
		q.WriteString(cond)
		args = append(args, arg)
	}
	if p.Type != "" {
		add(` AND type = ?`, p.Type)
	}
	if p.Source != "" {
		add(` AND source = ?`, p.Source)
	}
	if p.Subject != "" {
		add(` AND subject = ?`, p.Subject)
	}
	if !p.Since.IsZero() {
		add(` AND event_time >= ?`, micros(p.Since))
	}
	if !p.Until.IsZero() {
		add(` AND event_time < ?`, micros(p.Until))
	}
	if p.Before > 0 {
		add(` AND id < ?`, p.Before)
	}
	add(` ORDER BY id DESC LIMIT ?`, sqlLimit(p.Limit))
	es, err := accQueryAll(ctx, s.read, scanEvent, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list events: %w", err)
	}
	return es, nil
}

// DeleteEventsBefore implements store.Events.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteOldest(ctx, "events", sqlEvDeleteOld, before, limit)
}

// deleteOldest runs one of the retention deletes, whose parameters are
// limit and before.
func (s *Store) deleteOldest(ctx context.Context, what, q string, before time.Time, limit int) (int, error) {
	var n int64
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		var err error
		n, err = t.accExec(q, sqlLimit(limit), micros(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old %s: %w", what, err)
	}
	return int(n), nil
}

// EventBySource implements store.Events.
func (s *Store) EventBySource(ctx context.Context, tenantID, source, eventID string) (*store.Event, error) {
	e, err := scanEvent(s.read.QueryRowContext(ctx, sqlEvBySourceID, tenantID, source, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: event %s %s: %w", source, eventID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: event %s %s: %w", source, eventID, err)
	}
	return e, nil
}

func scanDeliveryAttempt(sc scanner) (*store.DeliveryAttempt, error) {
	var (
		a               store.DeliveryAttempt
		attempt, status sqlInt
		at, latency     sqlInt
		headers         string
	)
	if err := sc.Scan(&a.ID, &a.TenantID, &a.EndpointID, &a.EventID, &a.JobID, &attempt, &at, &status, &latency,
		&headers, &a.ResponseBody, &a.Error); err != nil {
		return nil, err
	}
	a.Attempt, a.Status = int(attempt), int(status)
	a.At, a.Latency = fromMicros(int64(at)), time.Duration(latency)*time.Microsecond
	a.ResponseHeaders = []byte(headers)
	return &a, nil
}

// RecordDeliveryAttempt implements store.Events.
func (s *Store) RecordDeliveryAttempt(ctx context.Context, a store.DeliveryAttempt) (*store.DeliveryAttempt, error) {
	if len(a.ResponseHeaders) == 0 {
		a.ResponseHeaders = []byte("{}")
	}
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		at := orNow(a.At, t.nowUS)
		lat := a.Latency.Microseconds()
		if err := t.accQueryRow(sqlDaInsert, a.TenantID, a.EndpointID, a.EventID, a.JobID, a.Attempt, at, a.Status,
			lat, string(a.ResponseHeaders), a.ResponseBody, a.Error).Scan(&a.ID); err != nil {
			return err
		}
		// As stored: microseconds, UTC.
		a.At, a.Latency = fromMicros(at), time.Duration(lat)*time.Microsecond
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: record delivery attempt: %w", err)
	}
	return &a, nil
}

// ListDeliveryAttempts implements store.Events.
func (s *Store) ListDeliveryAttempts(ctx context.Context, p store.DeliveryAttemptListParams) ([]*store.DeliveryAttempt, error) {
	var q strings.Builder
	args := []any{p.TenantID}
	q.WriteString(`SELECT ` + daCols + ` FROM delivery_attempts WHERE tenant_id = ?`)
	add := func(cond string, arg any) {
		q.WriteString(cond)
		args = append(args, arg)
	}
	if p.EndpointID != "" {
		add(` AND endpoint_id = ?`, p.EndpointID)
	}
	if p.EventID != 0 {
		add(` AND event_id = ?`, p.EventID)
	}
	if p.Before > 0 {
		add(` AND id < ?`, p.Before)
	}
	add(` ORDER BY id DESC LIMIT ?`, sqlLimit(p.Limit))
	as, err := accQueryAll(ctx, s.read, scanDeliveryAttempt, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list delivery attempts: %w", err)
	}
	return as, nil
}

// DeleteDeliveryAttemptsBefore implements store.Events.
func (s *Store) DeleteDeliveryAttemptsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.deleteOldest(ctx, "delivery attempts", sqlDaDeleteOld, before, limit)
}

func scanDefinition(sc scanner) (*store.Definition, error) {
	var (
		d                store.Definition
		spec             string
		created, updated sqlInt
	)
	if err := sc.Scan(&d.Kind, &d.ID, &d.TenantID, &d.Name, &spec, &created, &updated, &d.Version); err != nil {
		return nil, err
	}
	d.Spec, d.CreatedAt, d.UpdatedAt = []byte(spec), fromMicros(int64(created)), fromMicros(int64(updated))
	return &d, nil
}

// CreateDefinition implements store.Events.
func (s *Store) CreateDefinition(ctx context.Context, d store.Definition) (*store.Definition, error) {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		d.CreatedAt, d.UpdatedAt, d.Version = fromMicros(t.nowUS), fromMicros(t.nowUS), 1
		if _, err := t.accExec(sqlDefInsert, d.Kind, d.ID, d.TenantID, d.Name, string(d.Spec), t.nowUS, t.nowUS); err != nil {
			return err
		}
		t.notify(store.Notification{Kind: store.NotifyDefinitions, TenantID: d.TenantID})
		return nil
	})
	if accConflict(err) {
		return nil, fmt.Errorf("sqlite: create %s: a %s named %q exists: %w", d.Kind, d.Kind, d.Name, store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", d.Kind, err)
	}
	return &d, nil
}

// GetDefinition implements store.Events.
func (s *Store) GetDefinition(ctx context.Context, kind, tenantID, id string) (*store.Definition, error) {
	d, err := scanDefinition(s.read.QueryRowContext(ctx, sqlDefGet, kind, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get %s %s: %w", kind, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %s %s: %w", kind, id, err)
	}
	return d, nil
}

// ListDefinitions implements store.Events.
func (s *Store) ListDefinitions(ctx context.Context, kind, tenantID, after string, limit int) ([]*store.Definition, error) {
	ds, err := accQueryAll(ctx, s.read, scanDefinition, sqlDefList, kind, tenantID, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %ss: %w", kind, err)
	}
	return ds, nil
}

// UpdateDefinition implements store.Events.
func (s *Store) UpdateDefinition(ctx context.Context, d store.Definition) (*store.Definition, error) {
	var got *store.Definition
	err := s.w.do(ctx, true, func(t *wtx) error {
		n, err := t.accExec(sqlDefUpdate, d.Name, string(d.Spec), t.nowUS, d.Kind, d.ID, d.TenantID, d.Version)
		if err != nil {
			return err
		}
		got, err = scanDefinition(t.accQueryRow(sqlDefGet, d.Kind, d.ID, d.TenantID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case n == 0:
			return store.ErrChanged
		}
		t.notify(store.Notification{Kind: store.NotifyDefinitions, TenantID: d.TenantID})
		return nil
	})
	switch {
	case accConflict(err):
		return nil, fmt.Errorf("sqlite: update %s %s: a %s named %q exists: %w", d.Kind, d.ID, d.Kind, d.Name, store.ErrConflict)
	case err != nil:
		return nil, fmt.Errorf("sqlite: update %s %s: %w", d.Kind, d.ID, err)
	}
	return got, nil
}

// DeleteDefinition implements store.Events.
func (s *Store) DeleteDefinition(ctx context.Context, kind, tenantID, id string) error {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		n, err := t.accExec(sqlDefDelete, kind, id, tenantID)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		t.notify(store.Notification{Kind: store.NotifyDefinitions, TenantID: tenantID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete %s %s: %w", kind, id, err)
	}
	return nil
}
