package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// readStmts caches the read pool's prepared statements. They are prepared
// on first use, once the tables exist; database/sql prepares each again on
// every pool connection it runs on.
type readStmts struct {
	mu    sync.Mutex
	stmts [numReadStmts]*sql.Stmt
}

func (r *readStmts) get(ctx context.Context, db *sql.DB, id rstmtID) (*sql.Stmt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stmts[id]; st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, readSQL[id])
	if err != nil {
		return nil, err
	}
	r.stmts[id] = st
	return st, nil
}

func (r *readStmts) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, st := range r.stmts {
		if st != nil {
			st.Close()
			r.stmts[i] = nil
		}
	}
}

// Get returns one job of the tenant.
func (s *Store) Get(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	st, err := s.rstmts.get(ctx, s.read, rsGet)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get job %d: %w", id, err)
	}
	j, err := scanJob(st.QueryRowContext(ctx, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get job %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get job %d: %w", id, err)
	}
	return j, nil
}

// List returns a page of the tenant's jobs, newest first. A Limit <= 0
// means no limit (SQLite reads LIMIT -1 as none).
func (s *Store) List(ctx context.Context, p store.ListParams) ([]*store.Job, error) {
	var q strings.Builder
	args := make([]any, 0, 7)
	q.WriteString(listSelect)
	args = append(args, p.TenantID)
	if p.Queue != "" {
		q.WriteString(listQueue)
		args = append(args, p.Queue)
	}
	if p.State != "" {
		q.WriteString(listState)
		args = append(args, p.State)
	}
	if p.Kind != "" {
		q.WriteString(listKind)
		args = append(args, p.Kind)
	}
	if p.Tag != "" {
		q.WriteString(listTag)
		args = append(args, p.Tag)
	}
	if p.Before > 0 {
		q.WriteString(listBefore)
		args = append(args, p.Before)
	}
	q.WriteString(listOrderBy)
	limit := int64(p.Limit)
	if limit <= 0 {
		limit = -1
	}
	args = append(args, limit)

	rows, err := s.read.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list jobs: %w", err)
	}
	defer rows.Close()
	jobs := []*store.Job{}
	r := newJobRow()
	for rows.Next() {
		j, err := r.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list jobs: %w", err)
	}
	return jobs, nil
}

// Queues lists the tenant's queues, by name: those with a settings row or
// any job. Both queries read one snapshot.
func (s *Store) Queues(ctx context.Context, tenantID string) ([]store.Queue, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: queues: %w", err)
	}
	defer tx.Rollback() // read-only: nothing to commit

	byName := map[string]*store.Queue{}
	queue := func(name string) *store.Queue {
		q := byName[name]
		if q == nil {
			q = &store.Queue{TenantID: tenantID, Name: name, Counts: make(map[string]int64, len(store.AllStates))}
			for _, st := range store.AllStates {
				q.Counts[st] = 0
			}
			byName[name] = q
		}
		return q
	}

	rows, err := tx.QueryContext(ctx, readSQL[rsQueueRows], tenantID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queues: %w", err)
	}
	for rows.Next() {
		var name string
		var paused bool
		var concurrency, updated sqlInt
		if err := rows.Scan(&name, &paused, &concurrency, &updated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: queues: %w", err)
		}
		q := queue(name)
		q.Paused = paused
		q.Concurrency = int(concurrency)
		q.UpdatedAt = fromMicros(int64(updated))
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: queues: %w", err)
	}

	rows, err = tx.QueryContext(ctx, readSQL[rsQueueCounts], tenantID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queues: %w", err)
	}
	for rows.Next() {
		var name, state string
		var n sqlInt
		if err := rows.Scan(&name, &state, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: queues: %w", err)
		}
		queue(name).Counts[state] = int64(n)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: queues: %w", err)
	}

	out := make([]store.Queue, 0, len(byName))
	for _, q := range byName {
		out = append(out, *q)
	}
	slices.SortFunc(out, func(a, b store.Queue) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// QueueSettings reads a queue's settings; the zero value if it has no row.
func (s *Store) QueueSettings(ctx context.Context, tenantID, queue string) (store.QueueSettings, error) {
	var qs store.QueueSettings
	st, err := s.rstmts.get(ctx, s.read, rsQueueSettings)
	if err != nil {
		return qs, fmt.Errorf("sqlite: queue settings: %w", err)
	}
	var concurrency sqlInt
	err = st.QueryRowContext(ctx, tenantID, queue).Scan(&qs.Paused, &concurrency)
	if errors.Is(err, sql.ErrNoRows) {
		return qs, nil
	}
	if err != nil {
		return qs, fmt.Errorf("sqlite: queue settings: %w", err)
	}
	qs.Concurrency = int(concurrency)
	return qs, nil
}

// QueueNames lists the queues with a settings row or waiting jobs.
func (s *Store) QueueNames(ctx context.Context, tenantID string) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, readSQL[rsQueueNames], tenantID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queue names: %w", err)
	}
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: queue names: %w", err)
		}
		names = append(names, name)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: queue names: %w", err)
	}
	return names, nil
}

// AllQueueNames lists the queues of every tenant with a settings row or
// waiting jobs.
func (s *Store) AllQueueNames(ctx context.Context) ([]store.TenantQueue, error) {
	rows, err := s.read.QueryContext(ctx, readSQL[rsAllQueueNames])
	if err != nil {
		return nil, fmt.Errorf("sqlite: all queue names: %w", err)
	}
	var qs []store.TenantQueue
	for rows.Next() {
		var q store.TenantQueue
		if err := rows.Scan(&q.TenantID, &q.Queue); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: all queue names: %w", err)
		}
		qs = append(qs, q)
	}
	err = rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: all queue names: %w", err)
	}
	return qs, nil
}

// APIKeyByHash finds a key by its secret's hash.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	st, err := s.rstmts.get(ctx, s.read, rsKeyByHash)
	if err != nil {
		return nil, fmt.Errorf("sqlite: api key: %w", err)
	}
	var (
		k                          store.APIKey
		created                    sqlInt
		expires, lastUsed, revoked sql.NullInt64
	)
	err = st.QueryRowContext(ctx, hash).Scan(&k.ID, &k.TenantID, &k.Name, &k.Role, &k.Prefix, &k.Hash, &created, &expires, &lastUsed, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: api key: %w", err)
	}
	k.CreatedAt = fromMicros(int64(created))
	k.ExpiresAt, k.LastUsedAt, k.RevokedAt = nullMicros(expires), nullMicros(lastUsed), nullMicros(revoked)
	return &k, nil
}
