package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// store.Workers. The registry is a handful of rows written every few
// seconds, so its statements are not prepared once and kept (see
// access.go). Heartbeats are not durable: losing one in a power cut only
// makes the node look older than it is until its next.

const (
	wkCols = `id, tenant_id, all_tenants, queues, all_queues, hostname, pid, timeout_us, started_at, last_seen_at, offline_at`

	sqlWkRegister = `INSERT INTO workers (` + wkCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, all_tenants = excluded.all_tenants,
			queues = excluded.queues, all_queues = excluded.all_queues, hostname = excluded.hostname,
			pid = excluded.pid, timeout_us = excluded.timeout_us, started_at = excluded.started_at, last_seen_at = excluded.last_seen_at,
			offline_at = NULL`
	sqlWkHeartbeat = `UPDATE workers SET last_seen_at = ? WHERE id = ? AND offline_at IS NULL`
	sqlWkListAll   = `SELECT ` + wkCols + ` FROM workers ORDER BY id`
	sqlWkList      = `SELECT ` + wkCols + ` FROM workers WHERE tenant_id = ? ORDER BY id`
	// Parameters: now, silent for. Answers whether any online node is
	// silent.
	sqlWkAnySilent = `SELECT EXISTS (SELECT 1 FROM workers
		WHERE offline_at IS NULL AND last_seen_at < ?1 - max(?2, timeout_us))`
	// Parameters: now (offline_at), silent for.
	sqlWkMarkOffline = `UPDATE workers SET offline_at = ?1
		WHERE offline_at IS NULL AND last_seen_at < ?1 - max(?2, timeout_us)
		RETURNING ` + wkCols
	sqlWkDelete = `DELETE FROM workers WHERE id = ? RETURNING ` + wkCols
	// Parameters: before.
	sqlWkPrune = `DELETE FROM workers WHERE offline_at IS NOT NULL AND offline_at < ?`
)

func scanNode(sc scanner) (store.NodeInfo, error) {
	var (
		n                 store.NodeInfo
		allTenants, allQs bool
		queues            string
		pid, timeout      sqlInt
		started, seen     sqlInt
		offline           sqlNullInt
	)
	if err := sc.Scan(&n.ID, &n.TenantID, &allTenants, &queues, &allQs, &n.Hostname, &pid, &timeout, &started, &seen, &offline); err != nil {
		return n, err
	}
	qs, err := decodeTags(queues)
	if err != nil {
		return n, err
	}
	n.AllTenants, n.Queues, n.AllQueues, n.PID = allTenants, qs, allQs, int(pid)
	n.Timeout = time.Duration(timeout) * time.Microsecond
	n.StartedAt, n.LastSeenAt, n.OfflineAt = fromMicros(int64(started)), fromMicros(int64(seen)), offline.time()
	return n, nil
}

// RegisterNode implements store.Workers.
func (s *Store) RegisterNode(ctx context.Context, n store.NodeInfo) (store.NodeInfo, error) {
	queues, err := encodeTags(n.Queues)
	if err != nil {
		return store.NodeInfo{}, fmt.Errorf("sqlite: register node %s: %w", n.ID, err)
	}
	err = s.w.doOneStatement(ctx, true, func(t *wtx) error {
		_, err := t.accExec(sqlWkRegister, n.ID, n.TenantID, n.AllTenants, queues, n.AllQueues, n.Hostname, int64(n.PID), n.Timeout.Microseconds(), t.nowUS, t.nowUS)
		n.StartedAt = fromMicros(t.nowUS)
		return err
	})
	if err != nil {
		return store.NodeInfo{}, fmt.Errorf("sqlite: register node %s: %w", n.ID, err)
	}
	if n.Queues == nil {
		n.Queues = []string{}
	}
	n.LastSeenAt, n.OfflineAt = n.StartedAt, time.Time{}
	return n, nil
}

// HeartbeatNode implements store.Workers.
func (s *Store) HeartbeatNode(ctx context.Context, nodeID string) error {
	err := s.w.doOneStatement(ctx, false, func(t *wtx) error {
		k, err := t.accExec(sqlWkHeartbeat, t.nowUS, nodeID)
		if err == nil && k == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: heartbeat node %s: %w", nodeID, err)
	}
	return nil
}

// ListNodes implements store.Workers.
func (s *Store) ListNodes(ctx context.Context, tenantID string) ([]store.NodeInfo, error) {
	var (
		ns  []store.NodeInfo
		err error
	)
	if tenantID == "" {
		ns, err = accQueryAll(ctx, s.read, scanNode, sqlWkListAll)
	} else {
		ns, err = accQueryAll(ctx, s.read, scanNode, sqlWkList, tenantID)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list nodes: %w", err)
	}
	return ns, nil
}

// MarkNodesOffline implements store.Workers. The leader calls it every few
// seconds and it nearly always finds nothing, so it looks from the read
// pool first and writes (a commit) only when some node is silent; the write
// checks again, and being the only writer, it gets each node once.
func (s *Store) MarkNodesOffline(ctx context.Context, silentFor time.Duration) ([]store.NodeInfo, error) {
	var silent bool
	if err := s.read.QueryRowContext(ctx, sqlWkAnySilent, time.Now().UnixMicro(), silentFor.Microseconds()).Scan(&silent); err != nil {
		return nil, fmt.Errorf("sqlite: mark nodes offline: %w", err)
	}
	if !silent {
		return nil, nil
	}
	var out []store.NodeInfo
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		out = out[:0]
		rows, err := t.w.conn.QueryContext(context.Background(), sqlWkMarkOffline, t.nowUS, silentFor.Microseconds())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNode(rows)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: mark nodes offline: %w", err)
	}
	return out, nil
}

// DeleteNode implements store.Workers.
func (s *Store) DeleteNode(ctx context.Context, nodeID string) (store.NodeInfo, error) {
	var n store.NodeInfo
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		var err error
		n, err = scanNode(t.accQueryRow(sqlWkDelete, nodeID))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.NodeInfo{}, fmt.Errorf("sqlite: delete node %s: %w", nodeID, err)
	}
	return n, nil
}

// PruneNodes implements store.Workers.
func (s *Store) PruneNodes(ctx context.Context, offlineFor time.Duration) (int, error) {
	var n int64
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		var err error
		n, err = t.accExec(sqlWkPrune, t.nowUS-offlineFor.Microseconds())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune nodes: %w", err)
	}
	return int(n), nil
}

// RescueExpiredJobs implements store.Workers as RescueExpired does (see
// there), collecting the jobs each fenced write moved.
func (s *Store) RescueExpiredJobs(ctx context.Context, limit int, retryAt func(*store.Job) time.Duration) ([]*store.Job, time.Duration, error) {
	if limit <= 0 {
		return nil, 0, nil
	}
	st, err := s.rstmts.get(ctx, s.read, rsRescueSelect)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: rescue expired: %w", err)
	}
	rows, err := st.QueryContext(ctx, time.Now().UnixMicro(), int64(limit))
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: rescue expired: %w", err)
	}
	var expired []*store.Job
	r := newJobRow()
	for rows.Next() {
		j, err := r.scan(rows)
		if err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("sqlite: rescue expired: %w", err)
		}
		expired = append(expired, j)
	}
	if err := rows.Close(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: rescue expired: %w", err)
	}
	delays := make([]time.Duration, len(expired))
	for i, j := range expired {
		if j.Attempt < j.MaxAttempts {
			delays[i] = retryAt(j)
		}
	}

	var (
		moved []*store.Job
		next  time.Duration
	)
	err = s.w.do(ctx, true, func(t *wtx) error {
		moved, next = moved[:0], 0
		at := t.errorTime()
		var earliest int64
		scheduled := false
		for i, j := range expired {
			var (
				k     int64
				err   error
				runAt = j.RunAt
				state = store.StateDead
			)
			if j.Attempt < j.MaxAttempts {
				us := t.nowUS + delays[i].Microseconds()
				k, err = t.execN(stRescueRetry, at, leaseExpiredMessage, us, j.ID, int64(j.Attempt), j.LeaseToken, t.nowUS)
				if k > 0 && (!scheduled || us < earliest) {
					earliest, scheduled = us, true
				}
				runAt, state = fromMicros(us), store.StateRetryable
			} else {
				k, err = t.execN(stRescueDead, at, leaseExpiredMessage, t.nowUS, j.ID, int64(j.Attempt), j.LeaseToken, t.nowUS)
			}
			if err != nil {
				return fmt.Errorf("job %d: %w", j.ID, err)
			}
			if k > 0 {
				m := *j
				m.State, m.RunAt = state, runAt
				m.LeaseToken, m.LeaseExpiresAt, m.LeasedBy = 0, time.Time{}, ""
				if state == store.StateDead {
					m.FinishedAt = t.now.UTC()
				}
				moved = append(moved, &m)
			}
		}
		if scheduled {
			t.notify(store.Notification{Kind: store.NotifyScheduled, At: fromMicros(earliest)})
		}
		var first sqlNullInt
		if err := t.queryRow(stNextLeaseExpiry).Scan(&first); err != nil {
			return err
		}
		if first.valid {
			next = max(time.Duration(first.v-t.nowUS)*time.Microsecond, time.Microsecond)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: rescue expired: %w", err)
	}
	return moved, next, nil
}
