package client_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestSourcesAndEndpoints(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{Config: switchyard.Config{
		Deliveries: switchyard.DeliveryConfig{AllowPrivateTargets: true, BackoffBase: time.Millisecond, BackoffCap: time.Millisecond},
	}})
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: srv.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Sources.
	src, err := c.CreateSource(ctx, client.SourceRequest{Name: "github", Scheme: "github", Secrets: []string{"s3cret"}})
	if err != nil || src.ID == "" || src.Path != "/hooks/"+src.ID || src.Secrets[0] != "s3cret" || len(src.Raw) == 0 {
		t.Fatalf("create source: %+v, %v", src, err)
	}
	_, err = c.CreateSource(ctx, client.SourceRequest{Name: "github", Scheme: "github"})
	apiError(t, err, "conflict")
	_, err = c.CreateSource(ctx, client.SourceRequest{Name: "x", Scheme: "pigeon"})
	apiError(t, err, "invalid_argument")
	src, err = c.ReplaceSource(ctx, src.ID, client.SourceRequest{Name: "github", Scheme: "github", Secrets: []string{"s3cret", "n3w"}})
	if err != nil || len(src.Secrets) != 2 {
		t.Fatalf("replace source: %+v, %v", src, err)
	}
	if s, err := c.GetSource(ctx, src.ID); err != nil || s.Name != "github" {
		t.Fatalf("get source: %+v, %v", s, err)
	}
	if p, err := c.ListSources(ctx, client.ListParams{}); err != nil || len(p.Items) != 1 || p.NextCursor != "" {
		t.Fatalf("list sources: %+v, %v", p, err)
	}

	// A webhook to it, signed as GitHub does.
	body := `{"ref":"refs/heads/main"}`
	mac := hmac.New(sha256.New, []byte("n3w"))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", srv.URL+src.Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "d1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	events, err := c.ListEvents(ctx, client.ListEventsParams{Type: "github.push"})
	if err != nil || len(events.Items) != 1 {
		t.Fatalf("events: %+v, %v", events, err)
	}
	evID := events.Items[0].ID

	// Endpoints.
	ep, err := c.CreateEndpoint(ctx, client.EndpointRequest{Name: "ci", URL: rcv.URL + "/in", Types: []string{"github.*"}, Headers: map[string]string{"X-Team": "ci"}})
	if err != nil || ep.ID == "" || len(ep.Secrets) != 1 || !strings.HasPrefix(ep.Secrets[0].Secret, "whsec_") {
		t.Fatalf("create endpoint: %+v, %v", ep, err)
	}
	_, err = c.CreateEndpoint(ctx, client.EndpointRequest{Name: "bad", URL: "ftp://example.com/"})
	apiError(t, err, "invalid_argument")
	job, err := c.Redeliver(ctx, ep.ID, evID)
	if err != nil || job.Queue != switchyard.DeliveryQueue {
		t.Fatalf("redeliver: %+v, %v", job, err)
	}
	select {
	case h := <-got:
		if h.Get("webhook-signature") == "" || h.Get("X-Team") != "ci" {
			t.Fatalf("delivery headers %v", h)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery")
	}
	var attempts *client.DeliveryAttemptPage
	testdb.Poll(t, 10*time.Second, "an attempt", func() bool {
		attempts, err = c.ListDeliveryAttempts(ctx, ep.ID, client.ListDeliveryAttemptsParams{EventID: evID})
		return err == nil && len(attempts.Items) == 1
	})
	if a := attempts.Items[0]; a.Status != 204 || a.EventID != evID || a.JobID != job.ID || a.Error != "" {
		t.Fatalf("attempt %+v", a)
	}
	ep, err = c.RotateEndpointSecret(ctx, ep.ID)
	if err != nil || len(ep.Secrets) != 2 || ep.Secrets[1].ExpiresAt == nil {
		t.Fatalf("rotate: %+v, %v", ep, err)
	}
	ep, err = c.ReplaceEndpoint(ctx, ep.ID, client.EndpointRequest{Name: "ci", URL: rcv.URL + "/in", Types: []string{"github.*"}, Disabled: true})
	if err != nil || !ep.Disabled || len(ep.Secrets) != 2 {
		t.Fatalf("replace endpoint: %+v, %v", ep, err)
	}
	_, err = c.Redeliver(ctx, ep.ID, evID)
	apiError(t, err, "conflict")
	if p, err := c.ListEndpoints(ctx, client.ListParams{}); err != nil || len(p.Items) != 1 {
		t.Fatalf("list endpoints: %+v, %v", p, err)
	}
	if e, err := c.GetEndpoint(ctx, ep.ID); err != nil || e.Name != "ci" {
		t.Fatalf("get endpoint: %+v, %v", e, err)
	}
	if err := c.DeleteEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetEndpoint(ctx, ep.ID)
	apiError(t, err, "not_found")
	if err := c.DeleteSource(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSource(ctx, src.ID)
	apiError(t, err, "not_found")
	if _, err := c.GetSource(ctx, ""); err == nil {
		t.Fatal("GetSource(\"\") succeeded")
	}
}
