package switchyard

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// Outbound endpoints receive the tenant's events as signed HTTP POSTs
// (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature),
// for every event whose type they subscribe to and for every rule that
// delivers to them. Each delivery is a job on DeliveryQueue, enqueued in
// the event's transaction, and retried with backoff for about three days:
// nothing is lost between an event and its deliveries. The server works
// DeliveryQueue; an embedded client delivers only if its Config.Queues
// lists it (or AllQueues is set).

// DeliveryQueue is the queue outbound deliveries run on.
const DeliveryQueue = "switchyard.deliveries"

// deliveryKind is the kind of delivery jobs.
const deliveryKind = "switchyard.deliver"

// System event types about endpoints (DESIGN.md § Events the system
// emits). They are recorded and routed like any event; an endpoint is
// never sent the ones about itself.
const (
	EventDeliveryFailed   = "delivery.failed"   // a delivery's last attempt failed
	EventEndpointDisabled = "endpoint.disabled" // an endpoint answered 410 Gone
)

// Endpoint limits and defaults.
const (
	defaultEndpointConcurrency = 10
	maxEndpointConcurrency     = 1000
	maxEndpointHeaders         = 20
	maxEndpointURL             = 2048
	// SecretOverlap is how long a rotated-out endpoint secret still signs
	// deliveries, next to the new one, so that receivers can switch.
	SecretOverlap = 24 * time.Hour
)

// EndpointSpec is where and what an endpoint receives.
type EndpointSpec struct {
	// URL receives the deliveries: http or https. Private, loopback and
	// other internal addresses are refused when connecting, unless
	// Config.Deliveries.AllowPrivateTargets is set.
	URL string `json:"url"`
	// Types are the event types delivered, as patterns like a rule's
	// ("invoice.paid", "image.*", "*"). Empty: only what rules deliver.
	Types       []string `json:"types"`
	Description string   `json:"description,omitempty"`
	// Disabled: nothing is delivered; pending deliveries end. Set by
	// hand, or by Switchyard when the endpoint answers 410 Gone
	// (DisabledReason says why). Clearing it enables the endpoint again.
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// MaxConcurrency bounds the deliveries to this endpoint in flight at
	// once, per node. Default 10.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// Headers are added to every delivery.
	Headers map[string]string `json:"headers,omitempty"`
}

// EndpointSecret is one of an endpoint's signing secrets.
type EndpointSecret struct {
	Secret    string     `json:"secret"` // whsec_…
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"` // set when rotated out
}

