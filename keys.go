package switchyard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// APIKey describes a stored API key. Its secret is shown once, when it is
// created, and never stored: only its SHA-256 is.
type APIKey struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Prefix     string     `json:"prefix"` // the secret's first characters
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// NewAPIKey describes a key to create.
type NewAPIKey struct {
	// Name says what the key is for. Required.
	Name string
	// Role in the client's tenant: RoleViewer, RoleOperator, RoleAdmin,
	// RoleOwner, or RoleInstanceAdmin (any tenant). Default RoleViewer.
	Role string
	// ExpiresAt, if set, ends the key's validity.
	ExpiresAt time.Time
}

// keySecretPrefix starts every generated secret, so that leaked keys are
// recognisable (secret scanners, logs).
const keySecretPrefix = "sy_"

// minKeySecret is the shortest secret accepted from SWITCHYARD_ADMIN_KEY.
const minKeySecret = 24

// CreateAPIKey creates a key in this client's tenant and returns its secret,
// which is not stored and cannot be shown again.
func (c *Client) CreateAPIKey(ctx context.Context, k NewAPIKey) (secret string, key *APIKey, err error) {
	secret, stored, err := c.newKey(k, "")
	if err != nil {
		return "", nil, err
	}
	if _, err := c.store.CreateAPIKey(ctx, stored, false); err != nil {
		return "", nil, fmt.Errorf("switchyard: create api key: %w", err)
	}
	// Read back: the store sets the creation time.
	created, err := c.store.GetAPIKey(ctx, stored.TenantID, stored.ID)
	if err != nil {
		return "", nil, fmt.Errorf("switchyard: create api key: %w", err)
	}
	return secret, keyFromStore(created), nil
}

// CreateFirstAdminKey creates an instance-administrator key if the store has
// no key at all, atomically across nodes starting together. It returns the
// secret and true when it created one.
func (c *Client) CreateFirstAdminKey(ctx context.Context) (secret string, created bool, err error) {
	secret, stored, err := c.newKey(NewAPIKey{Name: "first-start admin key", Role: RoleInstanceAdmin}, "")
	if err != nil {
		return "", false, err
	}
	created, err = c.store.CreateAPIKey(ctx, stored, true)
	if err != nil {
		return "", false, fmt.Errorf("switchyard: create first admin key: %w", err)
	}
	if !created {
		return "", false, nil
	}
	return secret, true, nil
}

// EnsureAdminKey makes secret (for example SWITCHYARD_ADMIN_KEY) a valid
// instance-administrator key, storing its hash if it is not stored yet. It
// reports whether it stored it. Secrets shorter than 24 characters are
// refused.
func (c *Client) EnsureAdminKey(ctx context.Context, secret string) (created bool, err error) {
	if len(secret) < minKeySecret {
		return false, invalid("admin key must be at least %d characters", minKeySecret)
	}
	_, stored, err := c.newKey(NewAPIKey{Name: "admin key from the environment", Role: RoleInstanceAdmin}, secret)
	if err != nil {
		return false, err
	}
	if _, err := c.store.APIKeyByHash(ctx, stored.Hash); err == nil {
		return false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("switchyard: ensure admin key: %w", err)
	}
	if _, err := c.store.CreateAPIKey(ctx, stored, false); err != nil {
		// Another node starting with the same key stored it first.
		if _, err2 := c.store.APIKeyByHash(ctx, stored.Hash); err2 == nil {
			return false, nil
		}
		return false, fmt.Errorf("switchyard: ensure admin key: %w", err)
	}
	return true, nil
}

