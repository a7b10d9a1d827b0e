package switchyard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// receiver is a test endpoint: it verifies each delivery's Standard
// Webhooks signature with the secrets it is told, and answers what the
// test scripts.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	secrets []string
	answer  func(n int) (status int, header http.Header)
	got     []delivery
	arrived chan delivery
}

type delivery struct {
	id, signature string
	verified      bool
	event         switchyard.CloudEvent
	header        http.Header
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, arrived: make(chan delivery, 100)}
	rc.answer = func(int) (int, http.Header) { return http.StatusNoContent, nil }
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		_, err := webhook.Verify(webhook.Source{Scheme: webhook.SchemeStandardWebhooks, Secrets: rc.secrets}, r.Header, body, time.Now())
		d := delivery{id: r.Header.Get("webhook-id"), signature: r.Header.Get("webhook-signature"), verified: err == nil, header: r.Header.Clone()}
		_ = json.Unmarshal(body, &d.event)
		rc.got = append(rc.got, d)
		status, h := rc.answer(len(rc.got))
		rc.mu.Unlock()
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "thanks")
		rc.arrived <- d
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) next(what string) delivery {
	rc.t.Helper()
	select {
	case d := <-rc.arrived:
		return d
	case <-time.After(30 * time.Second):
		rc.t.Fatalf("no delivery for %s", what)
	}
	return delivery{}
}

func deliveryClient(t *testing.T, db string) *switchyard.Client {
	cfg := testConfig(db)
	cfg.Queues = map[string]switchyard.QueueConfig{switchyard.DeliveryQueue: {}}
	cfg.Deliveries = switchyard.DeliveryConfig{AllowPrivateTargets: true, BackoffBase: time.Millisecond, BackoffCap: 5 * time.Millisecond, MaxAttempts: 3}
	c := open(t, cfg)
	start(t, c)
	return c
}

func event(id, typ string) switchyard.CloudEvent {
	return switchyard.CloudEvent{SpecVersion: "1.0", ID: id, Source: "/billing", Type: typ, Data: json.RawMessage(`{"amount":42}`)}
}

// Events reach the endpoints subscribed to their types, signed per
// Standard Webhooks; a rotated secret signs alongside the new one; every
// attempt is logged; a delivery can be made again by hand.
func TestDeliveriesSignedAndLogged(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := deliveryClient(t, db)
		ctx := t.Context()
		rc := newReceiver(t)
		ep, err := c.CreateEndpoint(ctx, "billing", switchyard.EndpointSpec{URL: rc.srv.URL + "/hook", Types: []string{"invoice.*"},
			Headers: map[string]string{"X-Team": "payments"}})
		if err != nil {
			t.Fatalf("CreateEndpoint: %v", err)
		}
		rc.secrets = []string{ep.Secrets[0].Secret}

		sent, err := c.SendEvents(ctx, event("e1", "invoice.paid"), event("e2", "user.created"))
		if err != nil {
			t.Fatal(err)
		}
		d := rc.next("invoice.paid")
		if !d.verified || d.event.ID != "e1" || d.event.Type != "invoice.paid" || d.id != "evt_"+sent[0].Event.ID || d.header.Get("X-Team") != "payments" {
			t.Fatalf("delivery = %+v", d)
		}
		if o := sent[0].Event.Dispatch; len(o) != 1 || o[0].Actions[0].Endpoint != ep.ID || o[0].Actions[0].JobID == "" {
			t.Errorf("dispatch of e1 = %+v", o)
		}
		if len(sent[1].Event.Dispatch) != 0 {
			t.Errorf("user.created went to the endpoint: %+v", sent[1].Event.Dispatch)
		}

		// Rotation: for a day, both secrets sign.
		old := ep.Secrets[0].Secret
		ep, err = c.RotateEndpointSecret(ctx, ep.ID)
		if err != nil || len(ep.Secrets) != 2 || ep.Secrets[1].Secret != old || ep.Secrets[1].ExpiresAt == nil {
			t.Fatalf("RotateEndpointSecret = %+v, %v", ep, err)
		}
		rc.mu.Lock()
		rc.secrets = []string{ep.Secrets[0].Secret} // the receiver knows only the new one
		rc.mu.Unlock()
		if _, err := c.SendEvents(ctx, event("e3", "invoice.voided")); err != nil {
			t.Fatal(err)
		}
		d = rc.next("after rotation")
		if !d.verified || len(strings.Fields(d.signature)) != 2 {
			t.Errorf("after rotation: verified %v, signatures %q; want two, the new one valid", d.verified, d.signature)
		}

		job, err := c.Redeliver(ctx, ep.ID, sent[0].Event.ID)
		if err != nil {
			t.Fatalf("Redeliver: %v", err)
		}
		if d = rc.next("redelivery"); d.event.ID != "e1" || job.Queue != switchyard.DeliveryQueue {
			t.Errorf("redelivery = %+v (job %+v)", d, job)
		}
		waitAttempts(t, c, ep.ID, 3)
		as, _, err := c.DeliveryAttempts(ctx, ep.ID, sent[0].Event.ID, "", 0)
		if err != nil || len(as) != 2 {
			t.Fatalf("attempts for e1 = %d (%v), want 2", len(as), err)
		}
		if a := as[0]; a.Status != http.StatusNoContent || a.Error != "" || a.Body != "" || a.Attempt != 1 || a.LatencyMs <= 0 {
			t.Errorf("attempt = %+v", a)
		}
		if _, _, err := c.ForTenant("other").DeliveryAttempts(ctx, ep.ID, "", "", 0); err == nil {
			t.Error("another tenant read the endpoint's attempts")
		}
	})
}

