package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Tenant is a tenant as the server shows it: the isolation unit every job,
// queue, key, member and audit entry belongs to.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RateLimit is the request rate each of the tenant's API keys and users
	// may send; nil when the server's default applies.
	RateLimit *RateLimit `json:"rate_limit"`

	// Raw is the tenant exactly as the server sent it, including fields
	// this version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's tenant shape, keeping a copy in Raw.
func (t *Tenant) UnmarshalJSON(b []byte) error {
	type plain Tenant
	*t = Tenant{}
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	t.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// RateLimit is a token bucket: a caller may send Burst requests at once and
// RequestsPerSecond on average.
type RateLimit struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
}

// TenantRequest is a tenant to create.
type TenantRequest struct {
	// ID is the tenant's permanent name: 1 to 63 lower-case letters,
	// digits, - and _, starting with a letter or digit. Required.
	ID string `json:"id"`
	// Name is for people. Default: the ID.
	Name string `json:"name,omitempty"`
	// RateLimit overrides the server's default rate for each of the
	// tenant's callers. Default: none (the server's default applies).
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// TenantUpdate is what UpdateTenant changes; nil fields keep their values.
type TenantUpdate struct {
	Name *string
	// RateLimit sets the tenant's own rate limit.
	RateLimit *RateLimit
	// ClearRateLimit returns the tenant to the server's default rate; it
	// may not be combined with RateLimit.
	ClearRateLimit bool
}

// MarshalJSON encodes u in the API's shape: rate_limit is null to clear
// it, absent to keep it.
func (u TenantUpdate) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if u.Name != nil {
		m["name"] = *u.Name
	}
	switch {
	case u.ClearRateLimit && u.RateLimit != nil:
		return nil, errClearAndSet
	case u.ClearRateLimit:
		m["rate_limit"] = nil
	case u.RateLimit != nil:
		m["rate_limit"] = u.RateLimit
	}
	return json.Marshal(m)
}

var errClearAndSet = errors.New("client: tenant update: give RateLimit or ClearRateLimit, not both")

// ListParams pages through a list.
type ListParams struct {
	Limit  int    // items per page, 1 to 1000; 0 for the server's default (100)
	Cursor string // a previous page's NextCursor; "" for the first page
}

func (p ListParams) query() url.Values {
	q := url.Values{}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	return q
}

// Page is one page of a list: its items, and NextCursor, which fetches
// the next page when passed as the list's Cursor ("" on the last page).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// listPage gets one page of the list at path.
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values) (*Page[T], error) {
	page := new(Page[T])
	if _, err := c.do(ctx, http.MethodGet, path, q, nil, page); err != nil {
		return nil, err
	}
	if page.Items == nil {
		page.Items = []T{}
	}
	return page, nil
}

// TenantPage is one page of ListTenants.
type TenantPage = Page[Tenant]

// CreateTenant creates a tenant; only instance administrators may. The
// server answers an *Error with code "conflict" when the id is taken.
func (c *Client) CreateTenant(ctx context.Context, req TenantRequest) (*Tenant, error) {
	t := new(Tenant)
	if _, err := c.do(ctx, http.MethodPost, "/v1/tenants", nil, req, t); err != nil {
		return nil, err
	}
	return t, nil
}

// ListTenants returns one page of tenants in id order: every tenant to an
// instance administrator, else the tenants the caller belongs to.
func (c *Client) ListTenants(ctx context.Context, p ListParams) (*TenantPage, error) {
	return listPage[Tenant](ctx, c, "/v1/tenants", p.query())
}

// GetTenant returns a tenant the caller belongs to (any tenant for an
// instance administrator); others answer not_found.
func (c *Client) GetTenant(ctx context.Context, id string) (*Tenant, error) {
	return c.tenantCall(ctx, http.MethodGet, id, nil)
}

// UpdateTenant changes a tenant's name or rate limit and returns it; only
// instance administrators may.
func (c *Client) UpdateTenant(ctx context.Context, id string, u TenantUpdate) (*Tenant, error) {
	if u.ClearRateLimit && u.RateLimit != nil {
		return nil, errClearAndSet
	}
	return c.tenantCall(ctx, http.MethodPatch, id, u)
}

func (c *Client) tenantCall(ctx context.Context, method, id string, in any) (*Tenant, error) {
	if id == "" {
		return nil, errEmpty("tenant id")
	}
	t := new(Tenant)
	if _, err := c.do(ctx, method, "/v1/tenants/"+url.PathEscape(id), nil, in, t); err != nil {
		return nil, err
	}
	return t, nil
}
