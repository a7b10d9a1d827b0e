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
	evCols   = `id, tenant_id, source, event_id, type, subject, event_time, received_at, body, dispatch`
	ruleCols = `id, tenant_id, name, spec, created_at, updated_at`

	// The insert claims (tenant, source, event_id): a concurrent insert of
	// the same key waits for this transaction, then inserts nothing.
	sqlEvInsert = `INSERT INTO switchyard.events (tenant_id, source, event_id, type, subject, event_time, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, source, event_id) DO NOTHING
		RETURNING ` + evCols
	sqlEvBySourceID  = `SELECT ` + evCols + ` FROM switchyard.events WHERE tenant_id = $1 AND source = $2 AND event_id = $3`
	sqlEvSetDispatch = `UPDATE switchyard.events SET dispatch = $2 WHERE id = $1`
	sqlEvGet         = `SELECT ` + evCols + ` FROM switchyard.events WHERE id = $1 AND tenant_id = $2`
	sqlEvDeleteOld   = `DELETE FROM switchyard.events WHERE id IN (
		SELECT id FROM switchyard.events WHERE received_at < $1 ORDER BY received_at LIMIT $2)`

	sqlRuleInsert = `INSERT INTO switchyard.rules (id, tenant_id, name, spec) VALUES ($1, $2, $3, $4)
		RETURNING ` + ruleCols
	sqlRuleGet    = `SELECT ` + ruleCols + ` FROM switchyard.rules WHERE id = $1 AND tenant_id = $2`
	sqlRuleList   = `SELECT ` + ruleCols + ` FROM switchyard.rules WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`
	sqlRuleUpdate = `UPDATE switchyard.rules SET name = $3, spec = $4, updated_at = now()
		WHERE id = $1 AND tenant_id = $2 RETURNING ` + ruleCols
	sqlRuleDelete = `DELETE FROM switchyard.rules WHERE id = $1 AND tenant_id = $2`
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
	rows, err := s.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	defer rows.Close()
	out := []*store.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list events: %w", err)
	}
	return out, nil
}

// DeleteEventsBefore implements store.Events.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlEvDeleteOld, before, int64(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete old events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func scanRule(row pgx.Row) (*store.Rule, error) {
	var (
		r                store.Rule
		spec             string
		created, updated pgtype.Timestamptz
	)
	if err := row.Scan(&r.ID, &r.TenantID, &r.Name, &spec, &created, &updated); err != nil {
		return nil, err
	}
	r.Spec, r.CreatedAt, r.UpdatedAt = []byte(spec), timeOf(created), timeOf(updated)
	return &r, nil
}

// CreateRule implements store.Events.
func (s *Store) CreateRule(ctx context.Context, r store.Rule) (*store.Rule, error) {
	got, err := scanRule(s.pool.QueryRow(ctx, sqlRuleInsert, r.ID, r.TenantID, r.Name, string(r.Spec)))
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("postgres: create rule: a rule named %q exists: %w", r.Name, store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: create rule: %w", err)
	}
	s.publish(store.Notification{Kind: store.NotifyRules, TenantID: r.TenantID})
	return got, nil
}

// GetRule implements store.Events.
func (s *Store) GetRule(ctx context.Context, tenantID, id string) (*store.Rule, error) {
	r, err := scanRule(s.pool.QueryRow(ctx, sqlRuleGet, id, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get rule %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get rule %s: %w", id, err)
	}
	return r, nil
}

// ListRules implements store.Events.
func (s *Store) ListRules(ctx context.Context, tenantID, after string, limit int) ([]*store.Rule, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = int64(limit)
	}
	rows, err := s.pool.Query(ctx, sqlRuleList, tenantID, after, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: list rules: %w", err)
	}
	defer rows.Close()
	out := []*store.Rule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list rules: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list rules: %w", err)
	}
	return out, nil
}

// UpdateRule implements store.Events.
func (s *Store) UpdateRule(ctx context.Context, r store.Rule) (*store.Rule, error) {
	got, err := scanRule(s.pool.QueryRow(ctx, sqlRuleUpdate, r.ID, r.TenantID, r.Name, string(r.Spec)))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("postgres: update rule %s: %w", r.ID, store.ErrNotFound)
	case isUniqueViolation(err):
		return nil, fmt.Errorf("postgres: update rule %s: a rule named %q exists: %w", r.ID, r.Name, store.ErrConflict)
	case err != nil:
		return nil, fmt.Errorf("postgres: update rule %s: %w", r.ID, err)
	}
	s.publish(store.Notification{Kind: store.NotifyRules, TenantID: r.TenantID})
	return got, nil
}

// DeleteRule implements store.Events.
func (s *Store) DeleteRule(ctx context.Context, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, sqlRuleDelete, id, tenantID)
	if err != nil {
		return fmt.Errorf("postgres: delete rule %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete rule %s: %w", id, store.ErrNotFound)
	}
	s.publish(store.Notification{Kind: store.NotifyRules, TenantID: tenantID})
	return nil
}
