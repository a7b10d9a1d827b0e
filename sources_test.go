package switchyard_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

type buildArgs struct {
	Repo string `json:"repo"`
	Ref  string `json:"ref"`
}

func (buildArgs) Kind() string { return "build" }

func githubHook(sourceID, secret, delivery, event string, body []byte) switchyard.Webhook {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return switchyard.Webhook{SourceID: sourceID, Header: h, Body: body}
}

// A GitHub push, signed, becomes an event of the source's tenant and the
// job a rule makes of it; its redelivery makes nothing more; a bad
// signature records nothing.
func TestReceiveWebhookGitHub(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.TenantID = "acme"
		c := open(t, cfg)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[buildArgs]) error { return nil })
		ctx := t.Context()
		src, err := c.CreateSource(ctx, "github", switchyard.SourceSpec{Scheme: switchyard.SchemeGitHub, Secrets: []string{"old", "s3cret"}})
		if err != nil {
			t.Fatalf("CreateSource: %v", err)
		}
		if src.Path != "/hooks/"+src.ID || !strings.HasPrefix(src.ID, "src_") {
			t.Errorf("source = %+v", src)
		}
		createRule(t, c, "build-main", switchyard.RuleSpec{
			Types: []string{"github.push"}, Enabled: true, Filter: `data.ref == "refs/heads/main"`,
			Actions: []switchyard.RuleAction{{Type: switchyard.RuleEnqueue, Kind: "build", Queue: "ci",
				Args: `{"repo": data.repository.full_name, "ref": data.ref}`, UniqueKey: `"build:" + data.after`}},
		})
		body := []byte(`{"ref":"refs/heads/main","after":"abc123","repository":{"full_name":"acme/app"}}`)

		// Another client, of another tenant, on the same database: the
		// source's URL carries its tenant.
		other := c.ForTenant("default")
		got, err := other.ReceiveWebhook(ctx, githubHook(src.ID, "s3cret", "d-1", "push", body))
		if err != nil {
			t.Fatalf("ReceiveWebhook: %v", err)
		}
		ev := got.Event
		if got.TenantID != "acme" || got.Existing || ev.CloudEvent.Type != "github.push" || ev.CloudEvent.ID != "d-1" ||
			ev.CloudEvent.Source != "/hooks/"+src.ID || !jsonEqual(ev.CloudEvent.Data, string(body)) {
			t.Fatalf("received = %+v", got)
		}
		jobID := ev.Dispatch[0].Actions[0].JobID
		job := getJob(t, c, jobID)
		if job.Queue != "ci" || !jsonEqual(job.Args, `{"repo":"acme/app","ref":"refs/heads/main"}`) {
			t.Errorf("the build job = %+v", job)
		}

		// GitHub redelivers the same delivery: one event, one job.
		again, err := c.ReceiveWebhook(ctx, githubHook(src.ID, "s3cret", "d-1", "push", body))
		if err != nil || !again.Existing || again.Event.ID != ev.ID {
			t.Errorf("redelivery = %+v, %v; want the first event", again, err)
		}
		// The rotated-out secret still verifies while listed.
		if _, err := c.ReceiveWebhook(ctx, githubHook(src.ID, "old", "d-2", "ping", []byte(`{"zen":"hi"}`))); err != nil {
			t.Errorf("the other listed secret: %v", err)
		}

		for name, hook := range map[string]switchyard.Webhook{
			"wrong secret": githubHook(src.ID, "guess", "d-3", "push", body),
			"tampered body": func() switchyard.Webhook {
				h := githubHook(src.ID, "s3cret", "d-3", "push", body)
				h.Body = []byte(`{"ref":"x"}`)
				return h
			}(),
			"no signature": func() switchyard.Webhook {
				h := githubHook(src.ID, "s3cret", "d-3", "push", body)
				h.Header.Del("X-Hub-Signature-256")
				return h
			}(),
		} {
			if _, err := c.ReceiveWebhook(ctx, hook); !errors.Is(err, switchyard.ErrBadSignature) || !errors.Is(err, switchyard.ErrUnauthenticated) {
				t.Errorf("%s: ReceiveWebhook = %v, want ErrBadSignature", name, err)
			}
		}
		if _, err := c.ReceiveWebhook(ctx, githubHook("src_nope", "s3cret", "d-4", "push", body)); !errors.Is(err, switchyard.ErrNotFound) {
			t.Errorf("an unknown source = %v, want ErrNotFound", err)
		}
		es, _, err := c.ListEvents(ctx, switchyard.EventFilter{})
		if err != nil || len(es) != 2 {
			t.Errorf("events recorded = %d (%v), want 2 (the push, the ping)", len(es), err)
		}
		if jobs, _, _ := c.ListJobs(ctx, switchyard.ListParams{Queue: "ci"}); len(jobs) != 1 {
			t.Errorf("jobs = %d, want 1", len(jobs))
		}

		// Deleting the source closes its URL, on every node.
		if err := c.DeleteSource(ctx, src.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReceiveWebhook(ctx, githubHook(src.ID, "s3cret", "d-5", "push", body)); !errors.Is(err, switchyard.ErrNotFound) {
			t.Errorf("after DeleteSource = %v, want ErrNotFound", err)
		}
	})
}

