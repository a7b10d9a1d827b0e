package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// TryLead implements store.Store with one upsert whose WHERE lets it through
// only if the row is ours or expired (by the database clock); the unique
// name makes concurrent claimants serialise on the row, so one wins.
func (s *Store) TryLead(ctx context.Context, name, nodeID string, ttl time.Duration) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, sqlTryLead, name, nodeID, ttl.Microseconds()).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: try lead: %w", err)
	}
	return ok, nil
}

// Resign implements store.Store. NotifyLeader is sent even if nodeID did not
// lead: it is only a wake-up, and a node that thought it led has reason to
// make the others look.
func (s *Store) Resign(ctx context.Context, name, nodeID string) error {
	if _, err := s.pool.Exec(ctx, sqlResign, s.channel, s.origin, name, nodeID); err != nil {
		return fmt.Errorf("postgres: resign: %w", err)
	}
	s.deliver(store.Notification{Kind: store.NotifyLeader})
	return nil
}
