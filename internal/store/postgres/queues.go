package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// SetQueuePaused implements store.Store. The upsert and its pg_notify are one
// statement, so the wake-up fires exactly when the change commits.
func (s *Store) SetQueuePaused(ctx context.Context, tenantID, queue string, paused bool) error {
	if _, err := s.pool.Exec(ctx, sqlSetQueuePaused, s.channel, s.origin, tenantID, queue, paused); err != nil {
		return fmt.Errorf("postgres: set queue paused: %w", err)
	}
	s.deliver(store.Notification{Kind: store.NotifyQueue, TenantID: tenantID, Queue: queue})
	return nil
}

// SetQueueConcurrency implements store.Store.
func (s *Store) SetQueueConcurrency(ctx context.Context, tenantID, queue string, concurrency int) error {
	if _, err := s.pool.Exec(ctx, sqlSetQueueConcurrency, s.channel, s.origin, tenantID, queue, concurrency); err != nil {
		return fmt.Errorf("postgres: set queue concurrency: %w", err)
	}
	s.deliver(store.Notification{Kind: store.NotifyQueue, TenantID: tenantID, Queue: queue})
	return nil
}

// QueueSettings implements store.Store.
func (s *Store) QueueSettings(ctx context.Context, tenantID, queue string) (store.QueueSettings, error) {
	var qs store.QueueSettings
	var concurrency int32
	err := s.pool.QueryRow(ctx, sqlQueueSettings, tenantID, queue).Scan(&qs.Paused, &concurrency)
	if errors.Is(err, pgx.ErrNoRows) {
		return qs, nil
	}
	if err != nil {
		return qs, fmt.Errorf("postgres: queue settings: %w", err)
	}
	qs.Concurrency = int(concurrency)
	return qs, nil
}

// QueueNames implements store.Store.
func (s *Store) QueueNames(ctx context.Context, tenantID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, sqlQueueNames, tenantID)
	if err != nil {
		return nil, fmt.Errorf("postgres: queue names: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: queue names: %w", err)
	}
	return names, nil
}

// AllQueueNames implements store.Store.
func (s *Store) AllQueueNames(ctx context.Context) ([]store.TenantQueue, error) {
	rows, err := s.pool.Query(ctx, sqlAllQueueNames)
	if err != nil {
		return nil, fmt.Errorf("postgres: all queue names: %w", err)
	}
	qs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.TenantQueue, error) {
		var q store.TenantQueue
		err := row.Scan(&q.TenantID, &q.Queue)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: all queue names: %w", err)
	}
	return qs, nil
}

// Queues implements store.Store. Queues come ordered by name.
func (s *Store) Queues(ctx context.Context, tenantID string) ([]store.Queue, error) {
	rows, err := s.pool.Query(ctx, sqlQueues, tenantID)
	if err != nil {
		return nil, fmt.Errorf("postgres: queues: %w", err)
	}
	var (
		qs          []store.Queue
		name        string
		paused      bool
		concurrency int32
		updated     pgtype.Timestamptz
		state       pgtype.Text
		n           int64
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &paused, &concurrency, &updated, &state, &n}, func() error {
		if len(qs) == 0 || qs[len(qs)-1].Name != name {
			q := store.Queue{TenantID: tenantID, Name: name, Paused: paused, Concurrency: int(concurrency), Counts: make(map[string]int64, len(store.AllStates))}
			for _, st := range store.AllStates {
				q.Counts[st] = 0
			}
			if updated.Valid {
				q.UpdatedAt = updated.Time.UTC()
			}
			qs = append(qs, q)
		}
		if state.Valid {
			qs[len(qs)-1].Counts[state.String] = n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: queues: %w", err)
	}
	return qs, nil
}

// PurgeQueue implements store.Store.
func (s *Store) PurgeQueue(ctx context.Context, tenantID, queue string) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlPurgeQueue, tenantID, queue)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge queue: %w", err)
	}
	s.countLeased(int(tag.RowsAffected())) // deleted rows leave dead index entries too
	return int(tag.RowsAffected()), nil
}