// Endpoint is a stored outbound endpoint.
type Endpoint struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	EndpointSpec
	// Secrets sign every delivery; during a rotation both the new and the
	// old one sign, and the old one expires after SecretOverlap.
	Secrets   []EndpointSecret `json:"secrets"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

// endpointStored is an endpoint's stored spec.
type endpointStored struct {
	EndpointSpec
	Secrets []EndpointSecret `json:"secrets"`
}

func endpointFromStore(d *store.Definition) (*Endpoint, error) {
	var st endpointStored
	if err := json.Unmarshal(d.Spec, &st); err != nil {
		return nil, fmt.Errorf("endpoint %s: stored spec: %w", d.ID, err)
	}
	return &Endpoint{ID: d.ID, Name: d.Name, EndpointSpec: st.EndpointSpec, Secrets: st.Secrets,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}, nil
}

// activeSecrets are the secrets that sign a delivery made at now.
func (e *Endpoint) activeSecrets(now time.Time) [][]byte {
	var out [][]byte
	for _, s := range e.Secrets {
		if s.ExpiresAt != nil && !now.Before(*s.ExpiresAt) {
			continue
		}
		if k, err := webhook.ParseSecret(s.Secret); err == nil {
			out = append(out, k)
		}
	}
	return out
}

func (e *Endpoint) concurrency() int {
	if e.MaxConcurrency > 0 {
		return e.MaxConcurrency
	}
	return defaultEndpointConcurrency
}

func (e *Endpoint) wants(typ string) bool {
	if e.Disabled {
		return false
	}
	for _, p := range e.Types {
		if dispatch.MatchType(p, typ) {
			return true
		}
	}
	return false
}

// wantsSystem: the endpoint names the engine's events of type typ.
func (e *Endpoint) wantsSystem(typ string) bool {
	return !e.Disabled && dispatch.MatchSystemType(e.Types, typ)
}

// checkEndpoint checks what a caller gives.
func checkEndpoint(name string, spec EndpointSpec) error {
	if name == "" || len(name) > maxRuleName {
		return invalid("endpoint name: 1 to %d characters", maxRuleName)
	}
	u, err := url.Parse(spec.URL)
	switch {
	case spec.URL == "":
		return invalid("url is required")
	case len(spec.URL) > maxEndpointURL:
		return invalid("url is over %d characters", maxEndpointURL)
	case err != nil:
		return invalid("url %q: %v", spec.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid("url %q: want http or https", spec.URL)
	case u.Host == "":
		return invalid("url %q has no host", spec.URL)
	case u.User != nil:
		return invalid("url %q: credentials in the URL are not allowed; use headers", spec.URL)
	}
	if len(spec.Types) > dispatch.MaxTypes {
		return invalid("types: %d patterns, at most %d", len(spec.Types), dispatch.MaxTypes)
	}
	for _, p := range spec.Types {
		if _, err := dispatch.Compile("", "", dispatch.Spec{Types: []string{p}, Actions: []dispatch.Action{{Type: dispatch.ActionPublish, Topic: "x"}}}); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
	}
	if spec.MaxConcurrency < 0 || spec.MaxConcurrency > maxEndpointConcurrency {
		return invalid("max_concurrency must be between 1 and %d", maxEndpointConcurrency)
	}
	if len(spec.Headers) > maxEndpointHeaders {
		return invalid("headers: %d, at most %d", len(spec.Headers), maxEndpointHeaders)
	}
	for k, v := range spec.Headers {
		canonical := http.CanonicalHeaderKey(k)
		if !webhook.ValidHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			return invalid("header %q: not a valid header", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "webhook-") || canonical == "Content-Type" || canonical == "Host" || canonical == "Content-Length" {
			return invalid("header %q is set by Switchyard", k)
		}
	}
	return nil
}

// CreateEndpoint saves an outbound endpoint with a new signing secret.
func (c *Client) CreateEndpoint(ctx context.Context, name string, spec EndpointSpec) (*Endpoint, error) {
	if err := checkEndpoint(name, spec); err != nil {
		return nil, fmt.Errorf("switchyard: create endpoint: %w", err)
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, fmt.Errorf("switchyard: create endpoint: %w", err)
	}
	now := time.Now().UTC()
	st := endpointStored{EndpointSpec: spec, Secrets: []EndpointSecret{{Secret: secret, CreatedAt: now}}}
	d, err := c.saveDefinition(ctx, store.KindEndpoint, "ep_"+rand.Text()[:16], name, st, true, 0)
	if err != nil {
		return nil, fmt.Errorf("switchyard: create endpoint: %w", err)
	}
	return endpointFromStore(d)
}

// Endpoint returns one endpoint; ErrNotFound for an unknown id or another
// tenant's.
func (c *Client) Endpoint(ctx context.Context, id string) (*Endpoint, error) {
	d, err := c.store.GetDefinition(ctx, store.KindEndpoint, c.cfg.TenantID, id)
	if err != nil {
		return nil, fmt.Errorf("switchyard: endpoint %s: %w", id, err)
	}
	return endpointFromStore(d)
}

// Endpoints returns a page of the tenant's endpoints by id, and the cursor
// of the next page ("" after the last).
func (c *Client) Endpoints(ctx context.Context, cursor string, limit int) ([]*Endpoint, string, error) {
	return definitionList(ctx, c, store.KindEndpoint, cursor, limit, endpointFromStore)
}

// UpdateEndpoint replaces an endpoint's name and spec; its secrets stay.
func (c *Client) UpdateEndpoint(ctx context.Context, id, name string, spec EndpointSpec) (*Endpoint, error) {
	if err := checkEndpoint(name, spec); err != nil {
		return nil, fmt.Errorf("switchyard: update endpoint %s: %w", id, err)
	}
	if !spec.Disabled {
		spec.DisabledReason = ""
	}
	ep, err := c.changeEndpoint(ctx, c.cfg.TenantID, id, func(e *Endpoint) { e.Name, e.EndpointSpec = name, spec })
	if err != nil {
		return nil, fmt.Errorf("switchyard: update endpoint %s: %w", id, err)
	}
	return ep, nil
}

// RotateEndpointSecret adds a new signing secret; the others sign too for
// SecretOverlap more, then expire.
func (c *Client) RotateEndpointSecret(ctx context.Context, id string) (*Endpoint, error) {
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, fmt.Errorf("switchyard: rotate endpoint secret %s: %w", id, err)
	}
	ep, err := c.changeEndpoint(ctx, c.cfg.TenantID, id, func(e *Endpoint) {
		now := time.Now().UTC()
		until := now.Add(SecretOverlap)
		kept := []EndpointSecret{{Secret: secret, CreatedAt: now}}
		for _, s := range e.Secrets {
			if s.ExpiresAt != nil && !now.Before(*s.ExpiresAt) {
				continue // expired: dropped
			}
			if s.ExpiresAt == nil || s.ExpiresAt.After(until) {
				s.ExpiresAt = &until
			}
			kept = append(kept, s)
		}
		e.Secrets = kept
	})
	if err != nil {
		return nil, fmt.Errorf("switchyard: rotate endpoint secret %s: %w", id, err)
	}
	return ep, nil
}

// changeEndpoint reads an endpoint of tenant, applies change, and stores
// it, reading and applying again if the endpoint changed meanwhile: a
// rotation and a disabling at the same moment both take effect.
func (c *Client) changeEndpoint(ctx context.Context, tenant, id string, change func(*Endpoint)) (*Endpoint, error) {
	for tries := 0; ; tries++ {
		d, err := c.store.GetDefinition(ctx, store.KindEndpoint, tenant, id)
		if err != nil {
			return nil, err
		}
		ep, err := endpointFromStore(d)
		if err != nil {
			return nil, err
		}
		change(ep)
		d, err = c.ForTenant(tenant).saveDefinition(ctx, store.KindEndpoint, id, ep.Name,
			endpointStored{EndpointSpec: ep.EndpointSpec, Secrets: ep.Secrets}, false, d.Version)
		if errors.Is(err, store.ErrChanged) && tries < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return endpointFromStore(d)
	}
}

// DeleteEndpoint deletes an endpoint; its pending deliveries end.
func (c *Client) DeleteEndpoint(ctx context.Context, id string) error {
	if err := c.store.DeleteDefinition(ctx, store.KindEndpoint, c.cfg.TenantID, id); err != nil {
		return fmt.Errorf("switchyard: delete endpoint %s: %w", id, err)
	}
	c.clearDefinitions()
	return nil
}

// tenantEndpoints returns the tenant's endpoints, cached like its rules.
func (c *Client) tenantEndpoints(ctx context.Context) ([]*Endpoint, error) {
	now := time.Now()
	if eps, ok := c.endpoints.get(c.cfg.TenantID, now); ok {
		return eps, nil
	}
	gen := c.endpoints.generation()
	ds, err := c.store.ListDefinitions(ctx, store.KindEndpoint, c.cfg.TenantID, "", 0)
	if err != nil {
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	eps := make([]*Endpoint, 0, len(ds))
	for _, d := range ds {
		ep, err := endpointFromStore(d)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	c.endpoints.put(c.cfg.TenantID, eps, time.Time{}, now, gen)
	return eps, nil
}

// deliveryArgs are a delivery job's args: which event to which endpoint.
// The event is named by its CloudEvents source and id, which are known
// before it is recorded (its store id is not).
type deliveryArgs struct {
	EndpointID string `json:"endpoint_id"`
	Source     string `json:"source"`
	EventID    string `json:"event_id"`
}

// deliveryJob returns the job that delivers event ev to endpoint id.
func (c *Client) deliveryJob(endpointID string, ev *CloudEvent) (store.InsertParams, error) {
	args, err := json.Marshal(deliveryArgs{EndpointID: endpointID, Source: ev.Source, EventID: ev.ID})
	if err != nil {
		return store.InsertParams{}, err
	}
	return c.validate(EnqueueParams{
		Args: RawArgs{KindName: deliveryKind, JSON: args},
		Opts: &EnqueueOpts{Queue: DeliveryQueue, MaxAttempts: c.cfg.Deliveries.MaxAttempts},
	})
}

// Redeliver delivers a recorded event to an endpoint again, as a new
// delivery job, whatever became of the earlier ones.
func (c *Client) Redeliver(ctx context.Context, endpointID, eventID string) (*JobRow, error) {
	ep, err := c.Endpoint(ctx, endpointID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: redeliver: %w", err)
	}
	ev, err := c.GetEvent(ctx, eventID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: redeliver: %w", err)
	}
	if ep.Disabled {
		return nil, fmt.Errorf("switchyard: redeliver: %w: endpoint %s is disabled", ErrConflict, endpointID)
	}
	p, err := c.deliveryJob(ep.ID, &ev.CloudEvent)
	if err != nil {
		return nil, fmt.Errorf("switchyard: redeliver: %w", err)
	}
	release := c.events.Hold()
	res, err := c.store.Insert(ctx, []store.InsertParams{p})
	if err != nil {
		release(nil)
		return nil, fmt.Errorf("switchyard: redeliver: %w", err)
	}
	release(enqueuedEvents(res))
	return rowFromStore(res[0].Job), nil
}

// DeliveryAttempt is one attempt to deliver an event to an endpoint.
type DeliveryAttempt struct {
	ID         string              `json:"id"`
	EndpointID string              `json:"endpoint_id"`
	EventID    string              `json:"event_id"`
	JobID      string              `json:"job_id"`
	Attempt    int                 `json:"attempt"`
	At         time.Time           `json:"at"`
	Status     int                 `json:"status"` // 0: no response
	LatencyMs  float64             `json:"latency_ms"`
	Headers    map[string][]string `json:"response_headers"`
	Body       string              `json:"response_body"` // the first 4 KiB
	Error      string              `json:"error"`         // "" when delivered
}

// DeliveryAttempts returns a page of an endpoint's delivery attempts,
// newest first, optionally of one event, and the next page's cursor.
func (c *Client) DeliveryAttempts(ctx context.Context, endpointID, eventID, cursor string, limit int) ([]*DeliveryAttempt, string, error) {
	if _, err := c.Endpoint(ctx, endpointID); err != nil {
		return nil, "", fmt.Errorf("switchyard: delivery attempts: %w", err)
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, "", invalid("limit must be between 1 and 1000, got %d", limit)
	}
	p := store.DeliveryAttemptListParams{TenantID: c.cfg.TenantID, EndpointID: endpointID, Limit: limit + 1}
	if eventID != "" {
		n, err := strconv.ParseInt(eventID, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", invalid("malformed event id %q", eventID)
		}
		p.EventID = n
	}
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", invalid("malformed cursor %q", cursor)
		}
		p.Before = n
	}
	as, err := c.store.ListDeliveryAttempts(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: delivery attempts: %w", err)
	}
	next := ""
	if len(as) > limit {
		as = as[:limit]
		next = formatID(as[len(as)-1].ID)
	}
	out := make([]*DeliveryAttempt, len(as))
	for i, a := range as {
		out[i] = &DeliveryAttempt{
			ID: formatID(a.ID), EndpointID: a.EndpointID, EventID: formatID(a.EventID), JobID: formatID(a.JobID),
			Attempt: a.Attempt, At: a.At, Status: a.Status, LatencyMs: float64(a.Latency.Microseconds()) / 1000,
			Body: a.ResponseBody, Error: a.Error, Headers: map[string][]string{},
		}
		_ = json.Unmarshal(a.ResponseHeaders, &out[i].Headers)
	}
	return out, next, nil
}
