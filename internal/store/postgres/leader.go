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
// only if the row is ours, expired (by the database clock), or names a
// leader session that no longer exists (see session); the unique name makes
// concurrent claimants serialise on the row, so one wins.
func (s *Store) TryLead(ctx context.Context, name, nodeID string, ttl time.Duration) (bool, error) {
	se := s.sessionFor(name)
	pid, holding := se.state()
	var mine int32 // our session's pid, recorded only while it holds the lock
	if holding {
		mine = int32(pid)
	}
	var (
		ok        bool
		leaderPID int64
	)
	err := s.pool.QueryRow(ctx, sqlTryLead, name, nodeID, ttl.Microseconds(), mine).Scan(&ok, &leaderPID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: try lead: %w", err)
	}
	if !ok && holding && leaderPID != 0 && leaderPID != int64(pid) {
		// We hold the session lock but another Store leads: hand the lock
		// over, so that its death will wake us.
		se.release()
	}
	return ok, nil
}

// Resign implements store.Store. NotifyLeader is sent even if nodeID did not
// lead: it is only a wake-up, and a node that thought it led has reason to
// make the others look.
func (s *Store) Resign(ctx context.Context, name, nodeID string) error {
	var notified any
	var deleted int64
	if err := s.pool.QueryRow(ctx, sqlResign, s.channel, s.origin, name, nodeID).Scan(&notified, &deleted); err != nil {
		return fmt.Errorf("postgres: resign: %w", err)
	}
	if deleted > 0 {
		// Hand the session lock to a follower at once.
		s.sessionFor(name).release()
	}
	s.deliver(store.Notification{Kind: store.NotifyLeader})
	return nil
}
