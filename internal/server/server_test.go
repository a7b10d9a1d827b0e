package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

type apiClient struct {
	t   *testing.T
	url string
	key string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) job(t *testing.T) switchyard.JobRow {
	t.Helper()
	var j switchyard.JobRow
	r.decode(t, &j)
	return j
}

// errorCode checks the error shape and returns its code and message.
func (r response) errorCode(t *testing.T) (code, message string) {
	t.Helper()
	var e struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q is not the error shape: %v", r.body, err)
	}
	if e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" || e.Error.RequestID != r.header.Get("X-Request-Id") {
		t.Fatalf("error body %s lacks code, message or the request id %q", r.body, r.header.Get("X-Request-Id"))
	}
	return e.Error.Code, e.Error.Message
}

func (c *apiClient) do(method, path, body string, header ...string) response {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		c.t.Errorf("%s %s: no X-Request-Id header", method, path)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *apiClient) want(status int, method, path, body string) response {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != status {
		c.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, r.status, status, r.body)
	}
	return r
}

// waitJob polls until the job reaches a final state: the API has no push
// yet, and the job's own progress is the signal.
func (c *apiClient) waitJob(id string) switchyard.JobRow {
	c.t.Helper()
	var j switchyard.JobRow
	testdb.Poll(c.t, 20*time.Second, "job "+id+" finished", func() bool {
		j = c.want(200, "GET", "/v1/jobs/"+id, "").job(c.t)
		switch j.State {
		case switchyard.StateSucceeded, switchyard.StateDead, switchyard.StateCancelled:
			return true
		}
		return false
	})
	return j
}

func TestJobLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db)
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}

		// Create, then watch it finish.
		r := c.want(201, "POST", "/v1/jobs", `{"kind":"noop","args":{"a":1},"tags":["x"],"priority":1}`)
		j := r.job(t)
		if r.header.Get("Location") != "/v1/jobs/"+j.ID || j.Queue != "default" || j.Priority != 1 || j.MaxAttempts != 25 {
			t.Fatalf("created %+v, Location %q", j, r.header.Get("Location"))
		}
		if done := c.waitJob(j.ID); done.State != switchyard.StateSucceeded || done.Attempt != 1 {
			t.Fatalf("job ended %+v", done)
		}

		// A unique key matched by a live job answers 200 with that job.
		first := c.want(201, "POST", "/v1/jobs", `{"kind":"noop","queue":"later","unique_key":"u1","delay":3600}`).job(t)
		again := c.want(200, "POST", "/v1/jobs", `{"kind":"noop","queue":"later","unique_key":"u1","delay":3600}`).job(t)
		if again.ID != first.ID || first.State != switchyard.StateScheduled {
			t.Fatalf("unique key: first %+v, again %+v", first, again)
		}

		// Cancel, retry, delete.
		if got := c.want(200, "POST", "/v1/jobs/"+first.ID+"/cancel", "").job(t); got.State != switchyard.StateCancelled {
			t.Fatalf("cancel: %+v", got)
		}
		code, _ := c.want(409, "POST", "/v1/jobs/"+first.ID+"/cancel", "").errorCode(t)
		if code != "conflict" {
			t.Fatalf("second cancel: code %q", code)
		}
		if got := c.want(200, "POST", "/v1/jobs/"+first.ID+"/retry", "").job(t); got.State != switchyard.StateAvailable {
			t.Fatalf("retry: %+v", got)
		}
		c.waitJob(first.ID)
		c.want(204, "DELETE", "/v1/jobs/"+first.ID, "")
		c.want(404, "GET", "/v1/jobs/"+first.ID, "")
		c.want(404, "DELETE", "/v1/jobs/"+first.ID, "")

		// A failing job retries and ends dead with its errors recorded.
		failing := c.want(201, "POST", "/v1/jobs", `{"kind":"sleep","args":{"duration":"1ms","fail":"boom"},"max_attempts":2}`).job(t)
		dead := c.waitJob(failing.ID)
		if dead.State != switchyard.StateDead || dead.Attempt != 2 || len(dead.Errors) != 2 || dead.Errors[1].Message != "boom" {
			t.Fatalf("failing job ended %+v", dead)
		}
	})
}

