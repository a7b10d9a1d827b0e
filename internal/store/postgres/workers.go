package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// store.Workers. Every time is the database's now(). Heartbeats commit
// asynchronously: losing one in a crash only makes the node look older
// than it is until its next.

const (
	wkCols = `id, tenant_id, all_tenants, queues, all_queues, hostname, pid, timeout_us, started_at, last_seen_at, offline_at`

	sqlWkRegister = `INSERT INTO switchyard.workers (` + wkCols + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now(), NULL)
ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, all_tenants = excluded.all_tenants,
	queues = excluded.queues, all_queues = excluded.all_queues, hostname = excluded.hostname,
	pid = excluded.pid, timeout_us = excluded.timeout_us, started_at = now(), last_seen_at = now(), offline_at = NULL
RETURNING ` + wkCols
	sqlWkHeartbeat = `UPDATE switchyard.workers SET last_seen_at = now() WHERE id = $1 AND offline_at IS NULL`
	// Parameters: tenant id, or NULL for every tenant.
	sqlWkList = `SELECT ` + wkCols + ` FROM switchyard.workers
WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY id`
	// A concurrent caller blocks on the rows this one updates, then finds
	// offline_at set when it re-checks them, so each node is returned once.
	// Parameters: silent for, in microseconds.
	sqlWkMarkOffline = `UPDATE switchyard.workers SET offline_at = now()
WHERE offline_at IS NULL AND last_seen_at < now() - greatest($1::bigint, timeout_us) * interval '1 microsecond'
RETURNING ` + wkCols
	sqlWkDelete = `DELETE FROM switchyard.workers WHERE id = $1 RETURNING ` + wkCols
	sqlWkPrune  = `DELETE FROM switchyard.workers
