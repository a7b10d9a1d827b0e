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

// CreateAPIKey implements store.Store. With onlyIfNone the table is locked
// against other writers for the check, so nodes starting together create one
// first key between them.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey, onlyIfNone bool) (bool, error) {
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if onlyIfNone {
			if _, err := tx.Exec(ctx, sqlLockKeys); err != nil {
				return err
			}
			var exists bool
			if err := tx.QueryRow(ctx, sqlAnyKey).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return nil
			}
		}
		if _, err := tx.Exec(ctx, sqlInsertKey, k.ID, k.TenantID, k.Name, k.Role, k.Prefix, k.Hash,
			nullTime(k.CreatedAt), nullTime(k.ExpiresAt)); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: create api key: %w", err)
	}
	return created, nil
}

// APIKeyByHash implements store.Store.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*store.APIKey, error) {
	var (
		k                                   store.APIKey
		created, expires, lastUsed, revoked pgtype.Timestamptz
	)
	err := s.pool.QueryRow(ctx, sqlKeyByHash, hash).Scan(&k.ID, &k.TenantID, &k.Name, &k.Role, &k.Prefix, &k.Hash,
		&created, &expires, &lastUsed, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: api key: %w", err)
	}
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt = timeOf(created), timeOf(expires), timeOf(lastUsed), timeOf(revoked)
	return &k, nil
}

func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// TouchAPIKey implements store.Store.
func (s *Store) TouchAPIKey(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, sqlTouchKey, id)
	if err != nil {
		return fmt.Errorf("postgres: touch api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: touch api key: %w", store.ErrNotFound)
	}
	return nil
}

// RevokeAPIKey implements store.Store. Other nodes hear of it through the
// publisher and drop their cached keys.
func (s *Store) RevokeAPIKey(ctx context.Context, tenantID, id string) error {
	var revoked, exists bool
	if err := s.pool.QueryRow(ctx, sqlRevokeKey, id, tenantID).Scan(&revoked, &exists); err != nil {
		return fmt.Errorf("postgres: revoke api key: %w", err)
	}
	switch {
	case !exists:
		return fmt.Errorf("postgres: revoke api key: %w", store.ErrNotFound)
	case !revoked:
		return fmt.Errorf("postgres: revoke api key: key %s is revoked already: %w", id, store.ErrConflict)
	}
	s.publish(store.Notification{Kind: store.NotifyKeys})
	return nil
}
