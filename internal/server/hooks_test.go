package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// githubSignature is GitHub's X-Hub-Signature-256 of body.
func githubSignature(secret, body string) string {
	return "sha256=" + hmacHex(secret, body)
}

func hmacHex(secret, content string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(content))
	return hex.EncodeToString(mac.Sum(nil))
}

// stripeSignature is a Stripe-Signature header for body signed at ts.
func stripeSignature(secret string, ts time.Time, body string) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	return "t=" + t + ",v1=" + hmacHex(secret, t+"."+body)
}

type sourceOut struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Scheme      string   `json:"scheme"`
	Secrets     []string `json:"secrets"`
	VerifyToken string   `json:"verify_token"`
	Path        string   `json:"path"`
}

type hookOut struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	Existing bool   `json:"existing"`
}

// counter reads a counter from a registry; 0 when it has no such series.
func counter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, lp := range m.Label {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestHooksOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true}) // jobs stay queued
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		anon := &apiClient{t: t, url: srv.URL}
		hook := func(path, body string, header ...string) response {
			t.Helper()
			return anon.do("POST", path, body, header...)
		}

		// A GitHub source and a rule on its pushes.
		var gh sourceOut
		c.want(201, "POST", "/v1/sources", `{"name":"github","scheme":"github","secrets":["gh-secret"]}`).decode(t, &gh)
		if gh.Path != "/hooks/"+gh.ID || gh.Scheme != "github" || len(gh.Secrets) != 1 || gh.Secrets[0] != "gh-secret" {
			t.Fatalf("created source %+v", gh)
		}
		c.want(201, "POST", "/v1/rules", `{"name":"ci","types":["github.push"],
			"actions":[{"type":"enqueue","queue":"ci","kind":"noop","args":"{\"ref\": data.ref}"}]}`)
		jobs := func() int {
			var p struct{ Items []any }
			c.want(200, "GET", "/v1/jobs?queue=ci", "").decode(t, &p)
			return len(p.Items)
		}

		push := `{"ref":"refs/heads/main","after":"abc123"}`
		signed := []string{"X-Hub-Signature-256", githubSignature("gh-secret", push), "X-GitHub-Event", "push", "X-GitHub-Delivery", "72d3162e-1"}
		r := hook(gh.Path, push, signed...)
		var got hookOut
		r.decode(t, &got)
		if r.status != 201 || got.Type != "github.push" || got.Existing || got.EventID == "" {
			t.Fatalf("webhook: %d %s", r.status, r.body)
		}
		var events struct{ Items []eventOut }
		c.want(200, "GET", "/v1/events?source="+url.QueryEscape(gh.Path), "").decode(t, &events)
		if len(events.Items) != 1 || events.Items[0].ID != got.EventID || events.Items[0].Event.Type != "github.push" ||
			events.Items[0].Event.ID != "72d3162e-1" || string(events.Items[0].Event.Data) != push {
			t.Fatalf("events from the source: %+v", events.Items)
		}
		if d := events.Items[0].Dispatch; len(d) != 1 || !d[0].Matched || len(d[0].Actions) != 1 || d[0].Actions[0].JobID == "" {
			t.Fatalf("dispatch %+v", d)
		}
		if n := jobs(); n != 1 {
			t.Fatalf("%d jobs after a push, want 1", n)
		}

		// The same delivery again: the event recorded then, no new job.
		r = hook(gh.Path, push, signed...)
		var again hookOut
		r.decode(t, &again)
		if r.status != 200 || !again.Existing || again.EventID != got.EventID {
			t.Fatalf("repeated webhook: %d %s", r.status, r.body)
		}
		if n := jobs(); n != 1 {
			t.Fatalf("%d jobs after a repeated push, want 1", n)
		}

		// Refusals: 401 in the error shape, nothing recorded, a metric and
		// an audit entry each.
		countEvents := func() int {
			var p struct{ Items []any }
			c.want(200, "GET", "/v1/events?limit=1000", "").decode(t, &p)
			return len(p.Items)
		}
		before := countEvents()
		for _, tc := range []struct {
			name, body, reason string
			header             []string
		}{
			{"tampered body", strings.Replace(push, "main", "evil", 1), "bad_signature", signed},
			{"wrong secret", push, "bad_signature", []string{"X-Hub-Signature-256", githubSignature("guess", push), "X-GitHub-Event", "push", "X-GitHub-Delivery", "x-2"}},
			{"no signature", push, "missing_signature", []string{"X-GitHub-Event", "push", "X-GitHub-Delivery", "x-3"}},
		} {
			labels := map[string]string{"scheme": "github", "reason": tc.reason}
			was := counter(t, srv.Registry, "switchyard_webhooks_rejected_total", labels)
			r := hook(gh.Path, tc.body, tc.header...)
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401: %s", tc.name, r.status, r.body)
				continue
			}
			if code, _ := r.errorCode(t); code != "unauthenticated" {
				t.Errorf("%s: code %s", tc.name, code)
			}
			if now := counter(t, srv.Registry, "switchyard_webhooks_rejected_total", labels); now != was+1 {
				t.Errorf("%s: switchyard_webhooks_rejected_total%v went from %v to %v", tc.name, labels, was, now)
			}
		}
		if n := countEvents(); n != before {
			t.Errorf("%d events after refused webhooks, want %d", n, before)
		}
		if n := jobs(); n != 1 {
			t.Errorf("%d jobs after refused webhooks, want 1", n)
		}
		if n := counter(t, srv.Registry, "switchyard_webhooks_received_total", map[string]string{"scheme": "github"}); n != 2 {
			t.Errorf("switchyard_webhooks_received_total{github} = %v, want 2", n)
		}
		var audit struct {
			Items []struct {
				Actor struct {
					Type string `json:"type"`
					ID   string `json:"id"`
				} `json:"actor"`
				Target   string `json:"target"`
				Result   string `json:"result"`
				Status   int    `json:"status"`
				ClientIP string `json:"client_ip"`
				Detail   string `json:"detail"`
			} `json:"items"`
		}
		testdb.Poll(t, 10*time.Second, "three audit entries of refused webhooks", func() bool {
			c.want(200, "GET", "/v1/audit?action=hooks.receive", "").decode(t, &audit)
			return len(audit.Items) >= 3
		})
		for _, e := range audit.Items {
			if e.Result != "denied" || e.Status != 401 || e.Target != gh.ID || e.ClientIP != "127.0.0.1" ||
				e.Actor.Type != "anonymous" || !strings.HasPrefix(e.Detail, "github: ") {
				t.Errorf("audit entry %+v", e)
			}
		}

		// Standard Webhooks, with the generated whsec_ secret.
		var sw sourceOut
		c.want(201, "POST", "/v1/sources", `{"name":"svix","scheme":"standard-webhooks"}`).decode(t, &sw)
		if len(sw.Secrets) != 1 || !strings.HasPrefix(sw.Secrets[0], "whsec_") {
			t.Fatalf("standard-webhooks source %+v", sw)
		}
		key, err := webhook.ParseSecret(sw.Secrets[0])
		if err != nil {
			t.Fatal(err)
		}
		body := `{"type":"user.created","data":{"id":7}}`
		h := http.Header{}
		webhook.SetHeaders(h, "msg_1", time.Now(), []byte(body), key)
		r = hook(sw.Path, body, "webhook-id", h.Get("webhook-id"), "webhook-timestamp", h.Get("webhook-timestamp"), "webhook-signature", h.Get("webhook-signature"))
		if r.decode(t, &got); r.status != 201 || got.Type != "user.created" {
			t.Fatalf("standard webhook: %d %s", r.status, r.body)
		}

		// Stripe: a fresh signature, then one five minutes and more old.
		var st sourceOut
		c.want(201, "POST", "/v1/sources", `{"name":"stripe","scheme":"stripe","secrets":["whsec_stripe"]}`).decode(t, &st)
		inv := `{"id":"evt_1","type":"invoice.paid","data":{"object":{}}}`
		r = hook(st.Path, inv, "Stripe-Signature", stripeSignature("whsec_stripe", time.Now(), inv))
		if r.decode(t, &got); r.status != 201 || got.Type != "stripe.invoice.paid" {
			t.Fatalf("stripe webhook: %d %s", r.status, r.body)
		}
		old := `{"id":"evt_2","type":"invoice.paid"}`
		was := counter(t, srv.Registry, "switchyard_webhooks_rejected_total", map[string]string{"scheme": "stripe", "reason": "timestamp"})
		r = hook(st.Path, old, "Stripe-Signature", stripeSignature("whsec_stripe", time.Now().Add(-301*time.Second), old))
		if r.status != 401 {
			t.Fatalf("stale stripe webhook: %d %s", r.status, r.body)
		}
		r.errorCode(t)
		if now := counter(t, srv.Registry, "switchyard_webhooks_rejected_total", map[string]string{"scheme": "stripe", "reason": "timestamp"}); now != was+1 {
			t.Errorf("stripe timestamp rejections went from %v to %v", was, now)
		}

		// Meta's handshake.
		var meta sourceOut
		c.want(201, "POST", "/v1/sources", `{"name":"instagram","scheme":"meta"}`).decode(t, &meta)
		if meta.VerifyToken == "" {
			t.Fatalf("meta source without a verify token: %+v", meta)
		}
		r = anon.do("GET", meta.Path+"?hub.mode=subscribe&hub.verify_token="+url.QueryEscape(meta.VerifyToken)+"&hub.challenge=1158201444", "")
		if r.status != 200 || string(r.body) != "1158201444" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("handshake: %d %q %s", r.status, r.body, r.header.Get("Content-Type"))
		}
		r = anon.do("GET", meta.Path+"?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", "")
		if r.status != 401 {
			t.Fatalf("handshake with a wrong token: %d %s", r.status, r.body)
		}
		r.errorCode(t)
		if r := anon.do("GET", gh.Path+"?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1", ""); r.status != 404 {
			t.Errorf("handshake on a github source: %d, want 404", r.status)
		}

		// An unknown source, an oversized body.
		if r := hook("/hooks/src_nosuch", push, signed...); r.status != 404 {
			t.Errorf("unknown source: %d, want 404: %s", r.status, r.body)
		} else {
			r.errorCode(t)
		}
		big := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 2<<20))
		if r := hook(gh.Path, big, "X-Hub-Signature-256", githubSignature("gh-secret", big), "X-GitHub-Event", "push", "X-GitHub-Delivery", "big"); r.status != 413 {
			t.Errorf("oversized webhook: %d, want 413", r.status)
		} else {
			r.errorCode(t)
		}

		// Secrets: whole for admins, redacted below.
		var k struct{ Secret string }
		c.want(201, "POST", "/v1/keys", `{"name":"reader","role":"viewer"}`).decode(t, &k)
		viewer := &apiClient{t: t, url: srv.URL, key: k.Secret}
		var seen sourceOut
		viewer.want(200, "GET", "/v1/sources/"+meta.ID, "").decode(t, &seen)
		if len(seen.Secrets) != 1 || seen.Secrets[0] != meta.Secrets[0][:10]+"…" || seen.VerifyToken != meta.VerifyToken[:10]+"…" {
			t.Errorf("viewer sees %+v, want secrets redacted", seen)
		}
		var list struct{ Items []sourceOut }
		viewer.want(200, "GET", "/v1/sources", "").decode(t, &list)
		for _, s := range list.Items {
			for _, sec := range s.Secrets {
				if !strings.HasSuffix(sec, "…") {
					t.Errorf("viewer lists source %s with secret %q", s.Name, sec)
				}
			}
		}
		c.want(200, "GET", "/v1/sources/"+meta.ID, "").decode(t, &seen)
		if seen.Secrets[0] != meta.Secrets[0] || seen.VerifyToken != meta.VerifyToken {
			t.Errorf("admin sees %+v, want %+v", seen, meta)
		}
		if r := viewer.do("POST", "/v1/sources", `{"name":"x","scheme":"github"}`); r.status != 403 {
			t.Errorf("viewer creating a source: %d, want 403", r.status)
		}
	})
}