// Authenticate returns the key whose secret this is; ErrUnauthenticated if
// there is none or it is revoked or expired. It records the key's use (at
// most once a minute).
func (c *Client) Authenticate(ctx context.Context, secret string) (*APIKey, error) {
	if secret == "" {
		return nil, fmt.Errorf("switchyard: %w: no API key", ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(secret))
	if k, ok := c.keys.get(sum, time.Now()); ok {
		return &k, nil
	}
	gen := c.keys.generation()
	k, err := c.store.APIKeyByHash(ctx, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("switchyard: %w: unknown API key", ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("switchyard: authenticate: %w", err)
	}
	if !k.RevokedAt.IsZero() {
		return nil, fmt.Errorf("switchyard: %w: API key %s was revoked", ErrUnauthenticated, k.Prefix)
	}
	if !k.ExpiresAt.IsZero() && !time.Now().Before(k.ExpiresAt) {
		return nil, fmt.Errorf("switchyard: %w: API key %s expired", ErrUnauthenticated, k.Prefix)
	}
	now := time.Now()
	if now.Sub(k.LastUsedAt) >= keyTouchEvery {
		// Recording the use is bookkeeping: a failure does not refuse the
		// request.
		if err := c.store.TouchAPIKey(ctx, k.ID); err != nil {
			c.log.Warn("switchyard: record api key use", "key", k.Prefix, "err", err)
		} else {
			k.LastUsedAt = now
		}
	}
	out := keyFromStore(k)
	c.keys.put(sum, *out, k.ExpiresAt, now, gen)
	return out, nil
}

// RevokeAPIKey ends a key of this client's tenant at once: every node drops
// it from its cache when the store's notification arrives. ErrNotFound for
// an unknown id (or another tenant's), ErrConflict if it is revoked already.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	if err := c.store.RevokeAPIKey(ctx, c.cfg.TenantID, id); err != nil {
		return fmt.Errorf("switchyard: revoke api key %s: %w", id, err)
	}
	c.keys.clear() // at once here, whatever the notification's delay
	return nil
}

// APIKey returns a key of this client's tenant, revoked ones included;
// ErrNotFound for an unknown id or another tenant's.
func (c *Client) APIKey(ctx context.Context, id string) (*APIKey, error) {
	k, err := c.store.GetAPIKey(ctx, c.cfg.TenantID, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("switchyard: %w: api key %q not found", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("switchyard: api key %s: %w", id, err)
	}
	return keyFromStore(k), nil
}

// APIKeys returns a page of this client's tenant's keys in id order, revoked
// ones included, after the cursor ("" for the first page), and the next
// page's cursor.
func (c *Client) APIKeys(ctx context.Context, cursor string, limit int) ([]*APIKey, string, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, "", err
	}
	ks, err := c.store.ListAPIKeys(ctx, c.cfg.TenantID, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list api keys: %w", err)
	}
	out := make([]*APIKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyFromStore(k))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// keyTouchEvery is how stale a key's recorded last use may get before a
// request records it again: at most one write per key a minute, whatever
// the request rate.
const keyTouchEvery = time.Minute

// keyCache remembers keys that authenticated, by the hash of their secret.
// Unknown secrets are never cached, so guessing costs a store read each.
type keyCache = authCache[[sha256.Size]byte, APIKey]

// newKey builds the stored form of a key; it generates the secret unless
// one is given.
func (c *Client) newKey(k NewAPIKey, secret string) (string, store.APIKey, error) {
	if k.Name == "" {
		return "", store.APIKey{}, invalid("api key: name is required")
	}
	if k.Role == "" {
		k.Role = RoleViewer
	}
	if RoleRank(k.Role) == 0 {
		return "", store.APIKey{}, invalid("api key: unknown role %q; want one of %s", k.Role, strings.Join(Roles, ", "))
	}
	if len(k.Name) > 200 {
		return "", store.APIKey{}, invalid("api key: name is %d bytes; the limit is 200", len(k.Name))
	}
	if secret == "" {
		secret = keySecretPrefix + rand.Text() // 128 random bits
	}
	id := "key_" + rand.Text()
	sum := sha256.Sum256([]byte(secret))
	return secret, store.APIKey{
		ID: id, TenantID: c.cfg.TenantID, Name: k.Name, Role: k.Role,
		Prefix: secret[:min(len(secret), len(keySecretPrefix)+8)], Hash: sum[:], ExpiresAt: k.ExpiresAt,
	}, nil
}

func keyFromStore(k *store.APIKey) *APIKey {
	out := &APIKey{ID: k.ID, TenantID: k.TenantID, Name: k.Name, Role: k.Role, Prefix: k.Prefix, CreatedAt: k.CreatedAt}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt
		out.ExpiresAt = &t
	}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt
		out.LastUsedAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		out.RevokedAt = &t
	}
	return out
}
