package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// store.Access. Every change to a credential or a role is announced with
// NotifyKeys through publish after its transaction committed, as
// RevokeAPIKey does: this node drops its caches at once, the others when
// the publisher's pg_notify reaches them.

const (
	accTenantCols  = `id, name, created_at, rate_limit, rate_burst`
	accUserCols    = `id, email, password_hash, instance_admin, created_at`
	accKeyCols     = `id, tenant_id, name, role, prefix, hash, created_at, expires_at, last_used_at, revoked_at`
	accRefreshCols = `id, hash, family_id, user_id, created_at, expires_at, used_at, revoked_at`
	accAuditCols   = `id, at, tenant_id, actor_type, actor_id, action, target, result, status, client_ip, request_id, detail`
	// Memberships are read with the member's email; a LEFT JOIN because
	// nothing but the callers keeps a user from disappearing.
	accMemberSelect = `SELECT m.tenant_id, m.user_id, m.role, m.created_at, coalesce(u.email, '')
FROM switchyard.memberships m LEFT JOIN switchyard.users u ON u.id = m.user_id`
)

const (
	sqlAccInsertTenant = `INSERT INTO switchyard.tenants (` + accTenantCols + `)
VALUES ($1, $2, coalesce($3, now()), $4, $5)`
	sqlAccGetTenant    = `SELECT ` + accTenantCols + ` FROM switchyard.tenants WHERE id = $1`
	sqlAccListTenants  = `SELECT ` + accTenantCols + ` FROM switchyard.tenants WHERE id > $1 ORDER BY id LIMIT $2::bigint`
	sqlAccUpdateTenant = `UPDATE switchyard.tenants SET name = $2, rate_limit = $3, rate_burst = $4 WHERE id = $1`

	sqlAccInsertUser = `INSERT INTO switchyard.users (` + accUserCols + `)
VALUES ($1, $2, $3, $4, coalesce($5, now()))`
	sqlAccGetUser     = `SELECT ` + accUserCols + ` FROM switchyard.users WHERE id = $1`
	sqlAccUserByEmail = `SELECT ` + accUserCols + ` FROM switchyard.users WHERE email = $1`
	sqlAccSetPassword = `UPDATE switchyard.users SET password_hash = $2 WHERE id = $1`
	sqlAccRevokeUser  = `UPDATE switchyard.refresh_tokens SET revoked_at = now()
WHERE user_id = $1 AND revoked_at IS NULL`

	// sqlAccSetMembership inserts or updates a membership if its tenant and
	// user exist, and says which exist and whether it inserted (xmax is 0
	// only on a row version this statement inserted).
	sqlAccSetMembership = `WITH refs AS (
	SELECT EXISTS (SELECT 1 FROM switchyard.tenants WHERE id = $1) AS tenant_ok,
	       EXISTS (SELECT 1 FROM switchyard.users WHERE id = $2) AS user_ok
), up AS (
	INSERT INTO switchyard.memberships (tenant_id, user_id, role, created_at)
	SELECT $1, $2, $3, coalesce($4, now()) FROM refs WHERE tenant_ok AND user_ok
	ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role
	RETURNING xmax = 0 AS created
)
SELECT tenant_ok, user_ok, coalesce((SELECT created FROM up), false) FROM refs`
	sqlAccGetMembership    = accMemberSelect + ` WHERE m.tenant_id = $1 AND m.user_id = $2`
	sqlAccDeleteMembership = `DELETE FROM switchyard.memberships WHERE tenant_id = $1 AND user_id = $2`
	sqlAccUserMemberships  = accMemberSelect + ` WHERE m.user_id = $1 ORDER BY m.tenant_id`
	sqlAccTenantMembers    = accMemberSelect + ` WHERE m.tenant_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3::bigint`

	sqlAccGetKey   = `SELECT ` + accKeyCols + ` FROM switchyard.api_keys WHERE id = $1 AND tenant_id = $2`
	sqlAccListKeys = `SELECT ` + accKeyCols + ` FROM switchyard.api_keys
WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3::bigint`

	sqlAccInsertRefresh = `INSERT INTO switchyard.refresh_tokens (` + accRefreshCols + `)
VALUES ($1, $2, $3, $4, coalesce($5, now()), $6, $7, $8)`
	// sqlAccUseRefresh marks a usable token used. A concurrent use waits
	// for the row lock, then finds used_at set and matches nothing.
	sqlAccUseRefresh = `UPDATE switchyard.refresh_tokens SET used_at = now()
WHERE hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING ` + accRefreshCols
	sqlAccRefreshByHash = `SELECT ` + accRefreshCols + `, now() FROM switchyard.refresh_tokens WHERE hash = $1`
	sqlAccRevokeFamily  = `UPDATE switchyard.refresh_tokens SET revoked_at = now()
WHERE family_id = $1 AND revoked_at IS NULL`
	sqlAccFamilyActive = `SELECT EXISTS (SELECT 1 FROM switchyard.refresh_tokens
WHERE family_id = $1 AND revoked_at IS NULL AND expires_at > now())`

	// sqlAccAppendAudit inserts every entry in one statement; ORDER BY
	// ordinality hands out the ids in slice order.
	sqlAccAppendAudit = `INSERT INTO switchyard.audit_log (at, tenant_id, actor_type, actor_id, action, target, result,
	status, client_ip, request_id, detail)
SELECT coalesce(at, now()), tenant_id, actor_type, actor_id, action, target, result,
	status, client_ip, request_id, detail
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::integer[], $9::text[], $10::text[], $11::text[])
	WITH ORDINALITY AS e(at, tenant_id, actor_type, actor_id, action, target, result,
	status, client_ip, request_id, detail, ord)
ORDER BY ord`
	// The oldest $2 entries by id, those of them older than $1.
	sqlAccDeleteAudit = `DELETE FROM switchyard.audit_log WHERE id IN (
	SELECT id FROM (SELECT id, at FROM switchyard.audit_log ORDER BY id LIMIT $2::bigint) oldest WHERE at < $1)`

	sqlAccDeleteIdleBuckets = `DELETE FROM switchyard.rate_buckets WHERE key IN (
	SELECT key FROM switchyard.rate_buckets WHERE updated_at < $1 LIMIT $2::bigint)`

	sqlAccGetSecret    = `SELECT value FROM switchyard.instance_secrets WHERE name = $1`
	sqlAccInsertSecret = `INSERT INTO switchyard.instance_secrets (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING`
)

