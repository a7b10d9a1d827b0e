package client_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestEventsAndRules(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, "sqlite:"+testdb.SQLitePath(t))
	ctx := context.Background()

	r, err := c.CreateRule(ctx, client.RuleRequest{
		Name: "thumbs", Types: []string{"image.*"}, Filter: "data.size > 1000",
		Actions: []client.RuleAction{{Type: "enqueue", Queue: "img", Kind: "noop", Args: `{"url": data.url}`, Delay: "1h"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Enabled || r.ID == "" || len(r.Actions) != 1 || r.Actions[0].Kind != "noop" || len(r.Raw) == 0 {
		t.Fatalf("created %+v", r)
	}
	_, err = c.CreateRule(ctx, client.RuleRequest{Name: "thumbs", Types: []string{"x"}, Actions: []client.RuleAction{{Type: "publish", Topic: "t"}}})
	apiError(t, err, "conflict")
	_, err = c.CreateRule(ctx, client.RuleRequest{Name: "bad", Types: []string{"x"}, Filter: "data.size >", Actions: []client.RuleAction{{Type: "publish", Topic: "t"}}})
	apiError(t, err, "invalid_argument")

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := client.CloudEvent{ID: "e1", Source: "/uploads", Type: "image.uploaded", Subject: "a/1", Time: &at,
		Data: json.RawMessage(`{"url":"https://cdn.test/a.png","size":2048}`), Extensions: map[string]any{"tenantref": "x"}}
	got, existing, err := c.SendEvent(ctx, ev)
	if err != nil || existing {
		t.Fatalf("send: %v, existing %v", err, existing)
	}
	if got.Event.ID != "e1" || got.Event.Extensions["tenantref"] != "x" || !got.Event.Time.Equal(at) ||
		len(got.Dispatch) != 1 || !got.Dispatch[0].Matched || got.Dispatch[0].Actions[0].JobID == "" {
		t.Fatalf("sent %s", got.Raw)
	}
	job, err := c.GetJob(ctx, got.Dispatch[0].Actions[0].JobID)
	if err != nil || job.Kind != "noop" || job.Queue != "img" {
		t.Fatalf("job %+v: %v", job, err)
	}
	again, existing, err := c.SendEvent(ctx, ev)
	if err != nil || !existing || again.ID != got.ID {
		t.Fatalf("repeat: %+v, existing %v, %v", again, existing, err)
	}
	_, _, err = c.SendEvent(ctx, client.CloudEvent{ID: "e2", Source: "/x"})
	apiError(t, err, "invalid_argument")

	one, err := c.GetEvent(ctx, got.ID)
	if err != nil || one.Event.Subject != "a/1" {
		t.Fatalf("get: %+v, %v", one, err)
	}
	_, err = c.GetEvent(ctx, "999999")
	apiError(t, err, "not_found")
	page, err := c.ListEvents(ctx, client.ListEventsParams{Type: "image.uploaded", Since: at.Add(-time.Hour), Limit: 10})
	if err != nil || len(page.Items) != 1 || page.NextCursor != "" {
		t.Fatalf("list: %+v, %v", page, err)
	}

	off := false
	r, err = c.ReplaceRule(ctx, r.ID, client.RuleRequest{Name: "thumbs2", Types: []string{"image.*"}, Enabled: &off,
		Actions: []client.RuleAction{{Type: "publish", Topic: "images"}}})
	if err != nil || r.Enabled || r.Name != "thumbs2" {
		t.Fatalf("replace: %+v, %v", r, err)
	}
	rules, err := c.ListRules(ctx, client.ListParams{})
	if err != nil || len(rules.Items) != 1 {
		t.Fatalf("rules: %+v, %v", rules, err)
	}
	if r, err := c.GetRule(ctx, r.ID); err != nil || r.Name != "thumbs2" {
		t.Fatalf("get rule: %+v, %v", r, err)
	}
	if err := c.DeleteRule(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRule(ctx, r.ID)
	apiError(t, err, "not_found")
}

func TestCloudEventJSON(t *testing.T) {
	in := `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1},"n":2,"flag":true}`
	var e client.CloudEvent
	if err := json.Unmarshal([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	if e.ID != "1" || string(e.Data) != `{"a":1}` || e.Extensions["n"] != 2.0 || e.Extensions["flag"] != true {
		t.Fatalf("decoded %+v", e)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back, want map[string]any
	_ = json.Unmarshal(b, &back)
	_ = json.Unmarshal([]byte(in), &want)
	if len(back) != len(want) || back["n"] != want["n"] || back["id"] != "1" {
		t.Fatalf("round trip %s", b)
	}
}