// waitAttempts waits until the endpoint has n attempts logged: the log is
// written after the answer arrives.
func waitAttempts(t *testing.T, c *switchyard.Client, endpointID string, n int) []*switchyard.DeliveryAttempt {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		as, _, err := c.DeliveryAttempts(t.Context(), endpointID, "", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) >= n {
			return as
		}
		if time.Now().After(deadline) {
			for _, a := range as {
				t.Logf("attempt %+v", a)
			}
			if jobs, _, err := c.ListJobs(t.Context(), switchyard.ListParams{Queue: switchyard.DeliveryQueue}); err == nil {
				for _, j := range jobs {
					t.Logf("job %s %s attempt %d/%d run_at %v errors %+v", j.ID, j.State, j.Attempt, j.MaxAttempts, j.RunAt, j.Errors)
				}
			}
			t.Fatalf("%d attempts logged, want %d", len(as), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A receiver that answers 503 with Retry-After is retried no sooner; 3xx
// is a failure, not followed; 410 disables the endpoint and announces it;
// the last failed attempt announces delivery.failed.
func TestDeliveriesFailures(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := deliveryClient(t, db)
		ctx := t.Context()
		createRule(t, c, "watch", switchyard.RuleSpec{Types: []string{"endpoint.disabled", "delivery.failed"}, Enabled: true,
			Actions: []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "ops"}}})
		ops := subscribe(t, c, "ops")

		// 429 with Retry-After: 1, then 503 without, then 200.
		busy := newReceiver(t)
		busy.answer = func(n int) (int, http.Header) {
			switch n {
			case 1:
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
			case 2:
				return http.StatusServiceUnavailable, nil
			}
			return http.StatusOK, nil
		}
		ep1, err := c.CreateEndpoint(ctx, "busy", switchyard.EndpointSpec{URL: busy.srv.URL, Types: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendEvents(ctx, event("b1", "a")); err != nil {
			t.Fatal(err)
		}
		busy.next("first try")
		first := time.Now()
		busy.next("the retry")
		if waited := time.Since(first); waited < 900*time.Millisecond {
			t.Errorf("retried after %v; Retry-After asked for 1s", waited)
		}
		busy.next("the third try")
		as := waitAttempts(t, c, ep1.ID, 3)
		if as[2].Status != 429 || as[2].Headers["Retry-After"][0] != "1" || as[2].Body != "thanks" || as[1].Status != 503 || as[0].Status != 200 {
			t.Errorf("attempts = %+v, %+v, %+v", as[0], as[1], as[2])
		}

		// A redirect is a failure every time: three attempts, then
		// delivery.failed.
		moved := newReceiver(t)
		moved.answer = func(int) (int, http.Header) {
			return http.StatusFound, http.Header{"Location": {busy.srv.URL}}
		}
		ep2, err := c.CreateEndpoint(ctx, "moved", switchyard.EndpointSpec{URL: moved.srv.URL, Types: []string{"b"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendEvents(ctx, event("m1", "b")); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			moved.next("redirect attempt " + string(rune('1'+i)))
		}
		m := nextMessage(t, ops, "delivery.failed")
		if m.Type != switchyard.EventDeliveryFailed || !strings.Contains(string(m.Data), ep2.ID) || !strings.Contains(string(m.Data), "redirects are not followed") {
			t.Errorf("ops got %s %s", m.Type, m.Data)
		}
		if got := len(busy.got); got != 3 {
			t.Errorf("the redirect target was called %d times beyond its own 3", got-3)
		}

		// 410: disabled at once, announced, nothing more delivered.
		gone := newReceiver(t)
		gone.answer = func(int) (int, http.Header) { return http.StatusGone, nil }
		ep3, err := c.CreateEndpoint(ctx, "gone", switchyard.EndpointSpec{URL: gone.srv.URL, Types: []string{"c"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendEvents(ctx, event("g1", "c")); err != nil {
			t.Fatal(err)
		}
		gone.next("410")
		m = nextMessage(t, ops, "endpoint.disabled")
		if m.Type != switchyard.EventEndpointDisabled || !strings.Contains(string(m.Data), ep3.ID) {
			t.Errorf("ops got %s %s", m.Type, m.Data)
		}
		ep3, err = c.Endpoint(ctx, ep3.ID)
		if err != nil || !ep3.Disabled || ep3.DisabledReason == "" {
			t.Fatalf("after 410: %+v, %v", ep3, err)
		}
		sent, err := c.SendEvents(ctx, event("g2", "c"))
		if err != nil || len(sent[0].Event.Dispatch) != 0 {
			t.Errorf("an event for a disabled endpoint: %+v, %v", sent[0].Event.Dispatch, err)
		}
	})
}

// Loopback, private and metadata addresses are refused unless allowed,
// and the refusal is logged on the attempt.
func TestDeliveriesRefusePrivateTargets(t *testing.T) {
	t.Parallel()
	cfg := testConfig("sqlite:" + testdb.SQLitePath(t))
	cfg.Queues = map[string]switchyard.QueueConfig{switchyard.DeliveryQueue: {}}
	cfg.Deliveries = switchyard.DeliveryConfig{BackoffBase: time.Millisecond, BackoffCap: time.Millisecond, MaxAttempts: 1}
	c := open(t, cfg)
	start(t, c)
	rc := newReceiver(t)
	ep, err := c.CreateEndpoint(t.Context(), "local", switchyard.EndpointSpec{URL: rc.srv.URL, Types: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendEvents(t.Context(), event("x1", "anything")); err != nil {
		t.Fatal(err)
	}
	as := waitAttempts(t, c, ep.ID, 1)
	if as[0].Status != 0 || !strings.Contains(as[0].Error, "forbidden address") {
		t.Errorf("attempt to loopback = %+v", as[0])
	}
	if len(rc.got) != 0 {
		t.Errorf("the loopback receiver was reached %d times", len(rc.got))
	}
}

// A receiver that hangs, or trickles its answer a byte at a time, is cut
// off at the attempt timeout; the attempt is logged as failed and retried,
// and other endpoints' deliveries go on meanwhile.
func TestDeliveriesSlowReceivers(t *testing.T) {
	t.Parallel()
	cfg := testConfig("sqlite:" + testdb.SQLitePath(t))
	cfg.Queues = map[string]switchyard.QueueConfig{switchyard.DeliveryQueue: {}}
	cfg.Deliveries = switchyard.DeliveryConfig{AllowPrivateTargets: true, Timeout: 300 * time.Millisecond,
		BackoffBase: time.Millisecond, BackoffCap: time.Millisecond, MaxAttempts: 2}
	c := open(t, cfg)
	start(t, c)
	ctx := t.Context()

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		for range 100 {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-release:
				return
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer trickle.Close()
	defer close(release) // before the servers close: they wait for their handlers
	fine := newReceiver(t)

	var eps []*switchyard.Endpoint
	for name, url := range map[string]string{"hang": hang.URL, "trickle": trickle.URL, "fine": fine.srv.URL} {
		ep, err := c.CreateEndpoint(ctx, name, switchyard.EndpointSpec{URL: url, Types: []string{"t." + name}})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, ep)
	}
	if _, err := c.SendEvents(ctx, event("h", "t.hang"), event("s", "t.trickle")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendEvents(ctx, event("f", "t.fine")); err != nil {
		t.Fatal(err)
	}
	fine.next("the fine endpoint, while the others stall")
	for _, ep := range eps {
		if ep.Name == "fine" {
			continue
		}
		as := waitAttempts(t, c, ep.ID, 2)
		for _, a := range as {
			if a.Error == "" || a.LatencyMs > 5000 {
				t.Errorf("%s: attempt = %+v; want a failure cut off at the timeout", ep.Name, a)
			}
		}
	}
}

// Concurrent changes to one endpoint all take effect: each is applied to
// the version it read, and applied again if it lost the race.
func TestEndpointChangesDoNotLoseEachOther(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		ctx := t.Context()
		ep, err := c.CreateEndpoint(ctx, "e", switchyard.EndpointSpec{URL: "https://hooks.example/x", Types: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		const rotations = 8
		var wg sync.WaitGroup
		for range rotations {
			wg.Go(func() {
				if _, err := c.RotateEndpointSecret(ctx, ep.ID); err != nil {
					t.Errorf("RotateEndpointSecret: %v", err)
				}
			})
		}
		wg.Go(func() {
			spec := ep.EndpointSpec
			spec.Description = "changed meanwhile"
			if _, err := c.UpdateEndpoint(ctx, ep.ID, "e", spec); err != nil {
				t.Errorf("UpdateEndpoint: %v", err)
			}
		})
		wg.Wait()
		got, err := c.Endpoint(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Secrets) != rotations+1 || got.Description != "changed meanwhile" {
			t.Errorf("after %d concurrent rotations and an update: %d secrets, description %q", rotations, len(got.Secrets), got.Description)
		}
	})
}