// accRefill is the bucket's tokens now: what it held plus what rate ($2)
// added since, capped at burst ($3). A transaction that started before the
// last update (it waited for that row) adds nothing rather than counting
// the same interval twice.
const accRefill = `least($3::integer, b.tokens + $2::float8 * greatest(0, extract(epoch FROM now() - b.updated_at))::float8)`

// sqlAccTakeTokens takes min(want, whole tokens) from bucket $1 in one
// statement: the upsert locks the row, so concurrent takers queue on it
// and each sees the one before. A new bucket starts full. Parameters: key,
// rate, burst, want.
const sqlAccTakeTokens = `INSERT INTO switchyard.rate_buckets AS b (key, tokens, taken, updated_at)
VALUES ($1, $3::integer - least($4::integer, $3::integer), least($4::integer, $3::integer), now())
ON CONFLICT (key) DO UPDATE SET
	taken = least($4::integer, floor(` + accRefill + `)::integer),
	tokens = ` + accRefill + ` - least($4::integer, floor(` + accRefill + `)::integer),
	updated_at = greatest(b.updated_at, now())
RETURNING taken, tokens`

// defaultAuditLimit is ListAudit's page size when the caller gives none.
const defaultAuditLimit = 100

// pgLimit maps a limit <= 0 to NULL, PostgreSQL's "no limit".
func pgLimit(limit int) *int64 {
	if limit <= 0 {
		return nil
	}
	l := int64(limit)
	return &l
}

// CreateTenant implements store.Access.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	_, err := s.pool.Exec(ctx, sqlAccInsertTenant, t.ID, t.Name, nullTime(t.CreatedAt), t.RateLimit, t.RateBurst)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create tenant: tenant %s exists: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: create tenant: %w", err)
	}
	return nil
}

func scanTenant(row pgx.Row) (*store.Tenant, error) {
	var (
		t       store.Tenant
		created pgtype.Timestamptz
		burst   int32
	)
	if err := row.Scan(&t.ID, &t.Name, &created, &t.RateLimit, &burst); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RateBurst = timeOf(created), int(burst)
	return &t, nil
}

