package switchyard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// Inbound sources: each verified request to POST /hooks/{source id}
// becomes an event of the source's tenant, routed like any other. The
// request's signature is checked with the source's scheme and secrets
// over the raw body, in constant time; a request that fails answers 401
// and records nothing but a metric and an audit entry.

// Inbound signature schemes.
const (
	SchemeStandardWebhooks = webhook.SchemeStandardWebhooks
	SchemeGitHub           = webhook.SchemeGitHub
	SchemeStripe           = webhook.SchemeStripe
	SchemeMeta             = webhook.SchemeMeta
	SchemeSlack            = webhook.SchemeSlack
	SchemeHMAC             = webhook.SchemeHMAC
)

// ErrBadSignature: a webhook's signature is missing, wrong or out of its
// time window. It also matches ErrUnauthenticated.
var ErrBadSignature = fmt.Errorf("%w: bad webhook signature", ErrUnauthenticated)

// SourceSpec is how an inbound source verifies its requests.
type SourceSpec struct {
	// Scheme is one of the Scheme constants.
	Scheme string `json:"scheme"`
	// Secrets are the active signing secrets; a request signed with any
	// of them is accepted, so a secret can be rotated by adding the new
	// one, switching the sender, then removing the old. When none is given
	// one is generated: "whsec_…" for standard-webhooks, 32 hex digits
	// otherwise.
	Secrets []string `json:"secrets"`
	// ToleranceSeconds is how far a signed timestamp may be from now
	// (standard-webhooks, stripe, slack, hmac with a timestamp header).
	// Default 300.
	ToleranceSeconds int `json:"tolerance_seconds,omitempty"`
	// hmac only: the signature header (required), the hash (sha1, sha256,
	// sha512), the encoding (hex, base64), a prefix stripped before
	// decoding ("sha256="), a header with the unix time signed as
	// "<time>.<body>", a header with the delivery id, and the type of the
	// events (default "webhook").
	Header          string `json:"header,omitempty"`
	Algorithm       string `json:"algorithm,omitempty"`
	Encoding        string `json:"encoding,omitempty"`
	Prefix          string `json:"prefix,omitempty"`
	TimestampHeader string `json:"timestamp_header,omitempty"`
	IDHeader        string `json:"id_header,omitempty"`
	EventType       string `json:"event_type,omitempty"`
	// VerifyToken answers Meta's subscription handshake (GET
	// /hooks/{id}?hub.mode=subscribe&hub.verify_token=…); meta only,
	// generated when not given.
	VerifyToken string `json:"verify_token,omitempty"`
}

