package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// newClient starts a real server on db and returns a client for it with
// the admin key.
func newClient(t *testing.T, db string) (*client.Client, *servertest.Server) {
	t.Helper()
	srv := servertest.Start(t, db)
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: srv.AdminKey})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// apiError asserts err is an *Error with the given code and returns it.
func apiError(t *testing.T, err error, code string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("error code %q, want %q: %v", e.Code, code, e)
	}
	if e.Message == "" || e.RequestID == "" {
		t.Fatalf("error without message or request id: %+v", e)
	}
	return e
}

func TestClient(t *testing.T) {
	t.Parallel()
	dbs := map[string]string{
		"sqlite":   "sqlite:" + testdb.SQLitePath(t),
		"postgres": testdb.PostgresURL(t),
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, srv := newClient(t, db)
			ctx := context.Background()
			if err := c.Health(ctx); err != nil {
				t.Fatalf("health: %v", err)
			}
			t.Run("jobs", func(t *testing.T) { testJobs(t, c) })
			t.Run("paging", func(t *testing.T) { testPaging(t, c) })
			t.Run("queues", func(t *testing.T) { testQueues(t, c) })
			t.Run("workers", func(t *testing.T) { testWorkers(t, c, srv) })
			t.Run("errors", func(t *testing.T) { testErrors(t, c) })
		})
	}
}

// holdQueue pauses a fresh queue so that its jobs stay where the test puts
// them instead of being run.
func holdQueue(t *testing.T, c *client.Client, name string) {
	t.Helper()
	q, err := c.PauseQueue(context.Background(), name)
	if err != nil {
		t.Fatalf("pause %s: %v", name, err)
	}
	if !q.Paused || q.Name != name {
		t.Fatalf("pause %s answered %+v", name, q)
	}
}