// GetTenant implements store.Access.
func (s *Store) GetTenant(ctx context.Context, id string) (*store.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, sqlAccGetTenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get tenant %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get tenant %s: %w", id, err)
	}
	return t, nil
}

// ListTenants implements store.Access; a limit <= 0 means no limit.
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]*store.Tenant, error) {
	ts, err := accQueryAll(ctx, s.pool, scanTenant, sqlAccListTenants, after, pgLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: list tenants: %w", err)
	}
	return ts, nil
}

// UpdateTenant implements store.Access.
func (s *Store) UpdateTenant(ctx context.Context, t store.Tenant) error {
	tag, err := s.pool.Exec(ctx, sqlAccUpdateTenant, t.ID, t.Name, t.RateLimit, t.RateBurst)
	if err != nil {
		return fmt.Errorf("postgres: update tenant %s: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: update tenant %s: %w", t.ID, store.ErrNotFound)
	}
	return nil
}

// CreateUser implements store.Access; ErrConflict if the email (or the id)
// is taken.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.pool.Exec(ctx, sqlAccInsertUser, u.ID, u.Email, u.PasswordHash, u.InstanceAdmin, nullTime(u.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create user: email or id taken: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	return nil
}

func scanUser(row pgx.Row) (*store.User, error) {
	var (
		u       store.User
		created pgtype.Timestamptz
	)
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.InstanceAdmin, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = timeOf(created)
	return &u, nil
}

// GetUser implements store.Access.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, sqlAccGetUser, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get user: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get user: %w", err)
	}
	return u, nil
}

// UserByEmail implements store.Access.
func (s *Store) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, sqlAccUserByEmail, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: user by email: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: user by email: %w", err)
	}
	return u, nil
}

// SetUserPassword implements store.Access. The new hash and the revocation
// of the user's refresh tokens commit together, so no session outlives the
// password it was opened with.
func (s *Store) SetUserPassword(ctx context.Context, userID, hash string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sqlAccSetPassword, userID, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, sqlAccRevokeUser, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set user password: %w", err)
	}
	s.publish(store.Notification{Kind: store.NotifyKeys})
	return nil
}

// SetMembership implements store.Access. An unknown tenant or user answers
// ErrNotFound: without foreign keys, the store is what keeps a membership
// from pointing at nothing.
func (s *Store) SetMembership(ctx context.Context, m store.Membership) (bool, error) {
	var tenantOK, userOK, created bool
	if err := s.pool.QueryRow(ctx, sqlAccSetMembership, m.TenantID, m.UserID, m.Role, nullTime(m.CreatedAt)).
		Scan(&tenantOK, &userOK, &created); err != nil {
		return false, fmt.Errorf("postgres: set membership: %w", err)
	}
	switch {
	case !tenantOK:
		return false, fmt.Errorf("postgres: set membership: tenant %s: %w", m.TenantID, store.ErrNotFound)
	case !userOK:
		return false, fmt.Errorf("postgres: set membership: user %s: %w", m.UserID, store.ErrNotFound)
	}
	s.publish(store.Notification{Kind: store.NotifyKeys})
	return created, nil
}

func scanMembership(row pgx.Row) (store.Membership, error) {
	var (
		m       store.Membership
		created pgtype.Timestamptz
	)
	if err := row.Scan(&m.TenantID, &m.UserID, &m.Role, &created, &m.Email); err != nil {
		return m, err
	}
	m.CreatedAt = timeOf(created)
	return m, nil
}

// GetMembership implements store.Access.
func (s *Store) GetMembership(ctx context.Context, tenantID, userID string) (*store.Membership, error) {
	m, err := scanMembership(s.pool.QueryRow(ctx, sqlAccGetMembership, tenantID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get membership: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get membership: %w", err)
	}
	return &m, nil
}

// DeleteMembership implements store.Access.
func (s *Store) DeleteMembership(ctx context.Context, tenantID, userID string) error {
	tag, err := s.pool.Exec(ctx, sqlAccDeleteMembership, tenantID, userID)
	if err != nil {
		return fmt.Errorf("postgres: delete membership: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete membership: %w", store.ErrNotFound)
	}
	s.publish(store.Notification{Kind: store.NotifyKeys})
	return nil
}

// UserMemberships implements store.Access.
func (s *Store) UserMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	ms, err := accQueryAll(ctx, s.pool, scanMembership, sqlAccUserMemberships, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: user memberships: %w", err)
	}
	return ms, nil
}

