package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Hub payloads travel on the Store's notification channel, like every
// other notification, so that one LISTEN connection hears everything and
// PostgreSQL orders hub messages among themselves: every listening session
// receives NOTIFYs in the commit order of their transactions.
//
// On the wire a hub notification is not JSON (every other one is an object,
// starting with '{'), so the listener routes it without decoding it:
//
//	h<payload>   the payload inline
//	r<id>        the payload is row id of switchyard.hub_payloads
//
// The payload goes inline when it fits in a NOTIFY (under 8000 bytes with
// its prefix) and is text PostgreSQL accepts (valid UTF-8 without NUL).
// Unlike the engine's wake-ups, a hub send is never delivered locally first:
// the sender's own listener hears it in the same order as every other node.
// The sending transaction commits asynchronously: a notification is lost
// with the server anyway, and the payload rows are UNLOGGED for the same
// reason.

const (
	hubInline = 'h'
	hubRef    = 'r'
	// maxNotifyPayload is the longest payload NOTIFY accepts.
	maxNotifyPayload = 7999
)

const (
	sqlHubNotify = `SELECT pg_notify($1::text, $2::text)`
	sqlHubStore  = `WITH p AS (INSERT INTO switchyard.hub_payloads (payload) VALUES ($2::bytea) RETURNING id)
SELECT pg_notify($1::text, 'r' || p.id::text) FROM p`
	sqlHubPayload = `SELECT payload FROM switchyard.hub_payloads WHERE id = $1`
	sqlHubDelete  = `DELETE FROM switchyard.hub_payloads WHERE id IN (
	SELECT id FROM switchyard.hub_payloads WHERE created_at < $1 ORDER BY id LIMIT $2::bigint)`
)

// HubSend implements store.Hub.
func (s *Store) HubSend(ctx context.Context, payload []byte) error {
	b := &pgx.Batch{}
	b.Queue(sqlAsyncCommit)
	if hubFitsInline(payload) {
		note := make([]byte, 0, 1+len(payload))
		note = append(append(note, hubInline), payload...)
		b.Queue(sqlHubNotify, s.channel, string(note))
	} else {
		b.Queue(sqlHubStore, s.channel, payload)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: hub send: %w", err)
	}
	return nil
}

// hubFitsInline reports whether payload can be a NOTIFY payload.
func hubFitsInline(payload []byte) bool {
	return 1+len(payload) <= maxNotifyPayload && bytes.IndexByte(payload, 0) < 0 && utf8.Valid(payload)
}

// HubPayload implements store.Hub.
func (s *Store) HubPayload(ctx context.Context, ref int64) ([]byte, error) {
	var p []byte
	err := s.pool.QueryRow(ctx, sqlHubPayload, ref).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: hub payload %d: %w", ref, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: hub payload %d: %w", ref, err)
	}
	return p, nil
}

// DeleteHubPayloadsBefore implements store.Hub.
func (s *Store) DeleteHubPayloadsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlHubDelete, before, pgLimit(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete hub payloads: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// hubNote decodes a hub notification's wire form; ok is false for anything
// else.
func hubNote(p string) (n store.Notification, ok bool) {
	if p == "" {
		return n, false
	}
	switch p[0] {
	case hubInline:
		return store.Notification{Kind: store.NotifyHub, Payload: p[1:]}, true
	case hubRef:
		id, err := strconv.ParseInt(p[1:], 10, 64)
		if err != nil || id <= 0 {
			return n, false
		}
		return store.Notification{Kind: store.NotifyHub, HubRef: id}, true
	}
	return n, false
}

// OpenSibling opens a second Store on this Store's database, sharing its
// connection pool, as another node would (its own listener, its own
// origin). Close it before this Store, which owns the pool. Tests use it to
// stand for a second node.
func (s *Store) OpenSibling(ctx context.Context) (store.Store, error) {
	sib, err := Open(ctx, Config{Pool: s.pool, Channel: s.channel, NoMigrate: true, Logger: s.log, VacuumEvery: -1})
	if err != nil {
		return nil, err
	}
	return sib, nil
}