WHERE offline_at IS NOT NULL AND offline_at < now() - $1::bigint * interval '1 microsecond'`

	// sqlRescueUpdateJobs moves the expired jobs $3 to retryable (after
	// their delay $4, in microseconds) or dead, and answers them.
	sqlRescueUpdateJobs = `WITH upd AS (
	UPDATE switchyard.jobs j SET
		state = CASE WHEN j.attempt < j.max_attempts THEN 'retryable' ELSE 'dead' END,
		run_at = CASE WHEN j.attempt < j.max_attempts
			THEN now() + u.retry_us * interval '1 microsecond' ELSE j.run_at END,
		finished_at = CASE WHEN j.attempt < j.max_attempts THEN NULL ELSE now() END,
		errors = j.errors || jsonb_build_array(jsonb_build_object(
			'attempt', j.attempt, 'at', ` + nowRFC3339 + `, 'message', '` + leaseExpiredMessage + `'::text)),
		lease_token = 0, lease_expires_at = NULL, leased_by = NULL
	FROM unnest($3::bigint[], $4::bigint[]) AS u(id, retry_us)
	WHERE j.id = u.id AND j.state = 'running'
	RETURNING ` + jobColumnsJ + `
), notes AS (` + notesPre + `upd` + notesMid + `upd` + notesPost + `)
SELECT ` + jobColumns + ` FROM upd` + notesFilter
)

// nodeScan holds the destinations of one row of wkCols.
type nodeScan struct {
	n                   store.NodeInfo
	pid                 int32
	timeout             int64
	started, seen, gone pgtype.Timestamptz
}

func (s *nodeScan) dests() []any {
	n := &s.n
	return []any{&n.ID, &n.TenantID, &n.AllTenants, &n.Queues, &n.AllQueues, &n.Hostname, &s.pid, &s.timeout, &s.started, &s.seen, &s.gone}
}

func (s *nodeScan) result() store.NodeInfo {
	n := s.n
	n.PID = int(s.pid)
	n.Timeout = time.Duration(s.timeout) * time.Microsecond
	n.StartedAt, n.LastSeenAt = s.started.Time.UTC(), s.seen.Time.UTC()
	if s.gone.Valid {
		n.OfflineAt = s.gone.Time.UTC()
	}
	if n.Queues == nil {
		n.Queues = []string{}
	}
	return n
}

func collectNodes(rows pgx.Rows) ([]store.NodeInfo, error) {
	defer rows.Close()
	out := []store.NodeInfo{}
	var ns nodeScan
	dests := ns.dests()
	for rows.Next() {
		ns = nodeScan{}
		if err := rows.Scan(dests...); err != nil {
			return nil, err
		}
		out = append(out, ns.result())
	}
	return out, rows.Err()
}

// RegisterNode implements store.Workers.
func (s *Store) RegisterNode(ctx context.Context, n store.NodeInfo) (store.NodeInfo, error) {
	queues := n.Queues
	if queues == nil {
		queues = []string{}
	}
	var ns nodeScan
	err := s.pool.QueryRow(ctx, sqlWkRegister, n.ID, n.TenantID, n.AllTenants, queues, n.AllQueues, n.Hostname, int32(n.PID), n.Timeout.Microseconds()).Scan(ns.dests()...)
	if err != nil {
		return store.NodeInfo{}, fmt.Errorf("postgres: register node %s: %w", n.ID, err)
	}
	return ns.result(), nil
}

// HeartbeatNode implements store.Workers.
func (s *Store) HeartbeatNode(ctx context.Context, nodeID string) error {
	b := &pgx.Batch{}
	b.Queue(sqlAsyncCommit)
	b.Queue(sqlWkHeartbeat, nodeID)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var tag interface{ RowsAffected() int64 }
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgres: heartbeat node %s: %w", nodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: heartbeat node %s: %w", nodeID, store.ErrNotFound)
	}
	return nil
}

// ListNodes implements store.Workers.
func (s *Store) ListNodes(ctx context.Context, tenantID string) ([]store.NodeInfo, error) {
	var tenant *string
	if tenantID != "" {
		tenant = &tenantID
	}
	rows, err := s.pool.Query(ctx, sqlWkList, tenant)
	if err != nil {
		return nil, fmt.Errorf("postgres: list nodes: %w", err)
	}
	ns, err := collectNodes(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list nodes: %w", err)
	}
	return ns, nil
}

// MarkNodesOffline implements store.Workers.
func (s *Store) MarkNodesOffline(ctx context.Context, silentFor time.Duration) ([]store.NodeInfo, error) {
	rows, err := s.pool.Query(ctx, sqlWkMarkOffline, silentFor.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: mark nodes offline: %w", err)
	}
	ns, err := collectNodes(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: mark nodes offline: %w", err)
	}
	return ns, nil
}

// DeleteNode implements store.Workers.
func (s *Store) DeleteNode(ctx context.Context, nodeID string) (store.NodeInfo, error) {
	var ns nodeScan
	err := s.pool.QueryRow(ctx, sqlWkDelete, nodeID).Scan(ns.dests()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.NodeInfo{}, fmt.Errorf("postgres: delete node %s: %w", nodeID, store.ErrNotFound)
	}
	if err != nil {
		return store.NodeInfo{}, fmt.Errorf("postgres: delete node %s: %w", nodeID, err)
	}
	return ns.result(), nil
}

// PruneNodes implements store.Workers.
func (s *Store) PruneNodes(ctx context.Context, offlineFor time.Duration) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlWkPrune, offlineFor.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("postgres: prune nodes: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RescueExpiredJobs implements store.Workers as RescueExpired does (see
// there), answering the moved jobs.
func (s *Store) RescueExpiredJobs(ctx context.Context, limit int, retryAt func(*store.Job) time.Duration) ([]*store.Job, time.Duration, error) {
	var (
		moved []*store.Job
		next  time.Duration
		notes noteSet
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		moved, notes = nil, noteSet{}
		rows, err := tx.Query(ctx, sqlRescueSelect, limit)
		if err != nil {
			return err
		}
		jobs, err := collectJobs(rows, 0)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		if len(jobs) > 0 {
			ids := make([]int64, len(jobs))
			retry := make([]int64, len(jobs))
			for i, j := range jobs {
				ids[i] = j.ID
				if retryAt != nil && j.Attempt < j.MaxAttempts {
					retry[i] = retryAt(j).Microseconds()
				}
			}
			b.Queue(sqlRescueUpdateJobs, "", s.origin, ids, retry)
		}
		b.Queue(sqlNextLeaseExpiry)
		var reads []func(pgx.Rows) error
		if len(jobs) > 0 {
			reads = append(reads, func(rows pgx.Rows) error {
				js, err := collectJobs(rows, len(jobs))
				if err != nil {
					return err
				}
				for _, j := range js {
					notes.add(j.TenantID, j.Queue, j.State, j.RunAt)
				}
				moved = js
				return nil
			})
		}
		reads = append(reads, readNext(&next, 0))
		return readBatch(tx.SendBatch(ctx, b), reads...)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: rescue expired: %w", err)
	}
	s.publish(notes.list...)
	return moved, next, nil
}