func TestSourcesGenerateAndValidate(t *testing.T) {
	t.Parallel()
	c := open(t, testConfig("sqlite:"+testdb.SQLitePath(t)))
	ctx := t.Context()
	sw, err := c.CreateSource(ctx, "billing", switchyard.SourceSpec{Scheme: switchyard.SchemeStandardWebhooks})
	if err != nil || len(sw.Secrets) != 1 || !strings.HasPrefix(sw.Secrets[0], "whsec_") {
		t.Errorf("a standard-webhooks source without secrets = %+v, %v; want a whsec_ secret", sw, err)
	}
	meta, err := c.CreateSource(ctx, "instagram", switchyard.SourceSpec{Scheme: switchyard.SchemeMeta, Secrets: []string{"app-secret"}})
	if err != nil || meta.VerifyToken == "" {
		t.Fatalf("a meta source = %+v, %v; want a verify token", meta, err)
	}
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {meta.VerifyToken}, "hub.challenge": {"1158201444"}}
	if ch, err := c.WebhookHandshake(ctx, meta.ID, q); err != nil || ch != "1158201444" {
		t.Errorf("handshake = %q, %v", ch, err)
	}
	q.Set("hub.verify_token", "wrong")
	if _, err := c.WebhookHandshake(ctx, meta.ID, q); !errors.Is(err, switchyard.ErrBadSignature) {
		t.Errorf("handshake with a wrong token = %v", err)
	}
	if _, err := c.WebhookHandshake(ctx, sw.ID, q); !errors.Is(err, switchyard.ErrNotFound) {
		t.Errorf("handshake on a standard-webhooks source = %v, want ErrNotFound", err)
	}
	for name, spec := range map[string]switchyard.SourceSpec{
		"unknown scheme":  {Scheme: "paypal"},
		"hmac no header":  {Scheme: switchyard.SchemeHMAC},
		"hmac bad algo":   {Scheme: switchyard.SchemeHMAC, Header: "X-Sig", Algorithm: "md5"},
		"negative window": {Scheme: switchyard.SchemeGitHub, ToleranceSeconds: -1},
	} {
		if _, err := c.CreateSource(ctx, name, spec); !errors.Is(err, switchyard.ErrInvalidArgument) {
			t.Errorf("%s: CreateSource = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := c.CreateSource(ctx, "billing", switchyard.SourceSpec{Scheme: switchyard.SchemeGitHub}); !errors.Is(err, switchyard.ErrConflict) {
		t.Errorf("a taken name = %v, want ErrConflict", err)
	}
	if _, err := c.ForTenant("other").Source(ctx, sw.ID); !errors.Is(err, switchyard.ErrNotFound) {
		t.Errorf("another tenant's source = %v, want ErrNotFound", err)
	}
}
