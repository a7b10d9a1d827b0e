package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// deliveringConfig lets the server under test deliver to loopback
// receivers at once: no SSRF guard, millisecond backoff. servertest sets
// AllQueues, so the server works switchyard.DeliveryQueue.
func deliveringConfig() switchyard.Config {
	return switchyard.Config{Deliveries: switchyard.DeliveryConfig{
		AllowPrivateTargets: true, BackoffBase: time.Millisecond, BackoffCap: time.Millisecond,
	}}
}

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a loopback webhook receiver answering 204.
type receiver struct {
	url string
	got chan delivery
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{got: make(chan delivery, 100)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if req.Method != "POST" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		r.got <- delivery{header: req.Header.Clone(), body: b}
		w.Header().Set("X-Receiver", "test")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hs.Close)
	r.url = hs.URL
	return r
}

// next waits for the receiver's next request.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery within 20s")
		return delivery{}
	}
}

// none checks the receiver gets nothing for a while.
func (r *receiver) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case d := <-r.got:
		t.Fatalf("unexpected delivery %s %v", d.body, d.header)
	case <-time.After(wait):
	}
}

type endpointOut struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	URL      string            `json:"url"`
	Types    []string          `json:"types"`
	Disabled bool              `json:"disabled"`
	Headers  map[string]string `json:"headers"`
	Secrets  []struct {
		Secret    string     `json:"secret"`
		ExpiresAt *time.Time `json:"expires_at"`
	} `json:"secrets"`
}

// verifies checks d's Standard Webhooks signature with secret.
func (d delivery) verifies(t *testing.T, secret string) webhook.Delivery {
	t.Helper()
	got, err := webhook.Verify(webhook.Source{Scheme: webhook.SchemeStandardWebhooks, Secrets: []string{secret}}, d.header, d.body, time.Now())
	if err != nil {
		t.Fatalf("delivery %s with headers %v does not verify with the endpoint's secret: %v", d.body, d.header, err)
	}
	return got
}

func TestEndpointsOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		rcv := newReceiver(t)
		srv := servertest.Start(t, db, servertest.Options{Config: deliveringConfig()})
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		ev := func(id, typ string) string {
			var e eventOut
			c.send(201, `{"specversion":"1.0","id":"`+id+`","source":"/billing","type":"`+typ+`","data":{"n":1}}`).decode(t, &e)
			return e.ID
		}

		var ep endpointOut
		c.want(201, "POST", "/v1/endpoints", `{"name":"billing","url":"`+rcv.url+`/in","types":["invoice.*"],"headers":{"X-Team":"billing"}}`).decode(t, &ep)
		if ep.ID == "" || len(ep.Secrets) != 1 || !strings.HasPrefix(ep.Secrets[0].Secret, "whsec_") || ep.Disabled {
			t.Fatalf("created endpoint %+v", ep)
		}
		secret := ep.Secrets[0].Secret

		// An event of a subscribed type is delivered, signed.
		paid := ev("i1", "invoice.paid")
		ev("o1", "order.placed") // not subscribed
		d := rcv.next(t)
		wd := d.verifies(t, secret)
		if d.header.Get("X-Team") != "billing" || !strings.Contains(string(d.body), `"i1"`) || !strings.Contains(string(d.body), `"invoice.paid"`) {
			t.Fatalf("delivery %s, headers %v", d.body, d.header)
		}
		if wd.ID == "" {
			t.Fatalf("delivery without webhook-id: %v", d.header)
		}

		// The attempt is logged.
		var attempts struct {
			Items []struct {
				EventID   string  `json:"event_id"`
				Status    int     `json:"status"`
				LatencyMs float64 `json:"latency_ms"`
				Error     string  `json:"error"`
				Headers   map[string][]string
			} `json:"items"`
		}
		testdb.Poll(t, 10*time.Second, "the attempt logged", func() bool {
			c.want(200, "GET", "/v1/endpoints/"+ep.ID+"/attempts?event_id="+paid, "").decode(t, &attempts)
			return len(attempts.Items) == 1
		})
		if a := attempts.Items[0]; a.EventID != paid || a.Status != 204 || a.LatencyMs <= 0 || a.Error != "" {
			t.Fatalf("attempt %+v", a)
		}

		// Rotation: two secrets, the old one expiring in a day; both sign.
		var rotated endpointOut
		c.want(200, "POST", "/v1/endpoints/"+ep.ID+"/rotate-secret", "").decode(t, &rotated)
		if len(rotated.Secrets) != 2 || rotated.Secrets[1].Secret != secret || rotated.Secrets[1].ExpiresAt == nil ||
			rotated.Secrets[1].ExpiresAt.Sub(time.Now()) < 23*time.Hour || rotated.Secrets[0].ExpiresAt != nil {
			t.Fatalf("rotated secrets %+v", rotated.Secrets)
		}

		// Redelivery: a second request for the same event, signed with both.
		var job switchyard.JobRow
		r := c.do("POST", "/v1/endpoints/"+ep.ID+"/redeliver", `{"event_id":"`+paid+`"}`)
		if r.status != 202 {
			t.Fatalf("redeliver: %d %s", r.status, r.body)
		}
		r.decode(t, &job)
		if job.Queue != switchyard.DeliveryQueue {
			t.Fatalf("redelivery job %+v", job)
		}
		again := rcv.next(t)
		again.verifies(t, secret)
		again.verifies(t, rotated.Secrets[0].Secret)
		if !strings.Contains(string(again.body), `"i1"`) {
			t.Fatalf("redelivered %s", again.body)
		}

		// Disabled: later events are not delivered.
		c.want(200, "PUT", "/v1/endpoints/"+ep.ID, `{"name":"billing","url":"`+rcv.url+`/in","types":["invoice.*"],"disabled":true}`)
		ev("i2", "invoice.paid")
		rcv.none(t, 300*time.Millisecond)
		c.want(409, "POST", "/v1/endpoints/"+ep.ID+"/redeliver", `{"event_id":"`+paid+`"}`)

		// Validation.
		for _, body := range []string{
			`{"name":"x","url":"ftp://example.com/in"}`,
			`{"name":"x","url":"https:///in"}`,
			`{"name":"x","url":"https://user:pw@example.com/in"}`,
			`{"name":"x","url":"https://example.com/in","headers":{"webhook-id":"mine"}}`,
			`{"name":"","url":"https://example.com/in"}`,
		} {
			r := c.do("POST", "/v1/endpoints", body)
			if r.status != 400 {
				t.Errorf("POST /v1/endpoints %s: %d, want 400: %s", body, r.status, r.body)
				continue
			}
			if code, _ := r.errorCode(t); code != "invalid_argument" {
				t.Errorf("POST /v1/endpoints %s: code %s", body, code)
			}
		}

		// Another tenant's endpoint is not found.
		c.want(201, "POST", "/v1/tenants", `{"id":"other"}`)
		other := func(method, path, body string) {
			t.Helper()
			r := c.do(method, path, body, "Switchyard-Tenant", "other")
			if r.status != 404 {
				t.Errorf("%s %s in another tenant: %d, want 404: %s", method, path, r.status, r.body)
			}
		}
		other("GET", "/v1/endpoints/"+ep.ID, "")
		other("GET", "/v1/endpoints/"+ep.ID+"/attempts", "")
		other("POST", "/v1/endpoints/"+ep.ID+"/rotate-secret", "")
		other("POST", "/v1/endpoints/"+ep.ID+"/redeliver", `{"event_id":"`+paid+`"}`)
		other("PUT", "/v1/endpoints/"+ep.ID, `{"name":"stolen","url":"https://example.com/"}`)
		other("DELETE", "/v1/endpoints/"+ep.ID, "")

		c.want(204, "DELETE", "/v1/endpoints/"+ep.ID, "")
		c.want(404, "GET", "/v1/endpoints/"+ep.ID, "")
	})
}