// TenantMembers implements store.Access; a limit <= 0 means no limit.
func (s *Store) TenantMembers(ctx context.Context, tenantID, after string, limit int) ([]store.Membership, error) {
	ms, err := accQueryAll(ctx, s.pool, scanMembership, sqlAccTenantMembers, tenantID, after, pgLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: tenant members: %w", err)
	}
	return ms, nil
}

func scanKey(row pgx.Row) (*store.APIKey, error) {
	var (
		k                                   store.APIKey
		created, expires, lastUsed, revoked pgtype.Timestamptz
	)
	if err := row.Scan(&k.ID, &k.TenantID, &k.Name, &k.Role, &k.Prefix, &k.Hash,
		&created, &expires, &lastUsed, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt = timeOf(created), timeOf(expires), timeOf(lastUsed), timeOf(revoked)
	return &k, nil
}

// GetAPIKey implements store.Access.
func (s *Store) GetAPIKey(ctx context.Context, tenantID, id string) (*store.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, sqlAccGetKey, id, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get api key: %w", err)
	}
	return k, nil
}

// ListAPIKeys implements store.Access; a limit <= 0 means no limit.
func (s *Store) ListAPIKeys(ctx context.Context, tenantID, after string, limit int) ([]*store.APIKey, error) {
	ks, err := accQueryAll(ctx, s.pool, scanKey, sqlAccListKeys, tenantID, after, pgLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: list api keys: %w", err)
	}
	return ks, nil
}

// refreshRow holds the scan destinations of accRefreshCols.
type refreshRow struct {
	t                               store.RefreshToken
	created, expires, used, revoked pgtype.Timestamptz
}

func (r *refreshRow) dest() []any {
	return []any{&r.t.ID, &r.t.Hash, &r.t.FamilyID, &r.t.UserID, &r.created, &r.expires, &r.used, &r.revoked}
}

func (r *refreshRow) token() *store.RefreshToken {
	t := r.t
	t.CreatedAt, t.ExpiresAt, t.UsedAt, t.RevokedAt = timeOf(r.created), timeOf(r.expires), timeOf(r.used), timeOf(r.revoked)
	return &t
}

// checkRefresh rejects a token the schema would store meaninglessly. A
// successor's family and user come from the token it replaces, so they are
// only checked with owned.
func checkRefresh(t store.RefreshToken, owned bool) error {
	switch {
	case t.ID == "" || len(t.Hash) == 0:
		return errors.New("refresh token needs an id and a hash")
	case owned && (t.FamilyID == "" || t.UserID == ""):
		return errors.New("refresh token needs a family and a user")
	case t.ExpiresAt.IsZero():
		return errors.New("refresh token needs an expiry")
	}
	return nil
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertRefresh(ctx context.Context, q execer, t store.RefreshToken) error {
	_, err := q.Exec(ctx, sqlAccInsertRefresh, t.ID, t.Hash, t.FamilyID, t.UserID,
		nullTime(t.CreatedAt), t.ExpiresAt, nullTime(t.UsedAt), nullTime(t.RevokedAt))
	return err
}

// CreateRefreshToken implements store.Access.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := checkRefresh(t, true); err != nil {
		return fmt.Errorf("postgres: create refresh token: %w", err)
	}
	err := insertRefresh(ctx, s.pool, t)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create refresh token: id or hash exists: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: create refresh token: %w", err)
	}
	return nil
}