func testJobs(t *testing.T, c *client.Client) {
	ctx := context.Background()
	holdQueue(t, c, "held")

	req := client.JobRequest{
		Kind:        "noop",
		Queue:       "held",
		Args:        map[string]any{"n": 1, "s": "x"},
		Priority:    1,
		UniqueKey:   "once",
		MaxAttempts: 3,
		Timeout:     1500 * time.Millisecond,
		Tags:        []string{"a", "b"},
	}
	job, existing, err := c.EnqueueJob(ctx, req)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if existing || job.ID == "" || job.Queue != "held" || job.Kind != "noop" || job.Priority != 1 ||
		job.State != client.StateAvailable || job.MaxAttempts != 3 || job.Timeout != 1500*time.Millisecond ||
		job.UniqueKey != "once" || !slices.Equal(job.Tags, []string{"a", "b"}) || job.Attempt != 0 ||
		job.StartedAt != nil || job.FinishedAt != nil || job.RunAt.IsZero() || job.CreatedAt.IsZero() {
		t.Fatalf("enqueued job: existing %v, %+v", existing, job)
	}
	var args map[string]any
	if err := json.Unmarshal(job.Args, &args); err != nil || args["n"] != 1.0 || args["s"] != "x" {
		t.Fatalf("args %s: %v", job.Args, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(job.Raw, &raw); err != nil || raw["id"] != job.ID {
		t.Fatalf("raw %s: %v", job.Raw, err)
	}

	again, existing, err := c.EnqueueJob(ctx, req)
	if err != nil || !existing || again.ID != job.ID {
		t.Fatalf("enqueue with the same unique key: existing %v, %+v, %v", existing, again, err)
	}

	got, err := c.GetJob(ctx, job.ID)
	if err != nil || got.ID != job.ID || got.State != client.StateAvailable || got.Timeout != job.Timeout {
		t.Fatalf("get: %+v, %v", got, err)
	}

	delayed, _, err := c.EnqueueJob(ctx, client.JobRequest{Kind: "noop", Queue: "held", Delay: time.Hour})
	if err != nil || delayed.State != client.StateScheduled || time.Until(delayed.RunAt) < 30*time.Minute {
		t.Fatalf("delayed: %+v, %v", delayed, err)
	}
	runAt := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	at, _, err := c.EnqueueJob(ctx, client.JobRequest{Kind: "noop", Queue: "held", RunAt: runAt})
	if err != nil || at.State != client.StateScheduled || !at.RunAt.Equal(runAt) {
		t.Fatalf("run_at %v: %+v, %v", runAt, at, err)
	}

	cancelled, err := c.CancelJob(ctx, job.ID)
	if err != nil || cancelled.State != client.StateCancelled || !cancelled.State.Final() || cancelled.FinishedAt == nil {
		t.Fatalf("cancel: %+v, %v", cancelled, err)
	}
	retried, err := c.RetryJob(ctx, job.ID)
	if err != nil || retried.State.Final() {
		t.Fatalf("retry: %+v, %v", retried, err)
	}
	if err := c.DeleteJob(ctx, job.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.GetJob(ctx, job.ID)
	if e := apiError(t, err, client.CodeNotFound); e.Status != http.StatusNotFound {
		t.Fatalf("get after delete: %+v", e)
	}

	items, err := c.EnqueueJobs(ctx, []client.JobRequest{
		{Kind: "noop", Queue: "held", Tags: []string{"batch"}},
		{Kind: "noop", Queue: "held", Tags: []string{"batch"}, UniqueKey: "batch-1"},
		{Kind: "noop", Queue: "held", Tags: []string{"batch"}, UniqueKey: "batch-1"},
	})
	if err != nil || len(items) != 3 {
		t.Fatalf("batch: %+v, %v", items, err)
	}
	if items[0].Existing || items[0].Job.ID == "" || items[1].Job.UniqueKey != "batch-1" {
		t.Fatalf("batch items: %+v", items)
	}
	// All or nothing: one bad job rejects the whole batch.
	_, err = c.EnqueueJobs(ctx, []client.JobRequest{
		{Kind: "noop", Queue: "held", Tags: []string{"rejected"}},
		{Kind: "noop", Queue: "held", Tags: []string{"rejected"}, Priority: 9},
	})
	apiError(t, err, client.CodeInvalidArgument)
	page, err := c.ListJobs(ctx, client.ListJobsParams{Tag: "rejected"})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("a rejected batch wrote %d jobs (%v)", len(page.Items), err)
	}
	_, err = c.EnqueueJobs(ctx, nil)
	apiError(t, err, client.CodeInvalidArgument)
}

func testPaging(t *testing.T, c *client.Client) {
	ctx := context.Background()
	holdQueue(t, c, "paged")
	var reqs []client.JobRequest
	for i := range 25 {
		reqs = append(reqs, client.JobRequest{Kind: "noop", Queue: "paged", Args: map[string]int{"i": i}, Tags: []string{"paged"}})
	}
	items, err := c.EnqueueJobs(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, it := range items {
		want[it.Job.ID] = true
	}

	seen := map[string]bool{}
	p := client.ListJobsParams{Queue: "paged", State: client.StateAvailable, Kind: "noop", Tag: "paged", Limit: 10}
	var sizes []int
	for {
		page, err := c.ListJobs(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Items))
		for _, j := range page.Items {
			if seen[j.ID] || !want[j.ID] {
				t.Fatalf("job %s listed twice or not enqueued here", j.ID)
			}
			seen[j.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		if len(sizes) > 10 {
			t.Fatalf("paging does not end: %v", sizes)
		}
		p.Cursor = page.NextCursor
	}
	if len(seen) != 25 || sizes[0] != 10 || sizes[1] != 10 {
		t.Fatalf("listed %d of 25 jobs in pages %v", len(seen), sizes)
	}
	for _, p := range []client.ListJobsParams{
		{Queue: "paged", State: client.StateSucceeded},
		{Queue: "paged", Kind: "sleep"},
		{Tag: "no-such-tag"},
	} {
		page, err := c.ListJobs(ctx, p)
		if err != nil || len(page.Items) != 0 || page.NextCursor != "" {
			t.Fatalf("list %+v: %d jobs, cursor %q, %v", p, len(page.Items), page.NextCursor, err)
		}
	}
	_, err = c.ListJobs(ctx, client.ListJobsParams{Limit: 1001})
	apiError(t, err, client.CodeInvalidArgument)
	_, err = c.ListJobs(ctx, client.ListJobsParams{State: "sideways"})
	apiError(t, err, client.CodeInvalidArgument)
}

func testQueues(t *testing.T, c *client.Client) {
	ctx := context.Background()
	holdQueue(t, c, "q1")
	if _, _, err := c.EnqueueJob(ctx, client.JobRequest{Kind: "noop", Queue: "q1"}); err != nil {
		t.Fatal(err)
	}
	qs, err := c.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(qs, func(q client.Queue) bool { return q.Name == "q1" })
	if i < 0 || !qs[i].Paused || qs[i].Counts.Available != 1 || len(qs[i].Raw) == 0 {
		t.Fatalf("queues: %+v", qs)
	}
	q, err := c.ResumeQueue(ctx, "q1")
	if err != nil || q.Paused {
		t.Fatalf("resume: %+v, %v", q, err)
	}
	n := 7
	q, err = c.UpdateQueue(ctx, "q1", client.QueueUpdate{Concurrency: &n})
	if err != nil || q.Concurrency != 7 || q.Paused {
		t.Fatalf("set concurrency: %+v, %v", q, err)
	}
	paused := true
	q, err = c.UpdateQueue(ctx, "q1", client.QueueUpdate{Paused: &paused})
	if err != nil || !q.Paused || q.Concurrency != 7 {
		t.Fatalf("set paused: %+v, %v", q, err)
	}
	zero := 0
	_, err = c.UpdateQueue(ctx, "q1", client.QueueUpdate{Concurrency: &zero})
	apiError(t, err, client.CodeInvalidArgument)
	if _, err := c.PauseQueue(ctx, ""); err == nil {
		t.Fatal("pausing the queue named \"\" did not fail")
	}
}

// testWorkers lists the server's own node, the one worker of the default
// tenant, and no worker in a tenant no node was configured with.
func testWorkers(t *testing.T, c *client.Client, srv *servertest.Server) {
	ctx := context.Background()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := srv.Client.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || len(direct) != 1 {
		t.Fatalf("workers = %+v, the server's own view %+v; want its node alone", ws, direct)
	}
	w := ws[0]
	if w.ID != direct[0].ID || w.State != client.WorkerOnline || w.PID != direct[0].PID || w.Hostname != direct[0].Hostname ||
		!w.AllQueues || !w.AllTenants || len(w.Queues) != 0 || !w.StartedAt.Equal(direct[0].StartedAt) ||
		w.LastSeenAt.IsZero() || w.OfflineAt != nil || len(w.Raw) == 0 {
		t.Fatalf("worker = %+v, want %+v", w, direct[0])
	}
	if _, err := c.CreateTenant(ctx, client.TenantRequest{ID: "no-workers"}); err != nil {
		t.Fatal(err)
	}
	ws, err = c.WithTenant("no-workers").ListWorkers(ctx)
	if err != nil || ws == nil || len(ws) != 0 {
		t.Fatalf("workers of a tenant without nodes = %#v, %v; want an empty list", ws, err)
	}
	_, err = c.WithTenant("no-such-tenant").ListWorkers(ctx)
	apiError(t, err, client.CodeNotFound)
}

func testErrors(t *testing.T, c *client.Client) {
	ctx := context.Background()
	_, err := c.GetJob(ctx, "999999999")
	e := apiError(t, err, client.CodeNotFound)
	if want := "switchyard: not_found: " + e.Message + " (request " + e.RequestID + ")"; e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	// An id with a slash and a question mark is one path segment: the
	// server looks for the job rather than routing elsewhere.
	_, err = c.GetJob(ctx, "a/b?c")
	var ae *client.Error
	if !errors.As(err, &ae) || (ae.Code != client.CodeNotFound && ae.Code != client.CodeInvalidArgument) {
		t.Fatalf("get odd id: %v", err)
	}
	if _, err := c.GetJob(ctx, ""); err == nil || errors.As(err, &ae) {
		t.Fatalf("get empty id: %v", err)
	}
	_, _, err = c.EnqueueJob(ctx, client.JobRequest{Kind: "noop", Priority: 7})
	apiError(t, err, client.CodeInvalidArgument)
	_, _, err = c.EnqueueJob(ctx, client.JobRequest{Kind: "noop", Args: json.RawMessage(`[1]`)})
	apiError(t, err, client.CodeInvalidArgument)
	_, _, err = c.EnqueueJob(ctx, client.JobRequest{Kind: "no.such.kind"})
	apiError(t, err, client.CodeInvalidArgument)
}

func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t))
	ctx := context.Background()
	for _, key := range []string{"", "not-a-key"} {
		c, err := client.New(client.Config{BaseURL: srv.URL + "/", APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListQueues(ctx)
		if e := apiError(t, err, client.CodeUnauthenticated); e.Status != http.StatusUnauthorized {
			t.Fatalf("key %q: %+v", key, e)
		}
		// Readiness needs no key.
		if err := c.Health(ctx); err != nil {
			t.Fatalf("health with key %q: %v", key, err)
		}
	}
}

// TestErrorNotInShape covers answers that do not come from Switchyard, such
// as a proxy's error page, which the real server never sends.
func TestErrorNotInShape(t *testing.T) {
	t.Parallel()
	body := "<html>" + strings.Repeat("é", 300) + "</html>"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "proxy-1")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, body)
	}))
	defer ts.Close()
	c, err := client.New(client.Config{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetJob(context.Background(), "1")
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not a *client.Error", err)
	}
	if e.Status != 502 || e.Code != "http_502" || e.RequestID != "proxy-1" ||
		len(e.Message) > 200 || len(e.Message) < 190 || !strings.HasPrefix(body, e.Message) {
		t.Fatalf("error %+v (message %d bytes)", e, len(e.Message))
	}
}

func TestNewValidatesBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		want string // BaseURL(), or "" for an error
	}{
		{"", client.DefaultBaseURL},
		{"http://example.com:9000/", "http://example.com:9000"},
		{"https://example.com/switchyard/", "https://example.com/switchyard"},
		{"example.com", ""},
		{"ftp://example.com", ""},
		{"http://", ""},
		{"http://user:pw@example.com", ""},
		{"http://example.com/?x=1", ""},
		{"http://exa mple.com", ""},
	} {
		c, err := client.New(client.Config{BaseURL: tc.url})
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("New(%q) accepted it", tc.url)
		case tc.want != "" && err != nil:
			t.Errorf("New(%q): %v", tc.url, err)
		case tc.want != "" && c.BaseURL() != tc.want:
			t.Errorf("New(%q).BaseURL() = %q, want %q", tc.url, c.BaseURL(), tc.want)
		}
	}
}

func TestJobJSON(t *testing.T) {
	t.Parallel()
	in := `{"id":"7","queue":"q","kind":"k","args":{"a":1},"priority":2,"state":"running","attempt":1,` +
		`"max_attempts":25,"run_at":"2026-01-02T03:04:05Z","created_at":"2026-01-02T03:04:05Z",` +
		`"started_at":"2026-01-02T03:04:06Z","finished_at":null,"timeout":2.5,"unique_key":null,` +
		`"tags":[],"result":null,"progress":{"done":1},"errors":[],"added_later":true}`
	var j client.Job
	if err := json.Unmarshal([]byte(in), &j); err != nil {
		t.Fatal(err)
	}
	if j.Timeout != 2500*time.Millisecond || j.StartedAt == nil || j.FinishedAt != nil || j.UniqueKey != "" ||
		string(j.Progress) != `{"done":1}` || string(j.Raw) != in {
		t.Fatalf("decoded %+v", j)
	}
	out, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m["timeout"] != 2.5 || m["unique_key"] != nil || m["id"] != "7" {
		t.Fatalf("encoded %s", out)
	}
	if _, ok := m["Raw"]; ok {
		t.Fatalf("Raw was encoded: %s", out)
	}

	req, err := json.Marshal(client.JobRequest{Kind: "k", Delay: 1500 * time.Millisecond, Timeout: time.Minute, Args: json.RawMessage(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if string(req) != `{"kind":"k","delay":1.5,"timeout":60}` {
		t.Fatalf("request %s", req)
	}
}
