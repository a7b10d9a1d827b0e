package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// SetQueuePaused pauses or resumes a queue, creating its settings row if
// needed.
func (s *Store) SetQueuePaused(ctx context.Context, tenantID, queue string, paused bool) error {
	err := s.w.do(ctx, true, func(t *wtx) error {
		if _, err := t.exec(stSetPaused, tenantID, queue, paused, t.nowUS); err != nil {
			return err
		}
		t.notify(store.Notification{Kind: store.NotifyQueue, TenantID: tenantID, Queue: queue})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set queue paused: %w", err)
	}
	return nil
}

// SetQueueConcurrency sets a queue's per-node concurrency, creating its row
// if needed.
func (s *Store) SetQueueConcurrency(ctx context.Context, tenantID, queue string, concurrency int) error {
	err := s.w.do(ctx, true, func(t *wtx) error {
		if _, err := t.exec(stSetConcurrency, tenantID, queue, concurrency, t.nowUS); err != nil {
			return err
		}
		t.notify(store.Notification{Kind: store.NotifyQueue, TenantID: tenantID, Queue: queue})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set queue concurrency: %w", err)
	}
	return nil
}

// CreateAPIKey stores k; with onlyIfNone, only into an empty key table. The
// single writer makes the check and the insert atomic.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey, onlyIfNone bool) (bool, error) {
	created := false
	err := s.w.do(ctx, true, func(t *wtx) error {
		if onlyIfNone {
			var exists bool
			if err := t.queryRow(stAnyKey).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return nil
			}
		}
		createdAt := k.CreatedAt
		if createdAt.IsZero() {
			createdAt = fromMicros(t.nowUS)
		}
		var expires any
		if !k.ExpiresAt.IsZero() {
			expires = k.ExpiresAt.UnixMicro()
		}
		if _, err := t.exec(stInsertKey, k.ID, k.TenantID, k.Name, k.Role, k.Prefix, k.Hash, createdAt.UnixMicro(), expires); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: create api key: %w", err)
	}
	return created, nil
}

// TouchAPIKey records a key's use. Not durable on its own: losing it only
// makes the key look used a little earlier.
func (s *Store) TouchAPIKey(ctx context.Context, id string) error {
	err := s.w.do(ctx, false, func(t *wtx) error {
		n, err := t.execN(stTouchKey, t.nowUS, id)
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: touch api key: %w", err)
	}
	return nil
}

// RevokeAPIKey ends a key and tells every Store on the file.
func (s *Store) RevokeAPIKey(ctx context.Context, tenantID, id string) error {
	err := s.w.do(ctx, true, func(t *wtx) error {
		n, err := t.execN(stRevokeKey, t.nowUS, id, tenantID)
		if err != nil {
			return err
		}
		if n == 0 {
			var revoked bool
			if err := t.queryRow(stKeyRevoked, id, tenantID).Scan(&revoked); errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			} else if err != nil {
				return err
			}
			return fmt.Errorf("%w: key %s is revoked already", store.ErrConflict, id)
		}
		t.notify(store.Notification{Kind: store.NotifyKeys})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke api key: %w", err)
	}
	return nil
}

// RescueExpired turns running jobs whose lease expired into retryable or
// dead. The expired jobs are read from the read pool and retryAt is called on
// the caller's goroutine, so that no caller code runs on the writer; the
// writer then applies each change only if the job still holds the same,
// still expired, lease (a heartbeat or a completion may have come between).
// It is RescueExpiredJobs, counting.
func (s *Store) RescueExpired(ctx context.Context, limit int, retryAt func(*store.Job) time.Duration) (int, time.Duration, error) {
	jobs, next, err := s.RescueExpiredJobs(ctx, limit, retryAt)
	return len(jobs), next, err
}

// PromoteScheduled makes due scheduled and retryable jobs available.
func (s *Store) PromoteScheduled(ctx context.Context, limit int) (int, time.Duration, error) {
	var (
		n    int
		next time.Duration
	)
	if limit <= 0 {
		return 0, -1, nil
	}
	err := s.w.do(ctx, true, func(t *wtx) error {
		n, next = 0, -1
		rows, err := t.query(stPromote, t.nowUS, int64(limit))
		if err != nil {
			return err
		}
		var tenant, queue string
		for rows.Next() {
			if err := rows.Scan(&tenant, &queue); err != nil {
				rows.Close()
				return err
			}
			t.notify(store.Notification{Kind: store.NotifyInsert, TenantID: tenant, Queue: queue})
			n++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		var first sqlNullInt
		if err := t.queryRow(stNextPending).Scan(&first); err != nil {
			return err
		}
		if first.valid {
			next = max(time.Duration(first.v-t.nowUS)*time.Microsecond, 0)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: promote scheduled: %w", err)
	}
	return n, next, nil
}

// DeleteFinished deletes finished jobs older than the retention ages, at
// most p.Limit rows per state (no limit if p.Limit <= 0).
func (s *Store) DeleteFinished(ctx context.Context, p store.RetentionParams) (int, error) {
	limit := int64(p.Limit)
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var n int
	err := s.w.do(ctx, true, func(t *wtx) error {
		n = 0
		for _, d := range []struct {
			id  stmtID
			age time.Duration
		}{{stDeleteSucceeded, p.Succeeded}, {stDeleteCancelled, p.Cancelled}, {stDeleteDead, p.Dead}} {
			if d.age <= 0 {
				continue
			}
			k, err := t.execN(d.id, t.nowUS-d.age.Microseconds(), limit)
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete finished: %w", err)
	}
	return n, nil
}

// PurgeQueue deletes every job of a queue that is not running.
func (s *Store) PurgeQueue(ctx context.Context, tenantID, queue string) (int, error) {
	var n int64
	err := s.w.do(ctx, true, func(t *wtx) error {
		var err error
		n, err = t.execN(stPurge, tenantID, queue)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge queue: %w", err)
	}
	return int(n), nil
}

// TryLead claims or renews the leadership name for nodeID. With one process
// per file that node always wins, unless another process shares the file.
func (s *Store) TryLead(ctx context.Context, name, nodeID string, ttl time.Duration) (bool, error) {
	var lead bool
	err := s.w.do(ctx, true, func(t *wtx) error {
		n, err := t.execN(stTryLead, name, nodeID, t.nowUS, t.nowUS+ttl.Microseconds())
		lead = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: try lead: %w", err)
	}
	return lead, nil
}

// Resign gives up leadership if nodeID holds it and sends NotifyLeader
// either way, so that others try at once.
func (s *Store) Resign(ctx context.Context, name, nodeID string) error {
	err := s.w.do(ctx, true, func(t *wtx) error {
		if _, err := t.exec(stResign, name, nodeID); err != nil {
			return err
		}
		t.notify(store.Notification{Kind: store.NotifyLeader})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: resign: %w", err)
	}
	return nil
}
