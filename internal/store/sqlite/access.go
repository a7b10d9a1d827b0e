package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// store.Access. Writes go through the writer like every other write, so
// checks and changes within one operation are atomic (nothing else writes
// between them) and notifications are delivered only after the commit.
//
// Unlike the job engine's statements (queries.go), these are not prepared
// once and kept: logins, administration and audit appends are rare next to
// enqueues and completions, and preparing costs a few microseconds.

const (
	accTenantCols  = `id, name, created_at, rate_limit, rate_burst`
	accUserCols    = `id, email, password_hash, instance_admin, created_at`
	accKeyCols     = `id, tenant_id, name, role, prefix, hash, created_at, expires_at, last_used_at, revoked_at`
	accRefreshCols = `id, hash, family_id, user_id, created_at, expires_at, used_at, revoked_at`
	accAuditCols   = `id, at, tenant_id, actor_type, actor_id, action, target, result, status, client_ip, request_id, detail`
	// Memberships are read with the member's email; a LEFT JOIN because
	// nothing but the callers keeps a user from disappearing.
	accMemberSelect = `SELECT m.tenant_id, m.user_id, m.role, m.created_at, coalesce(u.email, '')
		FROM memberships m LEFT JOIN users u ON u.id = m.user_id`
)

const (
	sqlAccInsertTenant = `INSERT INTO tenants (` + accTenantCols + `) VALUES (?, ?, ?, ?, ?)`
	sqlAccGetTenant    = `SELECT ` + accTenantCols + ` FROM tenants WHERE id = ?`
	sqlAccListTenants  = `SELECT ` + accTenantCols + ` FROM tenants WHERE id > ? ORDER BY id LIMIT ?`
	sqlAccUpdateTenant = `UPDATE tenants SET name = ?, rate_limit = ?, rate_burst = ? WHERE id = ?`

	sqlAccInsertUser  = `INSERT INTO users (` + accUserCols + `) VALUES (?, ?, ?, ?, ?)`
	sqlAccGetUser     = `SELECT ` + accUserCols + ` FROM users WHERE id = ?`
	sqlAccUserByEmail = `SELECT ` + accUserCols + ` FROM users WHERE email = ?`
	sqlAccSetPassword = `UPDATE users SET password_hash = ? WHERE id = ?`
	// Parameters: revoked_at, user id.
	sqlAccRevokeUserTokens = `UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`

	// Parameters: tenant id, user id. Returns whether the tenant, the user
	// and the membership exist.
	sqlAccMembershipRefs = `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1),
		EXISTS (SELECT 1 FROM users WHERE id = ?2),
		EXISTS (SELECT 1 FROM memberships WHERE tenant_id = ?1 AND user_id = ?2)`
	sqlAccUpsertMembership = `INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role`
	sqlAccGetMembership    = accMemberSelect + ` WHERE m.tenant_id = ? AND m.user_id = ?`
	sqlAccDeleteMembership = `DELETE FROM memberships WHERE tenant_id = ? AND user_id = ?`
	sqlAccUserMemberships  = accMemberSelect + ` WHERE m.user_id = ? ORDER BY m.tenant_id`
	sqlAccTenantMembers    = accMemberSelect + ` WHERE m.tenant_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?`

	sqlAccGetKey   = `SELECT ` + accKeyCols + ` FROM api_keys WHERE id = ? AND tenant_id = ?`
	sqlAccListKeys = `SELECT ` + accKeyCols + ` FROM api_keys WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?`

	sqlAccInsertRefresh = `INSERT INTO refresh_tokens (` + accRefreshCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlAccRefreshByHash = `SELECT ` + accRefreshCols + ` FROM refresh_tokens WHERE hash = ?`
	sqlAccUseRefresh    = `UPDATE refresh_tokens SET used_at = ? WHERE id = ?`
	// Parameters: revoked_at, family id.
	sqlAccRevokeFamily = `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`
	// Parameters: family id, now.
	sqlAccFamilyActive = `SELECT EXISTS (SELECT 1 FROM refresh_tokens
		WHERE family_id = ? AND revoked_at IS NULL AND expires_at > ?)`

	// The oldest entries by id, those of them older than before.
	// Parameters: limit, before.
	sqlAccDeleteAudit = `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM (SELECT id, at FROM audit_log ORDER BY id LIMIT ?) WHERE at < ?)`

	sqlAccGetBucket = `SELECT tokens, updated_at FROM rate_buckets WHERE key = ?`
	// Parameters: before, limit.
	sqlAccDeleteIdleBuckets = `DELETE FROM rate_buckets WHERE key IN (
		SELECT key FROM rate_buckets WHERE updated_at < ? LIMIT ?)`
	sqlAccUpsertBucket = `INSERT INTO rate_buckets (key, tokens, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`

	sqlAccGetSecret    = `SELECT value FROM instance_secrets WHERE name = ?`
	sqlAccInsertSecret = `INSERT INTO instance_secrets (name, value, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`
)