// Source is a stored inbound source.
type Source struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	SourceSpec
	// Path is where the sender posts: /hooks/{id}.
	Path      string    `json:"path"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	tenantID string // known when found by id alone
}

func (s SourceSpec) verifier() webhook.Source {
	return webhook.Source{
		Scheme: s.Scheme, Secrets: s.Secrets, Tolerance: time.Duration(s.ToleranceSeconds) * time.Second,
		Header: s.Header, Algorithm: s.Algorithm, Encoding: s.Encoding, Prefix: s.Prefix,
		TimestampHeader: s.TimestampHeader, IDHeader: s.IDHeader, EventType: s.EventType, VerifyToken: s.VerifyToken,
	}
}

// completeSource generates what spec leaves to be generated and checks it.
func completeSource(name string, spec SourceSpec) (SourceSpec, error) {
	if name == "" || len(name) > maxRuleName {
		return spec, invalid("source name: 1 to %d characters", maxRuleName)
	}
	if spec.ToleranceSeconds < 0 || spec.ToleranceSeconds > 86400 {
		return spec, invalid("tolerance_seconds must be between 0 and 86400")
	}
	if len(spec.Secrets) == 0 {
		if spec.Scheme == SchemeStandardWebhooks {
			s, err := webhook.NewSecret()
			if err != nil {
				return spec, err
			}
			spec.Secrets = []string{s}
		} else {
			spec.Secrets = []string{randomHex(16)}
		}
	}
	if spec.Scheme == SchemeMeta && spec.VerifyToken == "" {
		spec.VerifyToken = randomHex(16)
	}
	if err := spec.verifier().Validate(); err != nil {
		return spec, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return spec, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func sourceFromStore(d *store.Definition) (*Source, error) {
	s := &Source{ID: d.ID, Name: d.Name, Path: "/hooks/" + d.ID, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if err := json.Unmarshal(d.Spec, &s.SourceSpec); err != nil {
		return nil, fmt.Errorf("source %s: stored spec: %w", d.ID, err)
	}
	return s, nil
}

// CreateSource saves an inbound source in this client's tenant.
func (c *Client) CreateSource(ctx context.Context, name string, spec SourceSpec) (*Source, error) {
	spec, err := completeSource(name, spec)
	if err != nil {
		return nil, fmt.Errorf("switchyard: create source: %w", err)
	}
	d, err := c.saveDefinition(ctx, store.KindSource, "src_"+rand.Text()[:16], name, spec, true, 0)
	if err != nil {
		return nil, fmt.Errorf("switchyard: create source: %w", err)
	}
	return sourceFromStore(d)
}

// UpdateSource replaces a source's name and spec; secrets left empty are
// generated anew.
func (c *Client) UpdateSource(ctx context.Context, id, name string, spec SourceSpec) (*Source, error) {
	spec, err := completeSource(name, spec)
	if err != nil {
		return nil, fmt.Errorf("switchyard: update source %s: %w", id, err)
	}
	d, err := c.saveDefinition(ctx, store.KindSource, id, name, spec, false, 0)
	if err != nil {
		return nil, fmt.Errorf("switchyard: update source %s: %w", id, err)
	}
	return sourceFromStore(d)
}

// saveDefinition creates or updates a definition of this client's tenant
// with spec as its JSON, and drops the caches of definitions.
//
// An update with a version other than 0 applies only to that version of
// the definition (see store.Definition.Version).
func (c *Client) saveDefinition(ctx context.Context, kind, id, name string, spec any, create bool, version int64) (*store.Definition, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	d := store.Definition{Kind: kind, ID: id, TenantID: c.cfg.TenantID, Name: name, Spec: b, Version: version}
	var out *store.Definition
	if create {
		out, err = c.store.CreateDefinition(ctx, d)
	} else {
		out, err = c.store.UpdateDefinition(ctx, d)
	}
	if err != nil {
		return nil, err
	}
	c.clearDefinitions()
	return out, nil
}

// clearDefinitions drops this node's caches of rules, sources and
// endpoints.
func (c *Client) clearDefinitions() {
	c.rules.clear()
	c.sources.clear()
	c.endpoints.clear()
}

// Source returns one source; ErrNotFound for an unknown id or another
// tenant's.
func (c *Client) Source(ctx context.Context, id string) (*Source, error) {
	d, err := c.store.GetDefinition(ctx, store.KindSource, c.cfg.TenantID, id)
	if err != nil {
		return nil, fmt.Errorf("switchyard: source %s: %w", id, err)
	}
	return sourceFromStore(d)
}

// Sources returns a page of the tenant's sources by id, and the cursor of
// the next page ("" after the last).
func (c *Client) Sources(ctx context.Context, cursor string, limit int) ([]*Source, string, error) {
	return definitionList(ctx, c, store.KindSource, cursor, limit, sourceFromStore)
}

// definitionList reads a page of the tenant's definitions of a kind, as
// conv makes them.
func definitionList[T any](ctx context.Context, c *Client, kind, cursor string, limit int, conv func(*store.Definition) (T, error)) ([]T, string, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, "", invalid("limit must be between 1 and 1000, got %d", limit)
	}
	ds, err := c.store.ListDefinitions(ctx, kind, c.cfg.TenantID, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list %ss: %w", kind, err)
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = ds[len(ds)-1].ID
	}
	out := make([]T, len(ds))
	for i, d := range ds {
		if out[i], err = conv(d); err != nil {
			return nil, "", fmt.Errorf("switchyard: list %ss: %w", kind, err)
		}
	}
	return out, next, nil
}

// DeleteSource deletes a source: its URL answers 404 from then on.
func (c *Client) DeleteSource(ctx context.Context, id string) error {
	if err := c.store.DeleteDefinition(ctx, store.KindSource, c.cfg.TenantID, id); err != nil {
		return fmt.Errorf("switchyard: delete source %s: %w", id, err)
	}
	c.clearDefinitions()
	return nil
}

// sourceByID finds a source of any tenant, for its URL; cached.
func (c *Client) sourceByID(ctx context.Context, id string) (*Source, error) {
	now := time.Now()
	if s, ok := c.sources.get(id, now); ok {
		if s == nil {
			return nil, fmt.Errorf("source %s: %w", id, ErrNotFound)
		}
		return s, nil
	}
	gen := c.sources.generation()
	d, err := c.store.GetDefinition(ctx, store.KindSource, "", id)
	if errors.Is(err, store.ErrNotFound) {
		c.sources.put(id, nil, time.Time{}, now, gen)
		return nil, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	s, err := sourceFromStore(d)
	if err != nil {
		return nil, err
	}
	s.tenantID = d.TenantID
	c.sources.put(id, s, time.Time{}, now, gen)
	return s, nil
}

// Webhook is one request to a source's URL.
type Webhook struct {
	SourceID string
	Header   http.Header
	Body     []byte
}

// ReceivedWebhook is what a verified webhook became.
type ReceivedWebhook struct {
	TenantID string
	Scheme   string
	SentEvent
}

// ReceiveWebhook verifies a request to a source's URL and records it as an
// event of the source's tenant, routed by its rules: type and id as the
// scheme says (github.push and the X-GitHub-Delivery id, …), source
// /hooks/{id}, the body as data (JSON, or base64 for other content
// types). A delivery id seen before answers the event recorded then, so a
// sender's retries make one event. An unknown source answers ErrNotFound;
// a bad signature ErrBadSignature (with the reason), and nothing is
// recorded.
func (c *Client) ReceiveWebhook(ctx context.Context, w Webhook) (*ReceivedWebhook, error) {
	src, err := c.sourceByID(ctx, w.SourceID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: webhook: %w", err)
	}
	out := &ReceivedWebhook{TenantID: src.tenantID, Scheme: src.Scheme}
	d, err := webhook.Verify(src.verifier(), w.Header, w.Body, time.Now())
	if err != nil {
		return out, fmt.Errorf("switchyard: webhook to %s: %w: %w", w.SourceID, ErrBadSignature, err)
	}
	ev := CloudEvent{SpecVersion: "1.0", ID: d.ID, Source: "/hooks/" + src.ID, Type: d.Type}
	if !d.Time.IsZero() {
		ev.Time = &d.Time
	}
	ct := w.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		ev.DataContentType = mt
	}
	var compact bytes.Buffer
	switch {
	case len(w.Body) == 0:
	case isJSONMediaType(ev.DataContentType) && json.Compact(&compact, w.Body) == nil: // one pass checks and compacts
		ev.Data = compact.Bytes()
	case ev.DataContentType == "application/x-www-form-urlencoded":
		// Slack's commands and interactions: the form as a JSON object.
		form, err := url.ParseQuery(string(w.Body))
		if err != nil {
			return out, invalid("webhook: malformed form body: %v", err)
		}
		obj := make(map[string]string, len(form))
		for k, v := range form {
			obj[k] = strings.Join(v, ",")
		}
		ev.Data, _ = json.Marshal(obj)
		ev.DataContentType = "application/json"
	default:
		ev.DataBase64 = base64.StdEncoding.EncodeToString(w.Body)
	}
	// Its data, if any, was compacted from checked JSON or marshalled above.
	sent, err := c.ForTenant(src.tenantID).sendEvents(ctx, eventOrigin{checkedData: true}, ev)
	if err != nil {
		return out, fmt.Errorf("switchyard: webhook to %s: %w", w.SourceID, err)
	}
	out.SentEvent = sent[0]
	return out, nil
}

// isJSONMediaType reports whether a media type is JSON's, or a +json
// suffix type.
func isJSONMediaType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// WebhookHandshake answers a provider's subscription handshake on a
// source's URL (Meta's GET with hub.mode, hub.verify_token and
// hub.challenge): the challenge to echo. A source of another scheme has no
// handshake (ErrNotFound); a wrong token is ErrBadSignature.
func (c *Client) WebhookHandshake(ctx context.Context, sourceID string, query url.Values) (string, error) {
	src, err := c.sourceByID(ctx, sourceID)
	if err != nil {
		return "", fmt.Errorf("switchyard: webhook handshake: %w", err)
	}
	if src.Scheme != SchemeMeta {
		return "", fmt.Errorf("switchyard: webhook handshake: %w: source %s (%s) has no GET handshake", ErrNotFound, sourceID, src.Scheme)
	}
	challenge, err := webhook.MetaHandshake(src.verifier(), query)
	if err != nil {
		return "", fmt.Errorf("switchyard: webhook handshake: %w: %w", ErrBadSignature, err)
	}
	return challenge, nil
}