func TestBatchAndListPaging(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		var b strings.Builder
		b.WriteString(`{"jobs":[`)
		for i := range 25 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"kind":"noop","queue":"q%d","tags":["t%d"]}`, i%2, i%3)
		}
		b.WriteString(`]}`)
		var batch struct {
			Items []struct {
				Job      switchyard.JobRow `json:"job"`
				Existing bool              `json:"existing"`
			} `json:"items"`
		}
		c.want(201, "POST", "/v1/jobs/batch", b.String()).decode(t, &batch)
		if len(batch.Items) != 25 || batch.Items[24].Job.Queue != "q0" {
			t.Fatalf("batch answered %d items", len(batch.Items))
		}

		// Page through q0 (13 jobs) four at a time: every job once, newest first.
		seen := map[string]bool{}
		cursor := ""
		pages := 0
		for {
			var p struct {
				Items      []switchyard.JobRow `json:"items"`
				NextCursor *string             `json:"next_cursor"`
			}
			path := "/v1/jobs?queue=q0&limit=4"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			c.want(200, "GET", path, "").decode(t, &p)
			pages++
			for _, j := range p.Items {
				if j.Queue != "q0" || seen[j.ID] {
					t.Fatalf("page %d: job %s of queue %s (seen %v)", pages, j.ID, j.Queue, seen[j.ID])
				}
				seen[j.ID] = true
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		if len(seen) != 13 || pages != 4 {
			t.Fatalf("paged %d jobs in %d pages, want 13 in 4", len(seen), pages)
		}
		var tagged struct {
			Items []switchyard.JobRow `json:"items"`
		}
		c.want(200, "GET", "/v1/jobs?tag=t0&state=available", "").decode(t, &tagged)
		if len(tagged.Items) != 9 {
			t.Fatalf("tag t0: %d jobs, want 9", len(tagged.Items))
		}

		// All or nothing: one bad job and nothing is written.
		code, msg := c.want(400, "POST", "/v1/jobs/batch", `{"jobs":[{"kind":"noop"},{"kind":"noop","priority":9}]}`).errorCode(t)
		if code != "invalid_argument" || !strings.Contains(msg, "jobs[1]") {
			t.Fatalf("bad batch: %s %q", code, msg)
		}
		var all struct {
			Items []switchyard.JobRow `json:"items"`
		}
		c.want(200, "GET", "/v1/jobs?limit=1000", "").decode(t, &all)
		if len(all.Items) != 25 {
			t.Fatalf("%d jobs after a refused batch, want 25", len(all.Items))
		}
	})
}

// TestBadInputChangesNothing sends every kind of bad request and checks the
// error shape, the status, and that no job was written.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		anon := &apiClient{t: t, url: srv.URL}
		wrong := &apiClient{t: t, url: srv.URL, key: "sy_not_a_key_at_all"}
		big := `{"kind":"noop","args":{"pad":"` + strings.Repeat("x", 1<<20) + `"}}`
		cases := []struct {
			name         string
			c            *apiClient
			method, path string
			body         string
			header       []string
			status       int
			code         string
			msgHas       string
		}{
			{"malformed JSON", c, "POST", "/v1/jobs", `{"kind":"noop"`, nil, 400, "invalid_argument", "malformed JSON"},
			{"not an object", c, "POST", "/v1/jobs", `[1,2]`, nil, 400, "invalid_argument", "object"},
			{"wrong type", c, "POST", "/v1/jobs", `{"kind":1}`, nil, 400, "invalid_argument", `"kind"`},
			{"wrong type nested", c, "POST", "/v1/jobs", `{"kind":"noop","priority":"high"}`, nil, 400, "invalid_argument", `"priority"`},
			{"unknown field", c, "POST", "/v1/jobs", `{"kind":"noop","colour":"red"}`, nil, 400, "invalid_argument", `"colour"`},
			{"trailing data", c, "POST", "/v1/jobs", `{"kind":"noop"} {}`, nil, 400, "invalid_argument", "after"},
			{"empty body", c, "POST", "/v1/jobs", ``, nil, 400, "invalid_argument", "empty"},
			{"no kind", c, "POST", "/v1/jobs", `{"args":{}}`, nil, 400, "invalid_argument", "kind"},
			{"unknown kind", c, "POST", "/v1/jobs", `{"kind":"nope"}`, nil, 400, "invalid_argument", "nope"},
			{"args not object", c, "POST", "/v1/jobs", `{"kind":"noop","args":[1]}`, nil, 400, "invalid_argument", "object"},
			{"bad kind args", c, "POST", "/v1/jobs", `{"kind":"sleep","args":{"duration":"soon"}}`, nil, 400, "invalid_argument", "duration"},
			{"priority zero", c, "POST", "/v1/jobs", `{"kind":"noop","priority":0}`, nil, 400, "invalid_argument", "priority"},
			{"negative delay", c, "POST", "/v1/jobs", `{"kind":"noop","delay":-1}`, nil, 400, "invalid_argument", "delay"},
			{"run_at and delay", c, "POST", "/v1/jobs", `{"kind":"noop","delay":1,"run_at":"2030-01-01T00:00:00Z"}`, nil, 400, "invalid_argument", "run_at"},
			{"bad run_at", c, "POST", "/v1/jobs", `{"kind":"noop","run_at":"tomorrow"}`, nil, 400, "invalid_argument", ""},
			{"bad queue name", c, "POST", "/v1/jobs", `{"kind":"noop","queue":"a b"}`, nil, 400, "invalid_argument", "queue"},
			{"too large", c, "POST", "/v1/jobs", big, nil, 413, "payload_too_large", "1 MiB"},
			{"not JSON content", c, "POST", "/v1/jobs", `kind=noop`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "application/json"},
			{"empty batch", c, "POST", "/v1/jobs/batch", `{"jobs":[]}`, nil, 400, "invalid_argument", "jobs"},
			{"no key", anon, "POST", "/v1/jobs", `{"kind":"noop"}`, nil, 401, "unauthenticated", "API key"},
			{"unknown key", wrong, "POST", "/v1/jobs", `{"kind":"noop"}`, nil, 401, "unauthenticated", "unknown"},
			{"malformed auth", c, "POST", "/v1/jobs", `{"kind":"noop"}`, []string{"Authorization", "Basic abc"}, 401, "unauthenticated", "Bearer"},
			{"unknown id", c, "GET", "/v1/jobs/999999", "", nil, 404, "not_found", "999999"},
			// Ids are opaque: a malformed one is just unknown.
			{"malformed id", c, "GET", "/v1/jobs/abc", "", nil, 404, "not_found", "abc"},
			{"cancel unknown", c, "POST", "/v1/jobs/999999/cancel", "", nil, 404, "not_found", ""},
			{"bad state filter", c, "GET", "/v1/jobs?state=lost", "", nil, 400, "invalid_argument", "lost"},
			{"bad limit", c, "GET", "/v1/jobs?limit=0", "", nil, 400, "invalid_argument", "limit"},
			{"unknown filter", c, "GET", "/v1/jobs?colour=red", "", nil, 400, "invalid_argument", "colour"},
			{"bad cursor", c, "GET", "/v1/jobs?cursor=xyz", "", nil, 400, "invalid_argument", "cursor"},
			{"queue filter", c, "GET", "/v1/queues?name=x", "", nil, 400, "invalid_argument", `"name"`},
			{"concurrency zero", c, "PATCH", "/v1/queues/default", `{"concurrency":0}`, nil, 400, "invalid_argument", "concurrency"},
			{"empty patch", c, "PATCH", "/v1/queues/default", `{}`, nil, 400, "invalid_argument", "nothing"},
			{"bad queue patch", c, "PATCH", "/v1/queues/a%20b", `{"paused":true}`, nil, 400, "invalid_argument", "queue"},
			{"wrong method", c, "PUT", "/v1/jobs", `{}`, nil, 405, "method_not_allowed", "GET"},
			{"no route", c, "GET", "/v1/nothing", "", nil, 404, "not_found", "/v1/nothing"},
		}
		for _, tc := range cases {
			r := tc.c.do(tc.method, tc.path, tc.body, tc.header...)
			if r.status != tc.status {
				t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
				continue
			}
			code, msg := r.errorCode(t)
			if code != tc.code || !strings.Contains(msg, tc.msgHas) {
				t.Errorf("%s: %s %q, want %s containing %q", tc.name, code, msg, tc.code, tc.msgHas)
			}
		}
		var all struct {
			Items []switchyard.JobRow `json:"items"`
		}
		c.want(200, "GET", "/v1/jobs", "").decode(t, &all)
		if len(all.Items) != 0 {
			t.Fatalf("bad requests wrote %d jobs", len(all.Items))
		}
		var qs struct {
			Items []switchyard.QueueInfo `json:"items"`
		}
		c.want(200, "GET", "/v1/queues", "").decode(t, &qs)
		if len(qs.Items) != 0 {
			t.Fatalf("bad requests created queues: %+v", qs.Items)
		}
	})
}

func TestQueuesOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db)
		c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		var q switchyard.QueueInfo
		c.want(200, "POST", "/v1/queues/mail/pause", "").decode(t, &q)
		if q.Name != "mail" || !q.Paused || q.Concurrency != 100 {
			t.Fatalf("pause: %+v", q)
		}
		job := c.want(201, "POST", "/v1/jobs", `{"kind":"noop","queue":"mail"}`).job(t)
		c.want(200, "PATCH", "/v1/queues/mail", `{"concurrency":3}`).decode(t, &q)
		if q.Concurrency != 3 || !q.Paused || q.Counts["available"] != 1 {
			t.Fatalf("patch: %+v", q)
		}
		// Still paused: the job waits. Resume and it runs.
		if got := c.want(200, "GET", "/v1/jobs/"+job.ID, "").job(t); got.State != switchyard.StateAvailable {
			t.Fatalf("job of a paused queue is %s", got.State)
		}
		c.want(200, "POST", "/v1/queues/mail/resume", "").decode(t, &q)
		if q.Paused {
			t.Fatalf("resume: %+v", q)
		}
		if got := c.waitJob(job.ID); got.State != switchyard.StateSucceeded {
			t.Fatalf("job after resume: %+v", got)
		}
		var list struct {
			Items []switchyard.QueueInfo `json:"items"`
		}
		c.want(200, "GET", "/v1/queues", "").decode(t, &list)
		if len(list.Items) != 1 || list.Items[0].Name != "mail" || list.Items[0].Concurrency != 3 || list.Items[0].Counts["succeeded"] != 1 {
			t.Fatalf("queues: %+v", list.Items)
		}
	})
}

func TestHealthReadyAndMetrics(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t))
	c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
	anon := &apiClient{t: t, url: srv.URL}
	anon.want(200, "GET", "/healthz", "")
	anon.want(200, "GET", "/readyz", "")
	job := c.want(201, "POST", "/v1/jobs", `{"kind":"noop","queue":"m"}`).job(t)
	c.waitJob(job.ID)
	c.want(201, "POST", "/v1/jobs", `{"kind":"noop","queue":"held","delay":3600}`)
	c.want(400, "POST", "/v1/jobs", `{"kind":"nope"}`)

	r := anon.want(200, "GET", "/metrics", "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := families[name]
		if f == nil {
			return 0, false
		}
		for _, m := range f.Metric {
			match := true
			for k, v := range labels {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				match = match && found
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
		return 0, false
	}
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"switchyard_jobs_enqueued_total", map[string]string{"queue": "m", "kind": "noop"}, 1},
		{"switchyard_job_attempts_total", map[string]string{"queue": "m", "kind": "noop", "outcome": "succeeded"}, 1},
		{"switchyard_queue_jobs", map[string]string{"queue": "held", "state": "scheduled"}, 1},
		{"switchyard_queue_jobs", map[string]string{"queue": "m", "state": "succeeded"}, 1},
		{"switchyard_job_start_delay_seconds", map[string]string{"queue": "m"}, 1},
		{"switchyard_job_run_seconds", map[string]string{"queue": "m", "kind": "noop"}, 1},
		{"switchyard_http_requests_total", map[string]string{"method": "POST", "route": "/v1/jobs", "status": "201"}, 2},
		{"switchyard_http_requests_total", map[string]string{"method": "POST", "route": "/v1/jobs", "status": "400"}, 1},
		{"switchyard_http_request_duration_seconds", map[string]string{"method": "GET", "route": "/v1/jobs/{id}"}, 1},
		{"switchyard_store_operation_seconds", map[string]string{"op": "insert", "result": "ok"}, 2},
		{"switchyard_leader", nil, 0}, // present; its value depends on the election's timing
	}
	for _, ck := range checks {
		v, ok := value(ck.name, ck.labels)
		if !ok || v < ck.min {
			t.Errorf("%s%v = %v (present %v), want ≥ %v", ck.name, ck.labels, v, ok, ck.min)
		}
	}
	if families["switchyard_leader"].GetType().String() != "GAUGE" {
		t.Errorf("switchyard_leader is a %s", families["switchyard_leader"].GetType())
	}
}

func TestMetricsAuth(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true, Server: server.Config{MetricsAuth: true}})
	anon := &apiClient{t: t, url: srv.URL}
	if code, _ := anon.want(401, "GET", "/metrics", "").errorCode(t); code != "unauthenticated" {
		t.Fatalf("code %s", code)
	}
	(&apiClient{t: t, url: srv.URL, key: srv.AdminKey}).want(200, "GET", "/metrics", "")
	anon.want(200, "GET", "/healthz", "")
}

func TestSecurityHeadersAndCORS(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true,
		Server: server.Config{AllowedOrigins: []string{"https://app.example"}}})
	c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
	// Every response carries the security headers, errors and 404s too.
	for _, r := range []response{
		c.do("GET", "/v1/jobs", ""),
		c.do("GET", "/v1/nothing", ""),
		(&apiClient{t: t, url: srv.URL}).do("GET", "/v1/jobs", ""),
		c.do("GET", "/healthz", ""),
	} {
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" ||
			r.header.Get("Content-Security-Policy") == "" || r.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("status %d: security headers missing: %v", r.status, r.header)
		}
	}
	// An allowed origin may read answers and preflight; another may not.
	r := c.do("GET", "/v1/jobs", "", "Origin", "https://app.example")
	if r.header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("allowed origin: %v", r.header)
	}
	r = c.do("GET", "/v1/jobs", "", "Origin", "https://evil.example")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d %v", r.status, r.header)
	}
	pre := c.do("OPTIONS", "/v1/jobs", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", pre.status, pre.header)
	}
	// A binary-mode CloudEvent from a browser: its ce-* headers, extensions
	// included, are allowed; PUT (rules) is too.
	pre = c.do("OPTIONS", "/v1/events", "", "Origin", "https://app.example", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "content-type, ce-id, ce-source, ce-type, ce-specversion, ce-tenantlabel, x-evil")
	if allowed := pre.header.Get("Access-Control-Allow-Headers"); pre.status != 204 ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(allowed, "ce-id") || !strings.Contains(allowed, "ce-tenantlabel") || strings.Contains(allowed, "x-evil") {
		t.Errorf("preflight for a binary CloudEvent: %d %v", pre.status, pre.header)
	}
	bad := c.do("OPTIONS", "/v1/jobs", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if code, _ := bad.errorCode(t); bad.status != 403 || code != "permission_denied" || bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", bad.status, bad.header)
	}
}
