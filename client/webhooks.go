package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Source is an inbound webhook source: requests to Path (/hooks/{id}),
// verified with Scheme and Secrets, become events of the tenant.
type Source struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Scheme is standard-webhooks, github, stripe, meta, slack or hmac.
	Scheme string `json:"scheme"`
	// Secrets are the active signing secrets; callers below admin see
	// them redacted ("0123456789…").
	Secrets          []string `json:"secrets"`
	ToleranceSeconds int      `json:"tolerance_seconds,omitempty"`
	// hmac only.
	Header          string `json:"header,omitempty"`
	Algorithm       string `json:"algorithm,omitempty"`
	Encoding        string `json:"encoding,omitempty"`
	Prefix          string `json:"prefix,omitempty"`
	TimestampHeader string `json:"timestamp_header,omitempty"`
	IDHeader        string `json:"id_header,omitempty"`
	EventType       string `json:"event_type,omitempty"`
	// VerifyToken answers Meta's GET handshake (meta only).
	VerifyToken string    `json:"verify_token,omitempty"`
	Path        string    `json:"path"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`

	// Raw is the source exactly as the server sent it. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's source shape, keeping a copy in Raw.
func (s *Source) UnmarshalJSON(b []byte) error {
	type plain Source
	*s = Source{}
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	s.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// SourceRequest is a whole source, to create or replace. Secrets left out
// are generated (and Meta's VerifyToken).
type SourceRequest struct {
	Name             string   `json:"name"`
	Scheme           string   `json:"scheme"`
	Secrets          []string `json:"secrets,omitempty"`
	ToleranceSeconds int      `json:"tolerance_seconds,omitempty"`
	Header           string   `json:"header,omitempty"`
	Algorithm        string   `json:"algorithm,omitempty"`
	Encoding         string   `json:"encoding,omitempty"`
	Prefix           string   `json:"prefix,omitempty"`
	TimestampHeader  string   `json:"timestamp_header,omitempty"`
	IDHeader         string   `json:"id_header,omitempty"`
	EventType        string   `json:"event_type,omitempty"`
	VerifyToken      string   `json:"verify_token,omitempty"`
}

// SourcePage is one page of ListSources.
type SourcePage = Page[Source]

// CreateSource saves an inbound source in the tenant (admin).
func (c *Client) CreateSource(ctx context.Context, req SourceRequest) (*Source, error) {
	s := new(Source)
	if _, err := c.do(ctx, http.MethodPost, "/v1/sources", nil, req, s); err != nil {
		return nil, err
	}
	return s, nil
}

// ListSources returns one page of the tenant's sources in id order.
func (c *Client) ListSources(ctx context.Context, p ListParams) (*SourcePage, error) {
	return listPage[Source](ctx, c, "/v1/sources", p.query())
}

// GetSource returns one of the tenant's sources.
func (c *Client) GetSource(ctx context.Context, id string) (*Source, error) {
	return c.sourceCall(ctx, http.MethodGet, id, nil)
}

// ReplaceSource replaces a source's name and spec, as one (admin).
func (c *Client) ReplaceSource(ctx context.Context, id string, req SourceRequest) (*Source, error) {
	return c.sourceCall(ctx, http.MethodPut, id, req)
}

// DeleteSource deletes a source: requests to its path answer 404 (admin).
func (c *Client) DeleteSource(ctx context.Context, id string) error {
	if id == "" {
		return errEmpty("source id")
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/sources/"+url.PathEscape(id), nil, nil, nil)
	return err
}

func (c *Client) sourceCall(ctx context.Context, method, id string, in any) (*Source, error) {
	if id == "" {
		return nil, errEmpty("source id")
	}
	s := new(Source)
	if _, err := c.do(ctx, method, "/v1/sources/"+url.PathEscape(id), nil, in, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Endpoint is an outbound webhook endpoint: events of its Types (and
// those rules deliver to it) are POSTed to URL, signed per Standard
// Webhooks with its secrets.
type Endpoint struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	Types          []string          `json:"types"`
	Description    string            `json:"description,omitempty"`
	Disabled       bool              `json:"disabled"`
	DisabledReason string            `json:"disabled_reason,omitempty"`
	MaxConcurrency int               `json:"max_concurrency,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	// Secrets sign every delivery, newest first; callers below admin see
	// them redacted.
	Secrets   []EndpointSecret `json:"secrets"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`

	// Raw is the endpoint exactly as the server sent it. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's endpoint shape, keeping a copy in Raw.
func (e *Endpoint) UnmarshalJSON(b []byte) error {
	type plain Endpoint
	*e = Endpoint{}
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// EndpointSecret is one of an endpoint's signing secrets ("whsec_…").
// ExpiresAt is set once a rotation replaced it: it signs until then.
type EndpointSecret struct {
	Secret    string     `json:"secret"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// EndpointRequest is a whole endpoint, to create or replace; its secrets
// are the server's.
type EndpointRequest struct {
	Name           string            `json:"name"`
	URL            string            `json:"url"`
	Types          []string          `json:"types,omitempty"`
	Description    string            `json:"description,omitempty"`
	Disabled       bool              `json:"disabled,omitempty"`
	MaxConcurrency int               `json:"max_concurrency,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
}

// EndpointPage is one page of ListEndpoints.
type EndpointPage = Page[Endpoint]

// DeliveryAttempt is one attempt to deliver an event to an endpoint.
type DeliveryAttempt struct {
	ID              string              `json:"id"`
	EndpointID      string              `json:"endpoint_id"`
	EventID         string              `json:"event_id"`
	JobID           string              `json:"job_id"`
	Attempt         int                 `json:"attempt"`
	At              time.Time           `json:"at"`
	Status          int                 `json:"status"` // 0: no answer
	LatencyMs       float64             `json:"latency_ms"`
	ResponseHeaders map[string][]string `json:"response_headers"`
	ResponseBody    string              `json:"response_body"` // the first 4 KiB
	Error           string              `json:"error"`         // "" when delivered
}

// DeliveryAttemptPage is one page of ListDeliveryAttempts.
type DeliveryAttemptPage = Page[DeliveryAttempt]

// ListDeliveryAttemptsParams selects attempts.
type ListDeliveryAttemptsParams struct {
	EventID string // only this event's (Switchyard's event id)
	Limit   int
	Cursor  string
}

// CreateEndpoint saves an outbound endpoint with a new secret (admin).
func (c *Client) CreateEndpoint(ctx context.Context, req EndpointRequest) (*Endpoint, error) {
	e := new(Endpoint)
	if _, err := c.do(ctx, http.MethodPost, "/v1/endpoints", nil, req, e); err != nil {
		return nil, err
	}
	return e, nil
}

// ListEndpoints returns one page of the tenant's endpoints in id order.
func (c *Client) ListEndpoints(ctx context.Context, p ListParams) (*EndpointPage, error) {
	return listPage[Endpoint](ctx, c, "/v1/endpoints", p.query())
}

// GetEndpoint returns one of the tenant's endpoints.
func (c *Client) GetEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	return c.endpointCall(ctx, http.MethodGet, id, "", nil)
}

// ReplaceEndpoint replaces an endpoint's name and spec, as one; its
// secrets stay (admin).
func (c *Client) ReplaceEndpoint(ctx context.Context, id string, req EndpointRequest) (*Endpoint, error) {
	return c.endpointCall(ctx, http.MethodPut, id, "", req)
}

// RotateEndpointSecret adds a new signing secret; the others keep signing
// for 24 hours (admin).
func (c *Client) RotateEndpointSecret(ctx context.Context, id string) (*Endpoint, error) {
	return c.endpointCall(ctx, http.MethodPost, id, "/rotate-secret", nil)
}

// DeleteEndpoint deletes an endpoint; its pending deliveries end (admin).
func (c *Client) DeleteEndpoint(ctx context.Context, id string) error {
	if id == "" {
		return errEmpty("endpoint id")
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/endpoints/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// ListDeliveryAttempts returns one page of an endpoint's delivery
// attempts, newest first.
func (c *Client) ListDeliveryAttempts(ctx context.Context, id string, p ListDeliveryAttemptsParams) (*DeliveryAttemptPage, error) {
	if id == "" {
		return nil, errEmpty("endpoint id")
	}
	q := ListParams{Limit: p.Limit, Cursor: p.Cursor}.query()
	if p.EventID != "" {
		q.Set("event_id", p.EventID)
	}
	return listPage[DeliveryAttempt](ctx, c, "/v1/endpoints/"+url.PathEscape(id)+"/attempts", q)
}

// Redeliver enqueues a new delivery of a recorded event (Switchyard's
// event id) to the endpoint and returns its job (operator).
func (c *Client) Redeliver(ctx context.Context, id, eventID string) (*Job, error) {
	if id == "" {
		return nil, errEmpty("endpoint id")
	}
	if eventID == "" {
		return nil, errEmpty("event id")
	}
	j := new(Job)
	body := struct {
		EventID string `json:"event_id"`
	}{eventID}
	if _, err := c.do(ctx, http.MethodPost, "/v1/endpoints/"+url.PathEscape(id)+"/redeliver", nil, body, j); err != nil {
		return nil, err
	}
	return j, nil
}

func (c *Client) endpointCall(ctx context.Context, method, id, action string, in any) (*Endpoint, error) {
	if id == "" {
		return nil, errEmpty("endpoint id")
	}
	e := new(Endpoint)
	if _, err := c.do(ctx, method, "/v1/endpoints/"+url.PathEscape(id)+action, nil, in, e); err != nil {
		return nil, err
	}
	return e, nil
}
