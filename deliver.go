package switchyard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// DeliveryConfig configures outbound webhook deliveries.
type DeliveryConfig struct {
	// MaxAttempts per delivery. Default 20: with the backoff below, about
	// three days of retries.
	MaxAttempts int
	// Backoff is the wait before retry n: BackoffBase × 2^(n-1), at most
	// BackoffCap, ±20% jitter. Defaults 5s and 10h.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// Timeout bounds one attempt: connecting, sending, and reading the
	// answer. Default 15s.
	Timeout time.Duration
	// AllowPrivateTargets lets endpoints (and the http job kind, where the
	// server wires it) reach loopback, private and other internal
	// addresses. For development and tests only: otherwise a tenant could
	// make the server call its own network.
	AllowPrivateTargets bool
	// BreakerFailures is how many failed attempts in a row open an
	// endpoint's circuit on a node: its deliveries then wait, without
	// using attempts, for BreakerCooldown (doubling, up to 10 minutes,
	// while trials keep failing). Defaults 5 and 30s.
	BreakerFailures int
	BreakerCooldown time.Duration
	// HTTPClient, if set, replaces the guarded client (tests).
	HTTPClient *http.Client
}

func (d *DeliveryConfig) setDefaults() {
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 20
	}
	if d.BackoffBase <= 0 {
		d.BackoffBase = 5 * time.Second
	}
	if d.BackoffCap <= 0 {
		d.BackoffCap = 10 * time.Hour
	}
	if d.Timeout <= 0 {
		d.Timeout = 15 * time.Second
	}
	if d.BreakerFailures <= 0 {
		d.BreakerFailures = 5
	}
	if d.BreakerCooldown <= 0 {
		d.BreakerCooldown = 30 * time.Second
	}
}

// NextRetry implements RetryPolicy for deliveries.
func (d DeliveryConfig) NextRetry(attempt int) time.Duration {
	wait := d.BackoffCap
	if attempt < 40 {
		wait = min(d.BackoffBase<<max(attempt-1, 0), d.BackoffCap)
	}
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(wait) * jitter)
}

// Limits of what an attempt keeps of the answer.
const (
	maxResponseBody = 4 << 10
	// drainBody is how much more of an answer is read, so that the
	// connection can be reused; the rest is dropped with the connection.
	drainBody = 64 << 10
)

// deliverer runs delivery jobs: it signs and posts, keeps a circuit
// breaker and a concurrency limit per endpoint, records every attempt,
// and disables an endpoint that answers 410.
type deliverer struct {
	c    *Client
	cfg  DeliveryConfig
	http *http.Client

	mu       sync.Mutex
	breakers map[string]*breaker
	inFlight map[string]int
}

func newDeliverer(c *Client) *deliverer {
	cfg := c.cfg.Deliveries
	hc := cfg.HTTPClient
	if hc == nil {
		hc = webhook.NewHTTPClient(webhook.Guard{AllowPrivate: cfg.AllowPrivateTargets}, cfg.Timeout)
	}
	return &deliverer{c: c, cfg: cfg, http: hc, breakers: map[string]*breaker{}, inFlight: map[string]int{}}
}

// kind is the delivery kind for the registry.
func (d *deliverer) kind() *queue.Kind {
	return &queue.Kind{
		Name: deliveryKind,
		Validate: func(_ any, encoded []byte) error {
			var a deliveryArgs
			dec := json.NewDecoder(bytes.NewReader(encoded))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&a); err != nil || a.EndpointID == "" || a.Source == "" || a.EventID == "" {
				return invalid("a delivery's args are {\"endpoint_id\", \"source\", \"event_id\"}")
			}
			return nil
		},
		Handler: d.run,
		Retry:   d.cfg,
		Timeout: d.cfg.Timeout + 15*time.Second, // room to record the attempt
	}
}

// breaker is one endpoint's circuit on this node.
type breaker struct {
	failures  int       // in a row
	openUntil time.Time // zero: closed
	cooldown  time.Duration
	trial     bool // half-open: one attempt is out
}

