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

// QueuePaused implements store.Store.
func (s *Store) QueuePaused(ctx context.Context, tenantID, queue string) (bool, error) {
	var paused bool
	err := s.pool.QueryRow(ctx, sqlQueuePaused, tenantID, queue).Scan(&paused)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: queue paused: %w", err)
	}
	return paused, nil
}

// Queues implements store.Store. Queues come ordered by name.
func (s *Store) Queues(ctx context.Context, tenantID string) ([]store.Queue, error) {
	rows, err := s.pool.Query(ctx, sqlQueues, tenantID)
	if err != nil {
		return nil, fmt.Errorf("postgres: queues: %w", err)
	}
	var (
		qs      []store.Queue
		name    string
		paused  bool
		updated pgtype.Timestamptz
		state   pgtype.Text
		n       int64
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &paused, &updated, &state, &n}, func() error {
		if len(qs) == 0 || qs[len(qs)-1].Name != name {
			q := store.Queue{TenantID: tenantID, Name: name, Paused: paused, Counts: make(map[string]int64, len(store.AllStates))}
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
