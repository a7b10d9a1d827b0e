package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// eventOut is an answer of the events routes.
type eventOut struct {
	ID    string `json:"id"`
	Event struct {
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Subject         string          `json:"subject"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
		DataBase64      string          `json:"data_base64"`
		Myext           string          `json:"myext"`
	} `json:"event"`
	Dispatch []struct {
		RuleID  string `json:"rule_id"`
		Rule    string `json:"rule"`
		Matched bool   `json:"matched"`
		Error   string `json:"error"`
		Actions []struct {
			Action   string `json:"action"`
			JobID    string `json:"job_id"`
			Existing bool   `json:"existing"`
			Topic    string `json:"topic"`
			Error    string `json:"error"`
		} `json:"actions"`
	} `json:"dispatch"`
}

type ruleOut struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Types   []string `json:"types"`
	Filter  string   `json:"filter"`
	Enabled bool     `json:"enabled"`
}

func (r response) event(t *testing.T) eventOut {
	t.Helper()
	var e eventOut
	r.decode(t, &e)
	return e
}

// send posts body to /v1/events with the headers given (name, value, …).
func (c *apiClient) send(status int, body string, header ...string) response {
	c.t.Helper()
	r := c.do("POST", "/v1/events", body, header...)
	if r.status != status {
		c.t.Fatalf("POST /v1/events %s %v: status %d, want %d: %s", body, header, r.status, status, r.body)
	}
	return r
}

const structured = "application/cloudevents+json; charset=utf-8"

func TestEventsOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true}) // jobs stay queued
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}

		// A rule that enqueues a job for large images; enabled by default.
		var thumbs ruleOut
		c.want(201, "POST", "/v1/rules", `{"name":"thumbs","types":["image.*"],"filter":"data.size > 1000",
			"actions":[{"type":"enqueue","queue":"img","kind":"noop","args":"{\"url\": data.url, \"subject\": subject}"}]}`).decode(t, &thumbs)
		if !thumbs.Enabled || thumbs.ID == "" || thumbs.Filter != "data.size > 1000" {
			t.Fatalf("created rule %+v", thumbs)
		}
		// A rule whose filter fails when it runs.
		c.want(201, "POST", "/v1/rules", `{"name":"broken","types":["broken.*"],"filter":"data.items[3] == 1",
			"actions":[{"type":"publish","topic":"broken"}]}`)

		// Structured mode.
		img := `{"specversion":"1.0","id":"e1","source":"/uploads","type":"image.uploaded","subject":"avatars/1",
			"data":{"url":"https://cdn.test/a.png","size":2048}}`
		r := c.send(201, img, "Content-Type", structured)
		ev := r.event(t)
		if r.header.Get("Location") != "/v1/events/"+ev.ID || ev.Event.ID != "e1" || len(ev.Dispatch) != 1 {
			t.Fatalf("sent %s, Location %q", r.body, r.header.Get("Location"))
		}
		d := ev.Dispatch[0]
		if !d.Matched || d.RuleID != thumbs.ID || d.Rule != "thumbs" || len(d.Actions) != 1 || d.Actions[0].JobID == "" || d.Actions[0].Error != "" {
			t.Fatalf("dispatch %s", r.body)
		}
		job := c.want(200, "GET", "/v1/jobs/"+d.Actions[0].JobID, "").job(t)
		var args map[string]any
		if err := json.Unmarshal(job.Args, &args); err != nil {
			t.Fatal(err)
		}
		if job.Kind != "noop" || job.Queue != "img" || args["url"] != "https://cdn.test/a.png" || args["subject"] != "avatars/1" || len(args) != 2 {
			t.Fatalf("job %+v, args %v", job, args)
		}

		// A repeat answers 200 with the stored event and enqueues nothing.
		again := c.send(200, img, "Content-Type", structured).event(t)
		if again.ID != ev.ID {
			t.Fatalf("repeat is event %s, want %s", again.ID, ev.ID)
		}
		var jobs struct{ Items []any }
		c.want(200, "GET", "/v1/jobs?queue=img", "").decode(t, &jobs)
		if len(jobs.Items) != 1 {
			t.Fatalf("%d jobs in img after a repeat, want 1", len(jobs.Items))
		}

		// application/json without ce-* headers is structured too; a
		// small image does not pass the filter.
		small := c.send(201, `{"specversion":"1.0","id":"e2","source":"/uploads","type":"image.uploaded","data":{"size":10}}`).event(t)
		if len(small.Dispatch) != 1 || small.Dispatch[0].Matched || len(small.Dispatch[0].Actions) != 0 {
			t.Fatalf("small image dispatch %+v", small.Dispatch)
		}

		// Binary mode, JSON data.
		bin := c.send(201, `{"url": "https://cdn.test/b.png", "size": 5000}`,
			"Content-Type", "application/json", "ce-specversion", "1.0", "ce-id", "b1", "ce-source", "/cam",
			"ce-type", "image.captured", "ce-subject", "cams/7", "ce-time", "2026-01-02T03:04:05Z", "ce-myext", "a%20b").event(t)
		if bin.Event.Type != "image.captured" || bin.Event.Subject != "cams/7" || bin.Event.Myext != "a b" ||
			bin.Event.DataContentType != "application/json" || string(bin.Event.Data) != `{"url":"https://cdn.test/b.png","size":5000}` {
			t.Fatalf("binary JSON event %+v", bin.Event)
		}
		if len(bin.Dispatch) != 1 || !bin.Dispatch[0].Matched || bin.Dispatch[0].Actions[0].JobID == "" {
			t.Fatalf("binary JSON dispatch %+v", bin.Dispatch)
		}

		// Binary mode, binary data.
		png := "\x89PNG\r\n\x1a\n\x00\x01"
		blob := c.send(201, png, "Content-Type", "image/png", "ce-specversion", "1.0", "ce-id", "b2", "ce-source", "/cam", "ce-type", "blob.stored").event(t)
		if blob.Event.DataContentType != "image/png" || blob.Event.DataBase64 != base64.StdEncoding.EncodeToString([]byte(png)) || blob.Event.Data != nil {
			t.Fatalf("binary event %+v", blob.Event)
		}
		// Binary mode, no body: no data.
		if e := c.send(201, "", "ce-specversion", "1.0", "ce-id", "b3", "ce-source", "/cam", "ce-type", "blob.empty").event(t); e.Event.Data != nil || e.Event.DataBase64 != "" {
			t.Fatalf("event without data %+v", e.Event)
		}

		// Batch mode.
		batch := `[{"specversion":"1.0","id":"k1","source":"/batch","type":"batch.item"},
			{"specversion":"1.0","id":"k2","source":"/batch","type":"batch.item","data":[1,2]}]`
		var items struct {
			Items []struct {
				Event    eventOut `json:"event"`
				Existing bool     `json:"existing"`
			} `json:"items"`
		}
		c.send(200, batch, "Content-Type", "application/cloudevents-batch+json").decode(t, &items)
		if len(items.Items) != 2 || items.Items[0].Existing || items.Items[1].Event.Event.ID != "k2" {
			t.Fatalf("batch answer %+v", items)
		}
		c.send(200, batch, "Content-Type", "application/cloudevents-batch+json").decode(t, &items)
		if len(items.Items) != 2 || !items.Items[0].Existing || !items.Items[1].Existing {
			t.Fatalf("repeated batch answer %+v", items)
		}

		// A filter that fails at runtime: the event is recorded with the
		// error.
		broken := c.send(201, `{"specversion":"1.0","id":"x1","source":"/b","type":"broken.thing","data":{"items":[1]}}`).event(t)
		if len(broken.Dispatch) != 1 || broken.Dispatch[0].Matched || broken.Dispatch[0].Error == "" {
			t.Fatalf("failing rule dispatch %+v", broken.Dispatch)
		}
		if got := c.want(200, "GET", "/v1/events/"+broken.ID, "").event(t); got.Dispatch[0].Error != broken.Dispatch[0].Error {
			t.Fatalf("stored event %+v", got)
		}

		// Bad input answers 400 (413, 415) and records nothing.
		count := func() int {
			var p struct{ Items []any }
			c.want(200, "GET", "/v1/events?limit=1000", "").decode(t, &p)
			return len(p.Items)
		}
		before := count()
		ok := `"specversion":"1.0","source":"/bad","type":"bad.thing"`
		for _, tc := range []struct {
			name   string
			body   string
			header []string
			status int
			msg    string
		}{
			{"malformed JSON", `{"specversion":"1.0",`, []string{"Content-Type", structured}, 400, "JSON"},
			{"missing id", `{` + ok + `}`, nil, 400, `"id"`},
			{"specversion 0.3", `{"specversion":"0.3","id":"z","source":"/bad","type":"bad.thing"}`, nil, 400, "specversion"},
			{"id a number", `{` + ok + `,"id":5}`, nil, 400, `"id"`},
			{"extension an object", `{` + ok + `,"id":"z","ext":{"a":1}}`, nil, 400, "ext"},
			{"null", `null`, nil, 400, "null"},
			{"empty body", ` `, []string{"Content-Type", structured}, 400, "empty"},
			{"batch with a bad event", `[{` + ok + `,"id":"z1"},{` + ok + `}]`, []string{"Content-Type", mediaBatch}, 400, "events[1]"},
			{"empty batch", `[]`, []string{"Content-Type", mediaBatch}, 400, "1 to 1000"},
			{"batch not an array", `{` + ok + `,"id":"z"}`, []string{"Content-Type", mediaBatch}, 400, "array"},
			{"binary without type", `{}`, []string{"ce-specversion", "1.0", "ce-id", "z", "ce-source", "/bad"}, 400, `"type"`},
			{"binary specversion 0.3", `{}`, []string{"ce-specversion", "0.3", "ce-id", "z", "ce-source", "/bad", "ce-type", "bad.thing"}, 400, "specversion"},
			{"binary bad JSON data", `{"a":`, []string{"ce-specversion", "1.0", "ce-id", "z", "ce-source", "/bad", "ce-type", "bad.thing"}, 400, "not valid JSON"},
			{"binary bad time", `{}`, []string{"ce-specversion", "1.0", "ce-id", "z", "ce-source", "/bad", "ce-type", "bad.thing", "ce-time", "yesterday"}, 400, "ce-time"},
			{"binary bad extension name", `{}`, []string{"ce-specversion", "1.0", "ce-id", "z", "ce-source", "/bad", "ce-type", "bad.thing", "ce-my-ext", "1"}, 400, "my-ext"},
			{"oversized", `{` + ok + `,"id":"z","data":"` + strings.Repeat("x", switchyard.MaxEventBytes) + `"}`, []string{"Content-Type", structured}, 413, "limit"},
			{"too many in a batch", `[` + strings.Repeat(`{`+ok+`,"id":"z"},`, 2000) + `{` + ok + `,"id":"z"}]`, []string{"Content-Type", mediaBatch}, 400, "1 to 1000"},
			{"not an event type", `hello`, []string{"Content-Type", "text/plain"}, 415, "CloudEvent"},
		} {
			r := c.do("POST", "/v1/events", tc.body, tc.header...)
			if r.status != tc.status {
				t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
				continue
			}
			if _, msg := r.errorCode(t); !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: message %q does not mention %q", tc.name, msg, tc.msg)
			}
		}
		if after := count(); after != before {
			t.Fatalf("bad input recorded %d events", after-before)
		}

		// Listing and filters.
		var page struct {
			Items      []eventOut `json:"items"`
			NextCursor *string    `json:"next_cursor"`
		}
		c.want(200, "GET", "/v1/events?type=image.uploaded", "").decode(t, &page)
		if len(page.Items) != 2 || page.Items[0].Event.ID != "e2" || page.Items[1].Event.ID != "e1" || page.NextCursor != nil {
			t.Fatalf("image.uploaded events %+v", page)
		}
		c.want(200, "GET", "/v1/events?source=/cam&subject=cams/7", "").decode(t, &page)
		if len(page.Items) != 1 || page.Items[0].Event.ID != "b1" {
			t.Fatalf("events of /cam about cams/7 %+v", page)
		}
		c.want(200, "GET", "/v1/events?limit=2", "").decode(t, &page)
		if len(page.Items) != 2 || page.NextCursor == nil {
			t.Fatalf("first page of 2 %+v", page)
		}
		c.want(200, "GET", "/v1/events?limit=2&cursor="+*page.NextCursor, "").decode(t, &page)
		if len(page.Items) != 2 {
			t.Fatalf("second page %+v", page)
		}
		c.want(200, "GET", "/v1/events?since=2100-01-01T00:00:00Z", "").decode(t, &page)
		if len(page.Items) != 0 {
			t.Fatalf("events from 2100 %+v", page)
		}
		for _, q := range []string{"?bogus=1", "?since=yesterday", "?until=1", "?limit=0", "?cursor=abc"} {
			if r := c.do("GET", "/v1/events"+q, ""); r.status != 400 {
				t.Errorf("GET /v1/events%s: status %d, want 400", q, r.status)
			}
		}

		// Another tenant sees none of it.
		c.want(201, "POST", "/v1/tenants", `{"id":"other"}`)
		if r := c.do("GET", "/v1/events/"+ev.ID, "", "Switchyard-Tenant", "other"); r.status != 404 {
			t.Fatalf("other tenant's GET: %d %s", r.status, r.body)
		}
		c.want(404, "GET", "/v1/events/999999999", "")
		c.want(404, "GET", "/v1/events/nope", "")
		var otherPage struct{ Items []any }
		r = c.do("GET", "/v1/events", "", "Switchyard-Tenant", "other")
		if r.decode(t, &otherPage); r.status != 200 || len(otherPage.Items) != 0 {
			t.Fatalf("other tenant's events: %d %s", r.status, r.body)
		}
	})
}

const mediaBatch = "application/cloudevents-batch+json"

func TestRulesOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		body := func(name, extra string) string {
			return fmt.Sprintf(`{"name":%q,"types":["order.*"]%s,"actions":[{"type":"publish","topic":"orders"}]}`, name, extra)
		}
		var a, b ruleOut
		r := c.want(201, "POST", "/v1/rules", body("a", `,"enabled":false`))
		r.decode(t, &a)
		if a.Enabled || r.header.Get("Location") != "/v1/rules/"+a.ID {
			t.Fatalf("created %+v, Location %q", a, r.header.Get("Location"))
		}
		c.want(201, "POST", "/v1/rules", body("b", "")).decode(t, &b)
		if !b.Enabled {
			t.Fatalf("enabled did not default to true: %+v", b)
		}

		for _, tc := range []struct {
			name, body string
			status     int
			msg        string
		}{
			{"bad filter", body("c", `,"filter":"data.total >"`), 400, "filter"},
			{"unknown name in filter", body("c", `,"filter":"nosuch > 1"`), 400, "filter"},
			{"no types", `{"name":"c","types":[],"actions":[{"type":"publish","topic":"x"}]}`, 400, "types"},
			{"no name", body("", ""), 400, "name"},
			{"unknown action", `{"name":"c","types":["x"],"actions":[{"type":"mail"}]}`, 400, "mail"},
			{"unknown kind", `{"name":"c","types":["x"],"actions":[{"type":"enqueue","kind":"nosuch"}]}`, 400, "nosuch"},
			{"unknown field", body("c", `,"when":"always"`), 400, "when"},
			{"wrong type", body("c", `,"enabled":"yes"`), 400, "enabled"},
			{"name taken", body("a", ""), 409, "a"},
		} {
			r := c.do("POST", "/v1/rules", tc.body)
			if r.status != tc.status {
				t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
				continue
			}
			if _, msg := r.errorCode(t); !strings.Contains(msg, tc.msg) {
				t.Errorf("%s: message %q does not mention %q", tc.name, msg, tc.msg)
			}
		}

		var got ruleOut
		c.want(200, "GET", "/v1/rules/"+a.ID, "").decode(t, &got)
		if got.ID != a.ID || got.Name != "a" || got.Enabled || len(got.Types) != 1 || got.Types[0] != "order.*" {
			t.Fatalf("got %+v", got)
		}
		var page struct {
			Items      []ruleOut `json:"items"`
			NextCursor *string   `json:"next_cursor"`
		}
		c.want(200, "GET", "/v1/rules?limit=1", "").decode(t, &page)
		if len(page.Items) != 1 || page.NextCursor == nil {
			t.Fatalf("first page %+v", page)
		}
		c.want(200, "GET", "/v1/rules?limit=1&cursor="+*page.NextCursor, "").decode(t, &page)
		if len(page.Items) != 1 || page.NextCursor != nil {
			t.Fatalf("second page %+v", page)
		}
		c.want(400, "GET", "/v1/rules?type=x", "")

		// Full replacement.
		c.want(200, "PUT", "/v1/rules/"+a.ID, body("a2", `,"filter":"data.total > 10"`)).decode(t, &got)
		if got.Name != "a2" || !got.Enabled || got.Filter != "data.total > 10" {
			t.Fatalf("replaced %+v", got)
		}
		c.want(409, "PUT", "/v1/rules/"+a.ID, body("b", ""))
		c.want(400, "PUT", "/v1/rules/"+a.ID, body("a2", `,"filter":"("`))
		c.want(404, "PUT", "/v1/rules/rul_nosuch", body("z", ""))
		c.want(404, "GET", "/v1/rules/rul_nosuch", "")

		// The rule works: an order event is published to its topic.
		ev := c.send(201, `{"specversion":"1.0","id":"o1","source":"/shop","type":"order.placed","data":{"total":20}}`).event(t)
		if len(ev.Dispatch) != 2 {
			t.Fatalf("dispatch %+v", ev.Dispatch)
		}
		for _, d := range ev.Dispatch {
			if !d.Matched || len(d.Actions) != 1 || d.Actions[0].Topic != "orders" {
				t.Fatalf("dispatch %+v", ev.Dispatch)
			}
		}

		// Other tenants cannot see or change it.
		c.want(201, "POST", "/v1/tenants", `{"id":"other"}`)
		for _, m := range []string{"GET", "DELETE"} {
			if r := c.do(m, "/v1/rules/"+a.ID, "", "Switchyard-Tenant", "other"); r.status != 404 {
				t.Fatalf("%s as other tenant: %d %s", m, r.status, r.body)
			}
		}

		c.want(204, "DELETE", "/v1/rules/"+a.ID, "")
		c.want(404, "DELETE", "/v1/rules/"+a.ID, "")
		c.want(404, "GET", "/v1/rules/"+a.ID, "")
		ev = c.send(201, `{"specversion":"1.0","id":"o2","source":"/shop","type":"order.placed"}`).event(t)
		if len(ev.Dispatch) != 1 || ev.Dispatch[0].RuleID != b.ID {
			t.Fatalf("dispatch after delete %+v", ev.Dispatch)
		}
	})
}