// defaultAuditLimit is ListAudit's page size when the caller gives none.
const defaultAuditLimit = 100

// accExec runs an Access statement in the write transaction and returns how
// many rows it changed. Like the cached statements it runs with
// context.Background(): a started op always completes.
func (t *wtx) accExec(q string, args ...any) (int64, error) {
	res, err := t.w.conn.ExecContext(context.Background(), q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *wtx) accQueryRow(q string, args ...any) *sql.Row {
	return t.w.conn.QueryRowContext(context.Background(), q, args...)
}

// accConflict reports whether err is a broken UNIQUE or PRIMARY KEY
// constraint: the row exists already.
func accConflict(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	const (
		constraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
		constraintUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
	)
	return se.Code() == constraintPrimaryKey || se.Code() == constraintUnique
}

// orNow returns t in the stored form, or now if t is zero.
func orNow(t time.Time, nowUS int64) int64 {
	if t.IsZero() {
		return nowUS
	}
	return micros(t)
}

// nullMicrosOf is the stored form of a time that may be absent.
func nullMicrosOf(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// sqlLimit maps a limit <= 0 to SQLite's "no limit".
func sqlLimit(limit int) int64 {
	if limit <= 0 {
		return -1
	}
	return int64(limit)
}

// CreateTenant stores t; ErrConflict if its id exists.
func (s *Store) CreateTenant(ctx context.Context, tn store.Tenant) error {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		_, err := t.accExec(sqlAccInsertTenant, tn.ID, tn.Name, orNow(tn.CreatedAt, t.nowUS), tn.RateLimit, tn.RateBurst)
		return err
	})
	if accConflict(err) {
		return fmt.Errorf("sqlite: create tenant: tenant %s exists: %w", tn.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create tenant: %w", err)
	}
	return nil
}

func scanTenant(sc scanner) (*store.Tenant, error) {
	var (
		tn      store.Tenant
		created sqlInt
		burst   sqlInt
	)
	if err := sc.Scan(&tn.ID, &tn.Name, &created, &tn.RateLimit, &burst); err != nil {
		return nil, err
	}
	tn.CreatedAt, tn.RateBurst = fromMicros(int64(created)), int(burst)
	return &tn, nil
}

// GetTenant returns a tenant; ErrNotFound if none.
func (s *Store) GetTenant(ctx context.Context, id string) (*store.Tenant, error) {
	tn, err := scanTenant(s.read.QueryRowContext(ctx, sqlAccGetTenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get tenant %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get tenant %s: %w", id, err)
	}
	return tn, nil
}

// ListTenants returns tenants with ids greater than after, in id order; a
// limit <= 0 means no limit.
func (s *Store) ListTenants(ctx context.Context, after string, limit int) ([]*store.Tenant, error) {
	ts, err := accQueryAll(ctx, s.read, scanTenant, sqlAccListTenants, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tenants: %w", err)
	}
	return ts, nil
}

// UpdateTenant replaces a tenant's name and rate limits.
func (s *Store) UpdateTenant(ctx context.Context, tn store.Tenant) error {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		n, err := t.accExec(sqlAccUpdateTenant, tn.Name, tn.RateLimit, tn.RateBurst, tn.ID)
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: update tenant %s: %w", tn.ID, err)
	}
	return nil
}

// CreateUser stores u; ErrConflict if the email (or the id) is taken.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		_, err := t.accExec(sqlAccInsertUser, u.ID, u.Email, u.PasswordHash, u.InstanceAdmin, orNow(u.CreatedAt, t.nowUS))
		return err
	})
	if accConflict(err) {
		return fmt.Errorf("sqlite: create user: email or id taken: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	return nil
}

func scanUser(sc scanner) (*store.User, error) {
	var (
		u       store.User
		created sqlInt
	)
	if err := sc.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.InstanceAdmin, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(int64(created))
	return &u, nil
}

// GetUser returns a user by id; ErrNotFound if none.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, sqlAccGetUser, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get user: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user: %w", err)
	}
	return u, nil
}

