package store

import (
	"context"
	"errors"
	"time"
)

// ErrTokenReused: a refresh token that was already rotated was presented
// again. The store has revoked its whole family.
var ErrTokenReused = errors.New("refresh token reused")

// Tenant is an isolation unit. Its id is a short slug chosen at creation.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// RateLimit is requests per second allowed to each caller (API key or
	// user) of the tenant; 0 means the server's default.
	RateLimit float64
	// RateBurst is the bucket size for RateLimit; 0 means the server's
	// default.
	RateBurst int
}

// User is a person who logs in with an email and a password.
type User struct {
	ID            string
	Email         string // lower-cased; unique
	PasswordHash  string // argon2id, PHC string form
	InstanceAdmin bool
	CreatedAt     time.Time
}

// Membership gives a user a role in a tenant.
type Membership struct {
	TenantID  string
	UserID    string
	Role      string
	CreatedAt time.Time
	Email     string // the user's, filled in by reads
}

// RefreshToken is one link of a refresh-token family: every use rotates it
// into the next, and presenting a used one revokes the family.
type RefreshToken struct {
	ID        string
	Hash      []byte // SHA-256 of the secret; unique
	FamilyID  string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
	RevokedAt time.Time // zero unless revoked
}

// AuditEntry records one mutating request or authentication event.
type AuditEntry struct {
	ID        int64 // assigned by the store; increasing
	Time      time.Time
	TenantID  string // "" for instance-level events
	ActorType string // "key", "user", "anonymous" or "system"
	ActorID   string // key id, user id, email tried, or ""
	Action    string // e.g. "jobs.create", "auth.login"
	Target    string // e.g. the job id; may be ""
	Result    string // "ok", "denied", "failed", "error"
	Status    int    // HTTP status, 0 if none
	ClientIP  string
	RequestID string
	Detail    string // short free text, may be ""
}

// AuditListParams selects audit entries, newest first. Empty fields do not
// filter.
type AuditListParams struct {
	TenantID string // "" = every tenant (instance administrators only)
	ActorID  string
	Action   string // exact, or a prefix ending in "." or "*" ("jobs." , "auth.*")
	Target   string
	Result   string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	BeforeID int64     // cursor: entries with smaller ids
	Limit    int       // default 100
}

// TenantQueue names a queue of a tenant.
type TenantQueue struct {
	TenantID string
	Queue    string
}

// Access is the part of the Store that holds tenants, users, memberships,
// API keys beyond the job engine's own, refresh tokens, the audit log,
// shared rate-limit buckets and instance secrets. Every change to a
// credential or a role sends a NotifyKeys so every node drops its caches.
type Access interface {
	// CreateTenant stores t; ErrConflict if its id exists.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant returns a tenant; ErrNotFound if none.
	GetTenant(ctx context.Context, id string) (*Tenant, error)
	// ListTenants returns tenants with ids greater than after, in id order.
	ListTenants(ctx context.Context, after string, limit int) ([]*Tenant, error)
	// UpdateTenant replaces a tenant's name and rate limits; ErrNotFound if
	// none.
	UpdateTenant(ctx context.Context, t Tenant) error

	// CreateUser stores u; ErrConflict if the email is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns a user by id; ErrNotFound if none.
	GetUser(ctx context.Context, id string) (*User, error)
	// UserByEmail returns a user by (lower-cased) email; ErrNotFound if none.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// SetUserPassword replaces a user's password hash, revokes every refresh
	// token of the user and sends NotifyKeys; ErrNotFound if none.
	SetUserPassword(ctx context.Context, userID, hash string) error

	// SetMembership gives a user a role in a tenant, creating the
	// membership or changing its role, and sends NotifyKeys. It reports
	// whether it created the membership.
	SetMembership(ctx context.Context, m Membership) (created bool, err error)
	// GetMembership returns a user's membership of a tenant; ErrNotFound if
	// none.
	GetMembership(ctx context.Context, tenantID, userID string) (*Membership, error)
	// DeleteMembership removes a user from a tenant and sends NotifyKeys;
	// ErrNotFound if not a member.
	DeleteMembership(ctx context.Context, tenantID, userID string) error
	// UserMemberships lists a user's memberships in tenant order.
	UserMemberships(ctx context.Context, userID string) ([]Membership, error)
	// TenantMembers lists a tenant's members with user ids greater than
	// after, in user id order, with their emails.
	TenantMembers(ctx context.Context, tenantID, after string, limit int) ([]Membership, error)

	// GetAPIKey returns a key of the tenant, revoked ones included;
	// ErrNotFound for an unknown id or another tenant's.
	GetAPIKey(ctx context.Context, tenantID, id string) (*APIKey, error)
	// ListAPIKeys returns the tenant's keys with ids greater than after, in
	// id order, revoked ones included.
	ListAPIKeys(ctx context.Context, tenantID, after string, limit int) ([]*APIKey, error)

	// CreateRefreshToken stores the first token of a family.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken uses the token whose secret hashes to hash and
	// stores next (same family and user, filled in by the store) in its
	// place, atomically: of two concurrent uses only one succeeds. It
	// returns the used token. An unknown, expired (database clock) or
	// revoked token answers ErrNotFound; a token already used answers
	// ErrTokenReused (with the token) after revoking its whole family and
	// sending NotifyKeys.
	RotateRefreshToken(ctx context.Context, hash []byte, next RefreshToken) (*RefreshToken, error)
	// RevokeRefreshFamily revokes every token of a family (logout) and
	// sends NotifyKeys. Revoking a revoked or unknown family is no error.
	RevokeRefreshFamily(ctx context.Context, familyID string) error
	// RefreshFamilyActive reports whether a family has a token that is
	// neither revoked nor expired: access tokens of a family that is not
	// are refused.
	RefreshFamilyActive(ctx context.Context, familyID string) (bool, error)

	// AppendAudit appends entries in one transaction, assigning ids.
	AppendAudit(ctx context.Context, entries []AuditEntry) error
	// ListAudit returns entries newest first (by id).
	ListAudit(ctx context.Context, p AuditListParams) ([]*AuditEntry, error)
	// DeleteAuditBefore deletes, of the limit oldest entries (by id), those
	// older than before (the retention sweep; nothing else deletes audit
	// entries). Entries are appended in time order, so the oldest go first
	// and a call that deletes fewer than limit has found the cut.
	DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int, error)

	// TakeTokens takes up to want tokens from the shared token bucket key,
	// which refills at rate tokens per second up to burst (database clock;
	// a new bucket starts full). It returns how many it took and, when that
	// is fewer than want, how long until the next token is due.
	TakeTokens(ctx context.Context, key string, rate float64, burst, want int) (got int, wait time.Duration, err error)

	// DeleteIdleRateBuckets deletes up to limit token buckets last taken
	// from before before: left alone that long they are full again, as a
	// new bucket starts. It keeps the table from growing with every key,
	// user, address and login name ever limited.
	DeleteIdleRateBuckets(ctx context.Context, before time.Time, limit int) (int, error)

	// InstanceSecret returns the secret named name, storing generated()
	// first if there is none, atomically across nodes: every node gets the
	// same secret.
	InstanceSecret(ctx context.Context, name string, generated []byte) ([]byte, error)

	// AllQueueNames is QueueNames over every tenant.
	AllQueueNames(ctx context.Context) ([]TenantQueue, error)
}
