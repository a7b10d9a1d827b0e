package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// Limits of the http kind.
const (
	defaultHTTPTimeout = 30 * time.Second
	minHTTPTimeout     = time.Millisecond
	maxHTTPTimeout     = 15 * time.Minute
	// maxRetryAfter caps a server's Retry-After, so a confused server cannot
	// park a job for months.
	maxRetryAfter = 24 * time.Hour
	// errorBodyBytes of a failed response's body go into the error message.
	errorBodyBytes = 200
	// maxEchoBytes caps other server-chosen text (Location) in messages.
	maxEchoBytes = 500
	// drainBytes of an unread body are read before closing it, so the
	// connection can be reused; a longer body closes the connection.
	drainBytes = 32 << 10
)

// HTTPArgs are the args of the http kind.
type HTTPArgs struct {
	// URL is an absolute http or https URL. Required.
	URL string `json:"url"`
	// Method is GET, HEAD, POST, PUT, PATCH or DELETE. Default POST.
	Method string `json:"method,omitempty"`
	// Headers to send. Host, Content-Length, hop-by-hop headers and the
	// Switchyard-* headers may not be set; User-Agent, Content-Type and
	// Idempotency-Key replace the defaults.
	Headers map[string]string `json:"headers,omitempty"`
	// Body, if present, is sent JSON-encoded; JSON null sends no body. If
	// absent, POST, PUT and PATCH send the whole args object, and GET, HEAD
	// and DELETE send no body.
	Body json.RawMessage `json:"body,omitempty"`
	// Timeout of the request, a Go duration from 1ms to 15m. Default 30s.
	Timeout string `json:"timeout,omitempty"`
}

// Kind implements switchyard.JobArgs.
func (HTTPArgs) Kind() string { return KindHTTP }

// Validate implements switchyard.Validator.
func (a HTTPArgs) Validate() error {
	_, err := a.parse()
	return err
}

// httpRequest is HTTPArgs checked and with defaults applied.
type httpRequest struct {
	url      *url.URL
	method   string
	header   http.Header
	body     []byte // nil: no body
	sendArgs bool   // send the job's args as the body
	timeout  time.Duration
}

// forbiddenHeaders are set by the transport or by the kind itself; letting a
// job set them would be ignored, break the request, or forge the kind's own.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true,
	"Switchyard-Job-Id": true, "Switchyard-Attempt": true,
}

