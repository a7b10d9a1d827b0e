package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// APIKey describes an API key as the server shows it. Its secret is shown
// once, by CreateKey, and never again.
type APIKey struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Prefix     string     `json:"prefix"` // the secret's first characters, to recognise it
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`   // nil: never
	LastUsedAt *time.Time `json:"last_used_at"` // nil: never used; recorded at most once a minute
	RevokedAt  *time.Time `json:"revoked_at"`   // nil: not revoked

	// Raw is the key exactly as the server sent it, including fields this
	// version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's key shape, keeping a copy in Raw.
func (k *APIKey) UnmarshalJSON(b []byte) error {
	type plain APIKey
	*k = APIKey{}
	if err := json.Unmarshal(b, (*plain)(k)); err != nil {
		return err
	}
	k.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// KeyRequest is an API key to create in the client's tenant.
type KeyRequest struct {
	// Name says what the key is for. Required.
	Name string `json:"name"`
	// Role is the key's role, at most the caller's own. Required.
	Role string `json:"role"`
	// ExpiresAt, if set, ends the key's validity; it must be in the
	// future.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// KeyPage is one page of ListKeys.
type KeyPage = Page[APIKey]

// CreateKey creates an API key in the tenant and returns it with its
// secret, which the server does not keep: it cannot be shown again.
func (c *Client) CreateKey(ctx context.Context, req KeyRequest) (key *APIKey, secret string, err error) {
	var out struct {
		Key    *APIKey `json:"key"`
		Secret string  `json:"secret"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/keys", nil, req, &out); err != nil {
		return nil, "", err
	}
	if out.Key == nil {
		out.Key = &APIKey{}
	}
	return out.Key, out.Secret, nil
}

// ListKeys returns one page of the tenant's API keys in id order, revoked
// ones included.
func (c *Client) ListKeys(ctx context.Context, p ListParams) (*KeyPage, error) {
	return listPage[APIKey](ctx, c, "/v1/keys", p.query())
}

// GetKey returns one of the tenant's API keys, revoked or not.
func (c *Client) GetKey(ctx context.Context, id string) (*APIKey, error) {
	if id == "" {
		return nil, errEmpty("key id")
	}
	k := new(APIKey)
	if _, err := c.do(ctx, http.MethodGet, "/v1/keys/"+url.PathEscape(id), nil, nil, k); err != nil {
		return nil, err
	}
	return k, nil
}

// RevokeKey ends an API key at once, on every node. A key revoked already
// answers an *Error with code "conflict".
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	if id == "" {
		return errEmpty("key id")
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, nil, nil)
	return err
}