// UserByEmail returns a user by (lower-cased) email; ErrNotFound if none.
func (s *Store) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, sqlAccUserByEmail, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: user by email: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: user by email: %w", err)
	}
	return u, nil
}

// SetUserPassword replaces a user's password hash and revokes every
// refresh token of the user in the same transaction, so no session
// outlives the password it was opened with.
func (s *Store) SetUserPassword(ctx context.Context, userID, hash string) error {
	err := s.w.do(ctx, true, func(t *wtx) error {
		n, err := t.accExec(sqlAccSetPassword, hash, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if _, err := t.accExec(sqlAccRevokeUserTokens, t.nowUS, userID); err != nil {
			return err
		}
		t.notify(store.Notification{Kind: store.NotifyKeys})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set user password: %w", err)
	}
	return nil
}

// SetMembership gives a user a role in a tenant. An unknown tenant or user
// answers ErrNotFound: without foreign keys, the store is what keeps a
// membership from pointing at nothing.
func (s *Store) SetMembership(ctx context.Context, m store.Membership) (bool, error) {
	var created bool
	err := s.w.do(ctx, true, func(t *wtx) error {
		var tenantOK, userOK, exists bool
		if err := t.accQueryRow(sqlAccMembershipRefs, m.TenantID, m.UserID).Scan(&tenantOK, &userOK, &exists); err != nil {
			return err
		}
		switch {
		case !tenantOK:
			return fmt.Errorf("tenant %s: %w", m.TenantID, store.ErrNotFound)
		case !userOK:
			return fmt.Errorf("user %s: %w", m.UserID, store.ErrNotFound)
		}
		if _, err := t.accExec(sqlAccUpsertMembership, m.TenantID, m.UserID, m.Role, orNow(m.CreatedAt, t.nowUS)); err != nil {
			return err
		}
		created = !exists
		t.notify(store.Notification{Kind: store.NotifyKeys})
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: set membership: %w", err)
	}
	return created, nil
}

func scanMembership(sc scanner) (store.Membership, error) {
	var (
		m       store.Membership
		created sqlInt
	)
	if err := sc.Scan(&m.TenantID, &m.UserID, &m.Role, &created, &m.Email); err != nil {
		return m, err
	}
	m.CreatedAt = fromMicros(int64(created))
	return m, nil
}

// GetMembership returns a user's membership of a tenant; ErrNotFound if
// none.
func (s *Store) GetMembership(ctx context.Context, tenantID, userID string) (*store.Membership, error) {
	m, err := scanMembership(s.read.QueryRowContext(ctx, sqlAccGetMembership, tenantID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get membership: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get membership: %w", err)
	}
	return &m, nil
}

// DeleteMembership removes a user from a tenant.
func (s *Store) DeleteMembership(ctx context.Context, tenantID, userID string) error {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		n, err := t.accExec(sqlAccDeleteMembership, tenantID, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		t.notify(store.Notification{Kind: store.NotifyKeys})
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete membership: %w", err)
	}
	return nil
}

// UserMemberships lists a user's memberships in tenant order.
func (s *Store) UserMemberships(ctx context.Context, userID string) ([]store.Membership, error) {
	ms, err := accQueryAll(ctx, s.read, scanMembership, sqlAccUserMemberships, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user memberships: %w", err)
	}
	return ms, nil
}

// TenantMembers lists a tenant's members after a user id, in user id order;
// a limit <= 0 means no limit.
func (s *Store) TenantMembers(ctx context.Context, tenantID, after string, limit int) ([]store.Membership, error) {
	ms, err := accQueryAll(ctx, s.read, scanMembership, sqlAccTenantMembers, tenantID, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: tenant members: %w", err)
	}
	return ms, nil
}

func scanKey(sc scanner) (*store.APIKey, error) {
	var (
		k                          store.APIKey
		created                    sqlInt
		expires, lastUsed, revoked sqlNullInt
	)
	if err := sc.Scan(&k.ID, &k.TenantID, &k.Name, &k.Role, &k.Prefix, &k.Hash, &created, &expires, &lastUsed, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(int64(created))
	k.ExpiresAt, k.LastUsedAt, k.RevokedAt = expires.time(), lastUsed.time(), revoked.time()
	return &k, nil
}

// GetAPIKey returns a key of the tenant, revoked ones included.
func (s *Store) GetAPIKey(ctx context.Context, tenantID, id string) (*store.APIKey, error) {
	k, err := scanKey(s.read.QueryRowContext(ctx, sqlAccGetKey, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get api key: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns the tenant's keys after an id, in id order; a limit
// <= 0 means no limit.
func (s *Store) ListAPIKeys(ctx context.Context, tenantID, after string, limit int) ([]*store.APIKey, error) {
	ks, err := accQueryAll(ctx, s.read, scanKey, sqlAccListKeys, tenantID, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list api keys: %w", err)
	}
	return ks, nil
}

func scanRefresh(sc scanner) (*store.RefreshToken, error) {
	var (
		rt               store.RefreshToken
		created, expires sqlInt
		used, revoked    sqlNullInt
	)
	if err := sc.Scan(&rt.ID, &rt.Hash, &rt.FamilyID, &rt.UserID, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	rt.CreatedAt, rt.ExpiresAt = fromMicros(int64(created)), fromMicros(int64(expires))
	rt.UsedAt, rt.RevokedAt = used.time(), revoked.time()
	return &rt, nil
}

// checkRefresh rejects a token the schema would store meaninglessly. A
// successor's family and user come from the token it replaces, so they are
// only checked with owned.
func checkRefresh(rt store.RefreshToken, owned bool) error {
	switch {
	case rt.ID == "" || len(rt.Hash) == 0:
		return errors.New("refresh token needs an id and a hash")
	case owned && (rt.FamilyID == "" || rt.UserID == ""):
		return errors.New("refresh token needs a family and a user")
	case rt.ExpiresAt.IsZero():
		return errors.New("refresh token needs an expiry")
	}
	return nil
}

func (t *wtx) insertRefresh(rt store.RefreshToken) error {
	_, err := t.accExec(sqlAccInsertRefresh, rt.ID, rt.Hash, rt.FamilyID, rt.UserID,
		orNow(rt.CreatedAt, t.nowUS), micros(rt.ExpiresAt), nullMicrosOf(rt.UsedAt), nullMicrosOf(rt.RevokedAt))
	return err
}

// CreateRefreshToken stores the first token of a family.
func (s *Store) CreateRefreshToken(ctx context.Context, rt store.RefreshToken) error {
	if err := checkRefresh(rt, true); err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error { return t.insertRefresh(rt) })
	if accConflict(err) {
		return fmt.Errorf("sqlite: create refresh token: id or hash exists: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	return nil
}

// RotateRefreshToken uses a token and stores its successor. The writer runs
// one operation at a time, so of two concurrent uses the second sees the
// first's mark and is the reuse. A reuse must commit its revocation, so the
// operation succeeds and the error is returned after the commit.
func (s *Store) RotateRefreshToken(ctx context.Context, hash []byte, next store.RefreshToken) (*store.RefreshToken, error) {
	if err := checkRefresh(next, false); err != nil {
		return nil, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	var (
		used   *store.RefreshToken
		reused bool
	)
	err := s.w.do(ctx, true, func(t *wtx) error {
		used, reused = nil, false
		rt, err := scanRefresh(t.accQueryRow(sqlAccRefreshByHash, hash))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch {
		case !rt.UsedAt.IsZero():
			// Checked before revocation and expiry: a used token presented
			// again means it leaked, however old it is, and every loser of
			// a race of concurrent uses is told so, not only the first.
			n, err := t.accExec(sqlAccRevokeFamily, t.nowUS, rt.FamilyID)
			if err != nil {
				return err
			}
			if rt.RevokedAt.IsZero() {
				rt.RevokedAt = fromMicros(t.nowUS)
			}
			used, reused = rt, true
			if n > 0 {
				t.notify(store.Notification{Kind: store.NotifyKeys})
			}
			return nil
		case !rt.RevokedAt.IsZero(), micros(rt.ExpiresAt) <= t.nowUS:
			return store.ErrNotFound
		}
		next.FamilyID, next.UserID = rt.FamilyID, rt.UserID
		if _, err := t.accExec(sqlAccUseRefresh, t.nowUS, rt.ID); err != nil {
			return err
		}
		if err := t.insertRefresh(next); err != nil {
			return err
		}
		rt.UsedAt = fromMicros(t.nowUS)
		used = rt
		return nil
	})
	if accConflict(err) {
		return nil, fmt.Errorf("sqlite: rotate refresh token: next token's id or hash exists: %w", store.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	if reused {
		return used, fmt.Errorf("sqlite: rotate refresh token: %w", store.ErrTokenReused)
	}
	return used, nil
}

// RevokeRefreshFamily revokes every token of a family. Only a change is
// announced: a family revoked already was announced when it was revoked.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		n, err := t.accExec(sqlAccRevokeFamily, t.nowUS, familyID)
		if err == nil && n > 0 {
			t.notify(store.Notification{Kind: store.NotifyKeys})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke refresh family: %w", err)
	}
	return nil
}

// RefreshFamilyActive reports whether a family has a token that is neither
// revoked nor expired.
func (s *Store) RefreshFamilyActive(ctx context.Context, familyID string) (bool, error) {
	now, err := s.Now(ctx)
	if err != nil {
		return false, err
	}
	var active bool
	if err := s.read.QueryRowContext(ctx, sqlAccFamilyActive, familyID, micros(now)).Scan(&active); err != nil {
		return false, fmt.Errorf("sqlite: refresh family active: %w", err)
	}
	return active, nil
}

// AppendAudit appends entries in one transaction. An entry without a time
// gets the transaction's.
func (s *Store) AppendAudit(ctx context.Context, entries []store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.w.do(ctx, true, func(t *wtx) error {
		args := make([]any, 0, len(entries)*auditCols)
		for _, e := range entries {
			args = append(args, orNow(e.Time, t.nowUS), e.TenantID, e.ActorType, e.ActorID,
				e.Action, e.Target, e.Result, e.Status, e.ClientIP, e.RequestID, e.Detail)
		}
		// Chunks of the largest cached statement, then the binary digits
		// of the rest, as Insert does.
		for lo := 0; lo < len(entries); {
			k := min(bits.Len(uint(len(entries)-lo))-1, auditSizes-1)
			size := 1 << k
			if _, err := t.exec(stAudit0+stmtID(k), args[lo*auditCols:(lo+size)*auditCols]...); err != nil {
				return err
			}
			lo += size
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	return nil
}

// auditCols is the number of values of one audit_log row.
const auditCols = 11

// auditActionFilter returns the condition and argument for p.Action: a
// prefix when it ends in "." or "*" (the "*" is not part of it), else the
// exact action.
func auditActionFilter(action string) (prefix bool, value string) {
	if p, ok := strings.CutSuffix(action, "*"); ok {
		return true, p
	}
	if strings.HasSuffix(action, ".") {
		return true, action
	}
	return false, action
}

func scanAudit(sc scanner) (*store.AuditEntry, error) {
	var (
		e          store.AuditEntry
		id, at, st sqlInt
	)
	if err := sc.Scan(&id, &at, &e.TenantID, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &e.Result,
		&st, &e.ClientIP, &e.RequestID, &e.Detail); err != nil {
		return nil, err
	}
	e.ID, e.Time, e.Status = int64(id), fromMicros(int64(at)), int(st)
	return &e, nil
}

// ListAudit returns entries newest first (by id).
func (s *Store) ListAudit(ctx context.Context, p store.AuditListParams) ([]*store.AuditEntry, error) {
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT ` + accAuditCols + ` FROM audit_log WHERE true`)
	add := func(cond string, arg any) {
		q.WriteString(cond)
		args = append(args, arg)
	}
	if p.TenantID != "" {
		add(` AND tenant_id = ?`, p.TenantID)
	}
	if p.ActorID != "" {
		add(` AND actor_id = ?`, p.ActorID)
	}
	if p.Action != "" {
		if prefix, v := auditActionFilter(p.Action); prefix {
			// substr and length count characters alike, whatever the text.
			q.WriteString(` AND substr(action, 1, length(?)) = ?`)
			args = append(args, v, v)
		} else {
			add(` AND action = ?`, v)
		}
	}
	if p.Target != "" {
		add(` AND target = ?`, p.Target)
	}
	if p.Result != "" {
		add(` AND result = ?`, p.Result)
	}
	if !p.Since.IsZero() {
		add(` AND at >= ?`, micros(p.Since))
	}
	if !p.Until.IsZero() {
		add(` AND at < ?`, micros(p.Until))
	}
	if p.BeforeID > 0 {
		add(` AND id < ?`, p.BeforeID)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	add(` ORDER BY id DESC LIMIT ?`, limit)
	es, err := accQueryAll(ctx, s.read, scanAudit, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	return es, nil
}

// DeleteAuditBefore deletes up to limit entries older than before, oldest
// first; a limit <= 0 means no limit.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int64
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		var err error
		n, err = t.accExec(sqlAccDeleteAudit, sqlLimit(limit), micros(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete audit: %w", err)
	}
	return int(n), nil
}

// DeleteIdleRateBuckets implements store.Access.
func (s *Store) DeleteIdleRateBuckets(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int64
	err := s.w.doOneStatement(ctx, true, func(t *wtx) error {
		var err error
		n, err = t.accExec(sqlAccDeleteIdleBuckets, micros(before), sqlLimit(limit))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete idle rate buckets: %w", err)
	}
	return int(n), nil
}

// checkBucket rejects a token bucket that could never hand out a token.
func checkBucket(rate float64, burst, want int) error {
	switch {
	case !(rate > 0) || math.IsInf(rate, 0):
		return fmt.Errorf("rate %v: want a positive number of tokens per second", rate)
	case burst < 1:
		return fmt.Errorf("burst %d: want at least 1", burst)
	case want < 0:
		return fmt.Errorf("want %d: must not be negative", want)
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

// TakeTokens takes up to want tokens from the bucket key. The writer runs
// the read and the update with nothing in between. Not durable: a bucket
// lost in a power cut only hands out a few tokens again.
func (s *Store) TakeTokens(ctx context.Context, key string, rate float64, burst, want int) (int, time.Duration, error) {
	if err := checkBucket(rate, burst, want); err != nil {
		return 0, 0, fmt.Errorf("sqlite: take tokens: %w", err)
	}
	if want == 0 {
		return 0, 0, nil
	}
	var (
		got  int
		left float64
	)
	err := s.w.doOneStatement(ctx, false, func(t *wtx) error {
		var (
			tokens  float64
			updated sqlInt
		)
		nowUS := t.nowUS
		switch err := t.accQueryRow(sqlAccGetBucket, key).Scan(&tokens, &updated); {
		case errors.Is(err, sql.ErrNoRows):
			tokens = float64(burst) // a new bucket starts full
		case err != nil:
			return err
		default:
			// A clock stepped back refills nothing, and the bucket keeps
			// its later time so the interval is not counted twice.
			elapsed := max(nowUS-int64(updated), 0)
			nowUS = max(nowUS, int64(updated))
			tokens = min(float64(burst), tokens+rate*float64(elapsed)/1e6)
		}
		got = min(want, int(math.Floor(tokens)))
		left = tokens - float64(got)
		_, err := t.accExec(sqlAccUpsertBucket, key, left, nowUS)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: take tokens: %w", err)
	}
	if got < want {
		return got, refillWait(left, rate), nil
	}
	return got, 0, nil
}

// InstanceSecret returns the secret name, storing generated first if there
// is none. The read pool answers once it exists; creating it goes through
// the writer, where a concurrent creator's value, if first, wins.
func (s *Store) InstanceSecret(ctx context.Context, name string, generated []byte) ([]byte, error) {
	var v []byte
	err := s.read.QueryRowContext(ctx, sqlAccGetSecret, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: instance secret %s: %w", name, err)
	}
	if len(generated) == 0 {
		return nil, fmt.Errorf("sqlite: instance secret %s: the generated value is empty", name)
	}
	err = s.w.do(ctx, true, func(t *wtx) error {
		if _, err := t.accExec(sqlAccInsertSecret, name, generated, t.nowUS); err != nil {
			return err
		}
		return t.accQueryRow(sqlAccGetSecret, name).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: instance secret %s: %w", name, err)
	}
	return v, nil
}

// accQueryAll runs a query on the read pool and scans every row.
func accQueryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
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
