// Package client is a Go client for Switchyard's HTTP API.
//
// It depends on the standard library only, so a program that enqueues jobs
// on a Switchyard server does not pull in the engine or its database
// drivers. Every method takes a context first and answers an *Error when the
// server refused the request:
//
//	c, err := client.New(client.Config{BaseURL: "http://localhost:8080", APIKey: key})
//	job, _, err := c.EnqueueJob(ctx, client.JobRequest{Kind: "email.send", Args: args})
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Code == client.CodeInvalidArgument { … }
//
// A client authenticates with an API key or a user's access token (see
// Login), and acts in the credential's tenant unless Config.Tenant or
// WithTenant chooses another one it may act in.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultBaseURL is the server address used when Config.BaseURL is empty.
const DefaultBaseURL = "http://localhost:8080"

const (
	defaultTimeout   = 30 * time.Second
	defaultUserAgent = "switchyard-go-client"
	// maxErrorBody bounds how much of an error answer is read.
	maxErrorBody = 64 << 10
	// maxErrorMessage bounds the message made from an answer that is not
	// in the error shape (an HTML page from a proxy, say).
	maxErrorMessage = 200
)

// Config configures a Client. The zero value talks to a local server
// without an API key.
type Config struct {
	// BaseURL is the server's http or https address, optionally with a path
	// prefix when a proxy serves the API below one. Default:
	// http://localhost:8080.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>"; empty sends no
	// Authorization header. A user's access token (Session.AccessToken)
	// may be given here too. Default: none.
	APIKey string
	// Tenant is sent as the Switchyard-Tenant header: the tenant every
	// request acts in. A tenant the credential may not act in answers
	// not_found. Default: none, which means the API key's tenant, the
	// user's only tenant, or "default" for an instance administrator.
	Tenant string
	// HTTPClient sends the requests. Its Timeout bounds each call. Default:
	// an http.Client with a 30 s timeout.
	HTTPClient *http.Client
	// UserAgent is sent as the User-Agent header. Default:
	// "switchyard-go-client".
	UserAgent string
}

// Client calls one Switchyard server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], no trailing slash
	apiKey    string
	tenant    string
	userAgent string
	hc        *http.Client
}

// TenantHeader is the request header that chooses the tenant a request acts
// in.
const TenantHeader = "Switchyard-Tenant"

// New returns a Client for cfg, or an error when cfg.BaseURL is not an
// absolute http or https URL.
func New(cfg Config) (*Client, error) {
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("client: base URL %q: want an http:// or https:// URL", raw)
	case u.Host == "":
		return nil, fmt.Errorf("client: base URL %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("client: base URL %q: credentials go in APIKey, not the URL", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("client: base URL %q: no query or fragment allowed", raw)
	}
	c := &Client{
		base:      strings.TrimRight(u.String(), "/"),
		apiKey:    cfg.APIKey,
		tenant:    cfg.Tenant,
		userAgent: cfg.UserAgent,
		hc:        cfg.HTTPClient,
	}
	if c.userAgent == "" {
		c.userAgent = defaultUserAgent
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: defaultTimeout}
	}
	return c, nil
}

// BaseURL returns the server address the client calls, without a trailing
// slash.
func (c *Client) BaseURL() string { return c.base }

// Tenant returns the tenant the client asks to act in; "" for the
// credential's default.
func (c *Client) Tenant() string { return c.tenant }

// WithTenant returns a client that acts in tenant ("" for the credential's
// default) and is otherwise c. Both share c's connections.
func (c *Client) WithTenant(tenant string) *Client {
	cp := *c
	cp.tenant = tenant
	return &cp
}

// WithCredential returns a client that authenticates with token, an API
// key or an access token ("" for none), and is otherwise c. Both share c's
// connections.
func (c *Client) WithCredential(token string) *Client {
	cp := *c
	cp.apiKey = token
	return &cp
}

// Error codes the server answers with, one per HTTP status.
const (
	CodeInvalidArgument      = "invalid_argument"       // 400
	CodeUnauthenticated      = "unauthenticated"        // 401
	CodePermissionDenied     = "permission_denied"      // 403
	CodeNotFound             = "not_found"              // 404
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeConflict             = "conflict"               // 409
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeRateLimited          = "rate_limited"           // 429
	CodeInternal             = "internal"               // 500
	CodeUnavailable          = "unavailable"            // 503
)

// Error is the server's refusal of a request. Code is one of the Code
// constants, or "http_<status>" when the answer was not in the API's error
// shape (a proxy's error page, say), in which case Message holds the first
// 200 bytes of the body.
type Error struct {
	Status    int    // HTTP status
	Code      string // machine-readable kind, e.g. "not_found"
	Message   string // for people; do not parse it
	RequestID string // names the request in the server's logs; may be empty
}

// Error returns "switchyard: <code>: <message> (request <id>)".
func (e *Error) Error() string {
	if e.RequestID == "" {
		return "switchyard: " + e.Code + ": " + e.Message
	}
	return "switchyard: " + e.Code + ": " + e.Message + " (request " + e.RequestID + ")"
}

// do sends one request. path must already be escaped. in, when not nil, is
// sent as the JSON body; out, when not nil, receives a 2xx answer's JSON
// body. It returns the HTTP status of a 2xx answer.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("client: %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if c.tenant != "" {
		req.Header.Set(TenantHeader, c.tenant)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, readError(resp)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return 0, fmt.Errorf("client: %s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// readError turns a non-2xx answer into an *Error.
func readError(resp *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil && len(b) == 0 {
		return fmt.Errorf("client: read %d answer: %w", resp.StatusCode, err)
	}
	var shape struct {
		Error *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if json.Unmarshal(b, &shape) == nil && shape.Error != nil && shape.Error.Code != "" {
		e.Code, e.Message = shape.Error.Code, shape.Error.Message
		if shape.Error.RequestID != "" {
			e.RequestID = shape.Error.RequestID
		}
		return e
	}
	e.Code = "http_" + strconv.Itoa(resp.StatusCode)
	e.Message = strings.TrimSpace(truncate(b, maxErrorMessage))
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// truncate returns the first n bytes of b as a string, cut back to a rune
// boundary.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[:n]
	// Drop the bytes of a rune the cut split; at most UTFMax-1 of them.
	for i := 1; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size != 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return string(b)
}

// Health reports whether the server is ready to serve requests: nil when
// GET /readyz answers 2xx, else an *Error (code "unavailable" while the
// database is unreachable or the server is shutting down) or a transport
// error.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
	return err
}

// errEmpty is returned for an empty id or name, which would otherwise name
// a different route.
func errEmpty(what string) error {
	return errors.New("client: empty " + what)
}