// RotateRefreshToken implements store.Access. Marking the token used and
// storing its successor commit together. A use that finds the token used
// revokes the family instead, and that must commit, so the transaction
// succeeds and the reuse is reported after the commit.
func (s *Store) RotateRefreshToken(ctx context.Context, hash []byte, next store.RefreshToken) (*store.RefreshToken, error) {
	if err := checkRefresh(next, false); err != nil {
		return nil, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	var (
		used            *store.RefreshToken
		reused, revoked bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		used, reused, revoked = nil, false, false
		var r refreshRow
		err := tx.QueryRow(ctx, sqlAccUseRefresh, hash).Scan(r.dest()...)
		if err == nil {
			used = r.token()
			next.FamilyID, next.UserID = used.FamilyID, used.UserID
			return insertRefresh(ctx, tx, next)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Not usable: find out why. A statement of its own sees what a
		// concurrent use committed while the UPDATE waited for it.
		var now time.Time
		if err := tx.QueryRow(ctx, sqlAccRefreshByHash, hash).Scan(append(r.dest(), &now)...); errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		rt := r.token()
		// Used is checked before revocation and expiry: a used token
		// presented again means it leaked, however old it is, and every
		// loser of a race of concurrent uses is told so, not only the
		// first.
		if rt.UsedAt.IsZero() {
			return store.ErrNotFound // revoked or expired
		}
		tag, err := tx.Exec(ctx, sqlAccRevokeFamily, rt.FamilyID)
		if err != nil {
			return err
		}
		if rt.RevokedAt.IsZero() {
			rt.RevokedAt = now.UTC()
		}
		used, reused, revoked = rt, true, tag.RowsAffected() > 0
		return nil
	})
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("postgres: rotate refresh token: next token's id or hash exists: %w", store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	if reused {
		if revoked {
			s.publish(store.Notification{Kind: store.NotifyKeys})
		}
		return used, fmt.Errorf("postgres: rotate refresh token: %w", store.ErrTokenReused)
	}
	return used, nil
}

// RevokeRefreshFamily implements store.Access. Only a change is announced: a
// family revoked already was announced when it was revoked.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	tag, err := s.pool.Exec(ctx, sqlAccRevokeFamily, familyID)
	if err != nil {
		return fmt.Errorf("postgres: revoke refresh family: %w", err)
	}
	if tag.RowsAffected() > 0 {
		s.publish(store.Notification{Kind: store.NotifyKeys})
	}
	return nil
}

// RefreshFamilyActive implements store.Access.
func (s *Store) RefreshFamilyActive(ctx context.Context, familyID string) (bool, error) {
	var active bool
	if err := s.pool.QueryRow(ctx, sqlAccFamilyActive, familyID).Scan(&active); err != nil {
		return false, fmt.Errorf("postgres: refresh family active: %w", err)
	}
	return active, nil
}

// AppendAudit implements store.Access: one statement, so one transaction.
// An entry without a time gets the transaction's.
func (s *Store) AppendAudit(ctx context.Context, entries []store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	n := len(entries)
	var (
		at                                      = make([]pgtype.Timestamptz, n)
		tenant, actorType, actorID, action      = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		target, result, clientIP, reqID, detail = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		status                                  = make([]int32, n)
	)
	for i, e := range entries {
		at[i] = nullTime(e.Time)
		tenant[i], actorType[i], actorID[i], action[i] = e.TenantID, e.ActorType, e.ActorID, e.Action
		target[i], result[i], clientIP[i], reqID[i], detail[i] = e.Target, e.Result, e.ClientIP, e.RequestID, e.Detail
		status[i] = int32(e.Status)
	}
	if _, err := s.pool.Exec(ctx, sqlAccAppendAudit, at, tenant, actorType, actorID, action, target, result,
		status, clientIP, reqID, detail); err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// auditActionFilter reports whether p.Action is a prefix (it ends in "." or
// "*"; the "*" is not part of it) and the value to compare with.
func auditActionFilter(action string) (prefix bool, value string) {
	if p, ok := strings.CutSuffix(action, "*"); ok {
		return true, p
	}
	if strings.HasSuffix(action, ".") {
		return true, action
	}
	return false, action
}

func scanAudit(row pgx.Row) (*store.AuditEntry, error) {
	var (
		e      store.AuditEntry
		at     pgtype.Timestamptz
		status int32
	)
	if err := row.Scan(&e.ID, &at, &e.TenantID, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &e.Result,
		&status, &e.ClientIP, &e.RequestID, &e.Detail); err != nil {
		return nil, err
	}
	e.Time, e.Status = timeOf(at), int(status)
	return &e, nil
}

// ListAudit implements store.Access.
func (s *Store) ListAudit(ctx context.Context, p store.AuditListParams) ([]*store.AuditEntry, error) {
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT ` + accAuditCols + ` FROM switchyard.audit_log WHERE true`)
	add := func(format string, arg any) {
		args = append(args, arg)
		q.WriteString(strings.ReplaceAll(format, "$", "$"+strconv.Itoa(len(args))))
	}
	if p.TenantID != "" {
		add(` AND tenant_id = $`, p.TenantID)
	}
	if p.ActorID != "" {
		add(` AND actor_id = $`, p.ActorID)
	}
	if p.Action != "" {
		if prefix, v := auditActionFilter(p.Action); prefix {
			add(` AND starts_with(action, $)`, v)
		} else {
			add(` AND action = $`, v)
		}
	}
	if p.Target != "" {
		add(` AND target = $`, p.Target)
	}
	if p.Result != "" {
		add(` AND result = $`, p.Result)
	}
	if !p.Since.IsZero() {
		add(` AND at >= $`, p.Since)
	}
	if !p.Until.IsZero() {
		add(` AND at < $`, p.Until)
	}
	if p.BeforeID > 0 {
		add(` AND id < $`, p.BeforeID)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	add(` ORDER BY id DESC LIMIT $`, int64(limit))
	es, err := accQueryAll(ctx, s.pool, scanAudit, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return es, nil
}

// DeleteAuditBefore implements store.Access; a limit <= 0 means no limit.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlAccDeleteAudit, before, pgLimit(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete audit: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteIdleRateBuckets implements store.Access.
func (s *Store) DeleteIdleRateBuckets(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, sqlAccDeleteIdleBuckets, before, pgLimit(limit))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete idle rate buckets: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// checkBucket rejects a token bucket that could never hand out a token.
func checkBucket(rate float64, burst, want int) error {
	switch {
	case !(rate > 0) || math.IsInf(rate, 0):
		return fmt.Errorf("rate %v: want a positive number of tokens per second", rate)
	case burst < 1 || burst > math.MaxInt32:
		return fmt.Errorf("burst %d: want 1 to %d", burst, math.MaxInt32)
	case want < 0 || want > math.MaxInt32:
		return fmt.Errorf("want %d: want 0 to %d", want, math.MaxInt32)
	}
	return nil
}

// refillWait is how long a bucket left with tokens (fewer than one) takes
// to hold a whole token at rate, rounded up to the stored precision so
// that waiting it is always enough.
func refillWait(tokens, rate float64) time.Duration {
	us := math.Ceil((1 - tokens) / rate * 1e6)
	return time.Duration(max(us, 1)) * time.Microsecond
}

// TakeTokens implements store.Access.
func (s *Store) TakeTokens(ctx context.Context, key string, rate float64, burst, want int) (int, time.Duration, error) {
	if err := checkBucket(rate, burst, want); err != nil {
		return 0, 0, fmt.Errorf("postgres: take tokens: %w", err)
	}
	if want == 0 {
		return 0, 0, nil
	}
	var (
		got  int32
		left float64
	)
	if err := s.pool.QueryRow(ctx, sqlAccTakeTokens, key, rate, burst, want).Scan(&got, &left); err != nil {
		return 0, 0, fmt.Errorf("postgres: take tokens: %w", err)
	}
	if int(got) < want {
		return int(got), refillWait(left, rate), nil
	}
	return int(got), 0, nil
}

// InstanceSecret implements store.Access. The insert and the read are two
// statements, not one: the insert waits for a concurrent creator's commit
// and then does nothing, and only a later statement's snapshot sees that
// creator's value.
func (s *Store) InstanceSecret(ctx context.Context, name string, generated []byte) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, sqlAccGetSecret, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: instance secret %s: %w", name, err)
	}
	if len(generated) == 0 {
		return nil, fmt.Errorf("postgres: instance secret %s: the generated value is empty", name)
	}
	if _, err := s.pool.Exec(ctx, sqlAccInsertSecret, name, generated); err != nil {
		return nil, fmt.Errorf("postgres: instance secret %s: %w", name, err)
	}
	if err := s.pool.QueryRow(ctx, sqlAccGetSecret, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("postgres: instance secret %s: %w", name, err)
	}
	return v, nil
}

// accQueryAll runs a query and scans every row.
func accQueryAll[T any](ctx context.Context, q querier, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