// parse checks the args. Its errors never contain header values or the
// URL's password: both may carry secrets.
func (a HTTPArgs) parse() (*httpRequest, error) {
	r := &httpRequest{method: a.Method, header: http.Header{}, timeout: defaultHTTPTimeout}
	if a.URL == "" {
		return nil, errors.New("url is required")
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL itself
		}
		return nil, fmt.Errorf("url is not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("url must be absolute, with a host")
	}
	r.url = u

	switch r.method {
	case "":
		r.method = http.MethodPost
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return nil, fmt.Errorf("method %q: want one of GET, HEAD, POST, PUT, PATCH, DELETE", r.method)
	}

	names := make([]string, 0, len(a.Headers))
	for name := range a.Headers {
		names = append(names, name)
	}
	sort.Strings(names) // the same args always give the same error
	for _, name := range names {
		if !webhook.ValidHeaderName(name) {
			return nil, fmt.Errorf("headers: %q is not a valid header name", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if forbiddenHeaders[canon] {
			return nil, fmt.Errorf("headers: %s may not be set", canon)
		}
		if !validHeaderValue(a.Headers[name]) {
			return nil, fmt.Errorf("headers: the value of %s contains control characters", canon)
		}
		if _, dup := r.header[canon]; dup {
			return nil, fmt.Errorf("headers: %s is given twice (header names are case-insensitive)", canon)
		}
		r.header[canon] = []string{a.Headers[name]}
	}

	switch body := bytes.TrimSpace(a.Body); {
	case len(body) == 0:
		r.sendArgs = r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch
	case string(body) == "null":
		// No body: the only way to send a POST without one.
	default:
		r.body = body
	}

	if a.Timeout != "" {
		d, err := time.ParseDuration(a.Timeout)
		if err != nil {
			return nil, fmt.Errorf(`timeout %q is not a Go duration such as "30s"`, a.Timeout)
		}
		if d < minHTTPTimeout || d > maxHTTPTimeout {
			return nil, fmt.Errorf("timeout %s must be between 1ms and 15m", a.Timeout)
		}
		r.timeout = d
	}
	return r, nil
}

// validHeaderValue reports whether s has no control characters but tab, so
// it cannot end the header early (CR, LF) or be cut (NUL).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// newHTTPClient is the http kind's default client: webhook.NewHTTPClient,
// whose guard checks every address it connects to (after DNS, so neither a
// name resolving to an internal address nor DNS rebinding gets past it)
// and which uses no proxy, since a proxy would connect where the guard
// cannot see. It follows no redirect: a redirect could take the request
// (and its headers) anywhere; the job ends dead instead, naming the
// Location. It has no overall timeout: each job's own applies.
func newHTTPClient(allowPrivate bool) *http.Client {
	return webhook.NewHTTPClient(webhook.Guard{AllowPrivate: allowPrivate}, 0)
}

type httpKind struct {
	cfg Config
}

// httpResult is the result of a successful http job.
type httpResult struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

func (k *httpKind) run(ctx context.Context, job *switchyard.Job[HTTPArgs]) error {
	req, err := job.Args.parse()
	if err != nil {
		return switchyard.Discard(err) // validated when decoded; kept for safety
	}
	body := req.body
	if req.sendArgs {
		body = job.JobRow.Args
	}
	// what prefixes every message: method and URL without its password.
	what := req.method + " " + req.url.Redacted()

	reqCtx, cancel := context.WithTimeout(ctx, req.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(reqCtx, req.method, req.url.String(), rd)
	if err != nil {
		return switchyard.Discard(fmt.Errorf("%s: %w", what, err))
	}
	hr.Header = req.header.Clone()
	if body != nil && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", k.cfg.UserAgent)
	}
	if hr.Header.Get("Idempotency-Key") == "" {
		// The same for every attempt, so a receiver can deduplicate retries.
		hr.Header.Set("Idempotency-Key", job.ID)
	}
	hr.Header.Set("Switchyard-Job-Id", job.ID)
	hr.Header.Set("Switchyard-Attempt", strconv.Itoa(job.Attempt))

	resp, err := k.cfg.HTTPClient.Do(hr)
	if err != nil {
		err = requestError(ctx, reqCtx, what, req.timeout, err)
		if errors.Is(err, webhook.ErrForbiddenAddress) {
			// The URL leads to an internal address: retrying would only
			// knock on the same door.
			return switchyard.Discard(err)
		}
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		_ = resp.Body.Close()
	}()

	status := clean(resp.Status, maxEchoBytes)
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		limit := k.cfg.MaxResponseBytes
		data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
		if err != nil {
			return requestError(ctx, reqCtx, what+": reading the response", req.timeout, err)
		}
		res := httpResult{Status: code, Headers: map[string]string{}, Body: responseBody(data, limit)}
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			res.Headers["Content-Type"] = clean(ct, maxEchoBytes)
		}
		return job.SetResult(res)
	case code >= 300 && code < 400:
		msg := fmt.Sprintf("%s: %s: redirects are not followed", what, status)
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += "; Location: " + clean(loc, maxEchoBytes)
		} else {
			msg += "; no Location given"
		}
		return switchyard.Discard(errors.New(msg))
	case code == http.StatusTooManyRequests || code >= 500 && code < 600:
		err := statusError(what, status, resp.Body)
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return switchyard.RetryAfter(d, err)
		}
		return err
	case code >= 400 && code < 500:
		// The request itself is wrong; sending it again would not help.
		return switchyard.Discard(statusError(what, status, resp.Body))
	default:
		return statusError(what, status, resp.Body)
	}
}

// requestError describes a request that got no (complete) response.
func requestError(ctx, reqCtx context.Context, what string, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		// The job's own context ended (cancel, job timeout, shutdown): its
		// cause tells the runner which.
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	if errors.Is(reqCtx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: timed out after %s", what, timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is already in what, without its password
	}
	return fmt.Errorf("%s: %w", what, err)
}

// statusError describes an unsuccessful response with the start of its body.
func statusError(what, status string, body io.Reader) error {
	snippet, _ := io.ReadAll(io.LimitReader(body, errorBodyBytes))
	msg := what + ": " + status
	if s := strings.TrimSpace(clean(string(snippet), errorBodyBytes)); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// parseRetryAfter reads a Retry-After header (delta-seconds or HTTP-date),
// capped at maxRetryAfter; ok is false if it is absent, unparsable or in
// the past.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true // all digits, so only too large
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// responseBody is the body for the result: the JSON value if data is JSON
// within limit bytes, else a string of its first limit bytes.
func responseBody(data []byte, limit int) json.RawMessage {
	if len(data) <= limit {
		if v, ok := storableJSON(data); ok {
			return v
		}
	}
	if len(data) > limit {
		data = data[:limit]
	}
	return encodeJSON(clean(string(data), limit))
}

// storableJSON re-encodes data if it is JSON that every backend can store:
// decoding replaces invalid UTF-8 and lone surrogates, and a value holding
// NUL is refused, because PostgreSQL's jsonb rejects \u0000.
func storableJSON(data []byte) (json.RawMessage, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep numbers exactly as sent
	var v any
	if err := dec.Decode(&v); err != nil || hasNUL(v) {
		return nil, false
	}
	return encodeJSON(v), true
}

func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// encodeJSON encodes v without escaping <, > and &, which would only make
// stored bodies harder to read.
func encodeJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage(`null`) // cannot happen for decoded JSON and strings
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// clean makes server-chosen text safe to store and show: at most n bytes,
// valid UTF-8, and no NUL, which PostgreSQL text cannot hold.
func clean(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
