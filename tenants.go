package switchyard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// DefaultTenant is the tenant a fresh install has, and the one a Client
// acts in unless Config.TenantID says otherwise.
const DefaultTenant = "default"

// Tenant is an isolation unit: every job, queue, key and audit entry
// belongs to one, and no tenant can see another's.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RateLimit overrides the server's default request rate for each of
	// the tenant's callers; nil keeps the default.
	RateLimit *RateLimit `json:"rate_limit"`
}

// RateLimit is a token bucket: a caller may send Burst requests at once
// and RequestsPerSecond on average.
type RateLimit struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
}

// Validate reports a limit that cannot work.
func (r *RateLimit) Validate() error {
	if r == nil {
		return nil
	}
	if !(r.RequestsPerSecond > 0) || math.IsInf(r.RequestsPerSecond, 0) {
		return invalid("rate_limit.requests_per_second must be a positive number, got %v", r.RequestsPerSecond)
	}
	if r.Burst < 1 {
		return invalid("rate_limit.burst must be at least 1, got %d", r.Burst)
	}
	return nil
}

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CreateTenant creates a tenant. Its id is a slug (lower-case letters,
// digits, - and _, at most 63 characters); ErrConflict if it is taken.
func (c *Client) CreateTenant(ctx context.Context, t Tenant) (*Tenant, error) {
	if !tenantIDPattern.MatchString(t.ID) {
		return nil, invalid("tenant id %q: want 1 to 63 lower-case letters, digits, - or _, starting with a letter or digit", t.ID)
	}
	if t.Name == "" {
		t.Name = t.ID
	}
	if err := validTenant(&t); err != nil {
		return nil, err
	}
	st := tenantToStore(&t)
	if err := c.store.CreateTenant(ctx, st); err != nil {
		return nil, fmt.Errorf("switchyard: create tenant %s: %w", t.ID, err)
	}
	return c.Tenant(ctx, t.ID)
}

func validTenant(t *Tenant) error {
	if len(t.Name) > 200 {
		return invalid("tenant name is %d bytes; the limit is 200", len(t.Name))
	}
	return t.RateLimit.Validate()
}

// Tenant returns a tenant; ErrNotFound if there is none. Answers are
// cached for a few seconds.
func (c *Client) Tenant(ctx context.Context, id string) (*Tenant, error) {
	now := time.Now()
	if t, ok := c.access.tenants.get(id, now); ok {
		if t.ID == "" {
			return nil, fmt.Errorf("switchyard: tenant %s: %w", id, ErrNotFound)
		}
		return &t, nil
	}
	gen := c.access.tenants.generation()
	st, err := c.store.GetTenant(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// Remembered too: every request of a key whose tenant is gone
		// (or was never created, by a Go program) asks.
		c.access.tenants.put(id, Tenant{}, time.Time{}, now, gen)
	}
	if err != nil {
		return nil, fmt.Errorf("switchyard: tenant %s: %w", id, err)
	}
	t := tenantFromStore(st)
	c.access.tenants.put(id, *t, time.Time{}, now, gen)
	return t, nil
}

// Tenants returns a page of tenants in id order, after the cursor (a
// tenant id, "" for the first page), and the next page's cursor.
func (c *Client) Tenants(ctx context.Context, cursor string, limit int) ([]*Tenant, string, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, "", err
	}
	ts, err := c.store.ListTenants(ctx, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list tenants: %w", err)
	}
	out := make([]*Tenant, 0, len(ts))
	for _, t := range ts {
		out = append(out, tenantFromStore(t))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// UpdateTenant replaces a tenant's name and rate limit.
func (c *Client) UpdateTenant(ctx context.Context, t Tenant) (*Tenant, error) {
	if t.Name == "" {
		return nil, invalid("tenant name must not be empty")
	}
	if err := validTenant(&t); err != nil {
		return nil, err
	}
	if err := c.store.UpdateTenant(ctx, tenantToStore(&t)); err != nil {
		return nil, fmt.Errorf("switchyard: update tenant %s: %w", t.ID, err)
	}
	c.access.tenants.clear() // other nodes follow within the cache TTL
	return c.Tenant(ctx, t.ID)
}

// pageLimit applies the list default (100) and bound (1000).
func pageLimit(limit int) (int, error) {
	if limit == 0 {
		return 100, nil
	}
	if limit < 1 || limit > 1000 {
		return 0, invalid("limit must be between 1 and 1000, got %d", limit)
	}
	return limit, nil
}

func tenantToStore(t *Tenant) store.Tenant {
	st := store.Tenant{ID: t.ID, Name: t.Name}
	if t.RateLimit != nil {
		st.RateLimit, st.RateBurst = t.RateLimit.RequestsPerSecond, t.RateLimit.Burst
	}
	return st
}

func tenantFromStore(st *store.Tenant) *Tenant {
	t := &Tenant{ID: st.ID, Name: st.Name, CreatedAt: st.CreatedAt}
	if st.RateLimit > 0 {
		t.RateLimit = &RateLimit{RequestsPerSecond: st.RateLimit, Burst: st.RateBurst}
	}
	return t
}