// admit reports how long a delivery to ep must wait (0: go now) and
// whether it may go: at most ep's concurrency at once, none while the
// circuit is open, one trial when its cooldown is over.
func (d *deliverer) admit(ep *Endpoint, now time.Time) (wait time.Duration, release func(ok bool)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.breakers[ep.ID]
	if b == nil {
		b = &breaker{}
		d.breakers[ep.ID] = b
	}
	trial := false
	if !b.openUntil.IsZero() {
		if now.Before(b.openUntil) || b.trial {
			return max(b.openUntil.Sub(now), time.Second) + jitter(time.Second), nil
		}
		b.trial, trial = true, true
	}
	if d.inFlight[ep.ID] >= ep.concurrency() {
		if trial {
			b.trial = false
		}
		return 100*time.Millisecond + jitter(400*time.Millisecond), nil
	}
	d.inFlight[ep.ID]++
	return 0, func(ok bool) { d.done(ep.ID, trial, ok) }
}

func (d *deliverer) done(id string, trial, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight[id]--
	if d.inFlight[id] <= 0 {
		delete(d.inFlight, id)
	}
	b := d.breakers[id]
	if trial {
		b.trial = false
	}
	if ok {
		*b = breaker{}
		return
	}
	b.failures++
	if trial || b.failures >= d.cfg.BreakerFailures {
		b.cooldown = min(max(2*b.cooldown, d.cfg.BreakerCooldown), 10*time.Minute)
		b.openUntil = time.Now().Add(b.cooldown)
	}
}

func jitter(d time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(d))) }

// run is the delivery job's handler.
func (d *deliverer) run(ctx context.Context, exec *queue.Execution) error {
	var a deliveryArgs
	if err := json.Unmarshal(exec.Job.Args, &a); err != nil {
		return Discard(fmt.Errorf("delivery args: %w", err))
	}
	tenant := exec.Job.TenantID
	def, err := d.c.store.GetDefinition(ctx, store.KindEndpoint, tenant, a.EndpointID)
	if errors.Is(err, store.ErrNotFound) {
		return Discard(fmt.Errorf("endpoint %s was deleted", a.EndpointID))
	}
	if err != nil {
		return err
	}
	ep, err := endpointFromStore(def)
	if err != nil {
		return Discard(err)
	}
	if ep.Disabled {
		return Discard(fmt.Errorf("endpoint %s is disabled: %s", ep.ID, ep.DisabledReason))
	}
	ev, err := d.c.store.EventBySource(ctx, tenant, a.Source, a.EventID)
	if errors.Is(err, store.ErrNotFound) {
		return Discard(fmt.Errorf("event %s from %s is no longer recorded", a.EventID, a.Source))
	}
	if err != nil {
		return err
	}
	wait, release := d.admit(ep, time.Now())
	if release == nil {
		return Snooze(wait)
	}
	status, problem, retryAfter := d.post(ctx, exec, ep, ev)
	release(problem == "" || (status >= 400 && status < 500 && status != 408 && status != 429))

	last := exec.Job.Attempt >= exec.Job.MaxAttempts
	switch {
	case problem == "":
		return nil
	case status == http.StatusGone:
		d.disable(ctx, tenant, ep, "the endpoint answered 410 Gone")
		return Discard(errors.New(problem + "; the endpoint is disabled"))
	case last:
		d.failed(ctx, tenant, ep, ev, problem)
	case retryAfter > 0:
		return RetryAfter(retryAfter, errors.New(problem))
	}
	return errors.New(problem)
}

// post makes one attempt and records it. It returns the status (0 for no
// answer), what went wrong ("" for a 2xx), and the wait a 429, 502, 503 or
// 504 asked for with Retry-After.
func (d *deliverer) post(ctx context.Context, exec *queue.Execution, ep *Endpoint, ev *store.Event) (status int, problem string, retryAfter time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	attempt := store.DeliveryAttempt{
		TenantID: ev.TenantID, EndpointID: ep.ID, EventID: ev.ID, JobID: exec.Job.ID, Attempt: exec.Job.Attempt,
		ResponseHeaders: []byte("{}"),
	}
	defer func() {
		attempt.Status, attempt.Error = status, problem
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		if _, err := d.c.store.RecordDeliveryAttempt(rctx, attempt); err != nil {
			d.c.log.Error("switchyard: record delivery attempt", "endpoint", ep.ID, "err", err)
		}
	}()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(ev.Body))
	if err != nil {
		return 0, "bad request: " + err.Error(), 0
	}
	for _, k := range slices.Sorted(maps.Keys(ep.Headers)) {
		req.Header.Set(k, ep.Headers[k])
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", "Switchyard-Webhooks/1")
	webhook.SetHeaders(req.Header, "evt_"+formatID(ev.ID), now, ev.Body, ep.activeSecrets(now)...)

	start := time.Now()
	resp, err := d.http.Do(req)
	attempt.At, attempt.Latency = start, time.Since(start)
	if err != nil {
		return 0, "request failed: " + err.Error(), 0
	}
	defer resp.Body.Close()
	// The answer must arrive whole within the timeout: a receiver that
	// trickles it holds a worker as long as one that hangs.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBody))
	}
	attempt.Latency = time.Since(start)
	attempt.ResponseBody = string(bytes.ToValidUTF8(body, []byte("\uFFFD")))
	if h, err := json.Marshal(resp.Header); err == nil {
		attempt.ResponseHeaders = h
	}
	status = resp.StatusCode
	switch {
	case err != nil:
		return status, fmt.Sprintf("HTTP %d, then reading the answer failed: %v", status, err), 0
	case status >= 200 && status < 300:
		return status, "", 0
	case status >= 300 && status < 400:
		return status, fmt.Sprintf("HTTP %d: redirects are not followed (to %q)", status, resp.Header.Get("Location")), 0
	}
	problem = fmt.Sprintf("HTTP %d", status)
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return status, problem, retryAfter
}

// maxRetryAfter bounds the wait a receiver may ask for.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 if
// absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// disable turns an endpoint off and announces it.
func (d *deliverer) disable(ctx context.Context, tenant string, ep *Endpoint, reason string) {
	ctx = context.WithoutCancel(ctx)
	if _, err := d.c.changeEndpoint(ctx, tenant, ep.ID, func(e *Endpoint) {
		e.Disabled, e.DisabledReason = true, reason
	}); err != nil {
		d.c.log.Error("switchyard: disable endpoint", "endpoint", ep.ID, "err", err)
		return
	}
	d.announce(ctx, tenant, EventEndpointDisabled, ep, map[string]any{"endpoint_id": ep.ID, "url": ep.URL, "reason": reason})
}

// failed announces a delivery whose last attempt failed.
func (d *deliverer) failed(ctx context.Context, tenant string, ep *Endpoint, ev *store.Event, problem string) {
	d.announce(context.WithoutCancel(ctx), tenant, EventDeliveryFailed, ep, map[string]any{
		"endpoint_id": ep.ID, "url": ep.URL, "event_id": formatID(ev.ID), "event_type": ev.Type, "error": problem,
	})
}

// announce records a system event about ep, routed like any other (a rule
// may page someone), but never delivered to ep itself.
func (d *deliverer) announce(ctx context.Context, tenant, typ string, ep *Endpoint, data map[string]any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	now := time.Now().UTC()
	ev := CloudEvent{
		SpecVersion: "1.0", ID: typ + ":" + ep.ID + ":" + strconv.FormatInt(now.UnixNano(), 36),
		Source: "/switchyard/endpoints", Type: typ, Subject: ep.ID, Time: &now,
		DataContentType: "application/json", Data: b,
	}
	if _, err := d.c.ForTenant(tenant).SendEvents(ctx, ev); err != nil {
		d.c.log.Error("switchyard: announce "+typ, "endpoint", ep.ID, "err", err)
	}
}
