package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// fastRetry retries at once, so retry tests need no waiting.
type fastRetry struct{}

func (fastRetry) NextRetry(int) time.Duration { return time.Millisecond }

var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// newClient opens a client on db with the built-in kinds registered. It is
// not started, so tests can enqueue before anything runs.
func newClient(t *testing.T, db string, cfg Config) *switchyard.Client {
	t.Helper()
	ctx := context.Background()
	c, err := switchyard.Open(ctx, switchyard.Config{
		Database:      db,
		Retry:         fastRetry{},
		LeaseDuration: 2 * time.Second,
		PollInterval:  200 * time.Millisecond,
		LeaderTTL:     900 * time.Millisecond,
		Logger:        quietLogger,
	})
	if err != nil {
		t.Fatalf("open %s: %v", db, err)
	}
	t.Cleanup(func() {
		stop(t, c)
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := Register(c, cfg); err != nil {
		t.Fatalf("register: %v", err)
	}
	return c
}

// startClient is newClient, started.
func startClient(t *testing.T, db string, cfg Config) *switchyard.Client {
	t.Helper()
	c := newClient(t, db, cfg)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	return c
}

// stop shuts c down, waiting for running jobs and recording their outcomes,
// so the store can be checked. A handler that ignored its context would
// make it fail.
func stop(t *testing.T, c *switchyard.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// wait receives from ch; see testdb.Receive.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testdb.Receive(t, ch, what)
}

// waitState polls the job until it reaches one of states, for outcomes no
// test server can signal. The bound only catches hangs.
func waitState(t *testing.T, c *switchyard.Client, id string, states ...string) *switchyard.JobRow {
	t.Helper()
	var j *switchyard.JobRow
	testdb.Poll(t, 30*time.Second, fmt.Sprintf("job %s in %v", id, states), func() bool {
		var err error
		if j, err = c.GetJob(context.Background(), id); err != nil {
			t.Fatalf("get job %s: %v", id, err)
		}
		return slices.Contains(states, j.State)
	})
	return j
}

func enqueueRaw(t *testing.T, c *switchyard.Client, kind, args string, opts *switchyard.EnqueueOpts) *switchyard.JobRow {
	t.Helper()
	res, err := c.Enqueue(context.Background(), switchyard.RawArgs{KindName: kind, JSON: []byte(args)}, opts)
	if err != nil {
		t.Fatalf("enqueue %s %s: %v", kind, args, err)
	}
	return res.Job
}

func getJob(t *testing.T, c *switchyard.Client, id string) *switchyard.JobRow {
	t.Helper()
	j, err := c.GetJob(context.Background(), id)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	return j
}

// jsonEqual compares JSON by value: PostgreSQL's jsonb normalises spacing
// and key order.
func jsonEqual(got []byte, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// request is what a test server saw.
type request struct {
	path   string
	method string
	header http.Header
	body   []byte
}

// server serves respond and reports every request it gets on the returned
// channel (buffered, so a handler never blocks on a test that stopped
// reading). n counts requests from 1.
func server(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) (string, <-chan request) {
	t.Helper()
	seen := make(chan request, 64)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		respond(w, r, int(n.Add(1)))
		seen <- request{path: r.URL.Path, method: r.Method, header: r.Header.Clone(), body: body}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, seen
}

// casePath is the path of table case i on a shared test server.
func casePath(i int) string { return "/case/" + strconv.Itoa(i) }

// caseIndex is the table case a shared test server's request is for.
func caseIndex(r *http.Request) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/case/"))
	return i
}

func TestHTTPSuccessRecordsResult(t *testing.T) {
	t.Parallel()
	const limit = 64
	long := `{"a":"` + strings.Repeat("x", limit) + `"}`
	cases := []struct {
		name        string
		contentType string
		body        string
		wantResult  string
	}{
		{"json", "application/json", `{"ok": true, "n": 12345678901234567890, "s": "<&>"}`,
			`{"status":200,"headers":{"Content-Type":"application/json"},"body":{"ok":true,"n":12345678901234567890,"s":"<&>"}}`},
		{"text", "text/plain; charset=utf-8", "hello\n",
			`{"status":200,"headers":{"Content-Type":"text/plain; charset=utf-8"},"body":"hello\n"}`},
		{"json too long is truncated text", "application/json", long,
			`{"status":200,"headers":{"Content-Type":"application/json"},"body":` + mustJSON(t, long[:limit]) + `}`},
		{"json with NUL is kept as text", "application/json", `{"a":"x\u0000y"}`,
			`{"status":200,"headers":{"Content-Type":"application/json"},"body":"{\"a\":\"x\\u0000y\"}"}`},
		{"NUL and invalid UTF-8 replaced", "application/octet-stream", "a\x00b\xffc",
			`{"status":200,"headers":{"Content-Type":"application/octet-stream"},"body":"a\ufffdb\ufffdc"}`},
		{"empty", "", "",
			`{"status":200,"headers":{},"body":""}`},
	}
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		url, seen := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
			tc := cases[caseIndex(r)]
			if tc.contentType != "" {
				w.Header().Set("Content-Type", tc.contentType)
			}
			_, _ = io.WriteString(w, tc.body)
		})
		c := startClient(t, db, Config{MaxResponseBytes: limit, AllowPrivateTargets: true})
		ids := make([]string, len(cases))
		for i := range cases {
			ids[i] = enqueueRaw(t, c, KindHTTP, mustJSON(t, map[string]string{"url": url + casePath(i)}), nil).ID
		}
		for range cases {
			wait(t, seen, "request")
		}
		stop(t, c)
		for i, tc := range cases {
			got := getJob(t, c, ids[i])
			if got.State != switchyard.StateSucceeded || got.Attempt != 1 {
				t.Errorf("%s: job = state %s attempt %d errors %+v", tc.name, got.State, got.Attempt, got.Errors)
			} else if !jsonEqual(got.Result, tc.wantResult) {
				t.Errorf("%s: result = %s, want %s", tc.name, got.Result, tc.wantResult)
			}
		}
	})
}

func TestHTTPRequestBodyAndHeaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		args       string // %URL% is replaced by the case's URL
		wantMethod string
		wantBody   string // "" for none; "ARGS" for the args object
		wantHeader map[string]string
	}{
		{"POST sends args as body", `{"url": "%URL%", "headers": {"X-A": "b"}}`,
			"POST", "ARGS", map[string]string{"X-A": "b", "Content-Type": "application/json"}},
		{"PUT sends args as body", `{"url": "%URL%", "method": "PUT"}`,
			"PUT", "ARGS", map[string]string{"Content-Type": "application/json"}},
		{"explicit body", `{"url": "%URL%", "method": "PATCH", "body": {"x": [1, 2]}}`,
			"PATCH", `{"x":[1,2]}`, map[string]string{"Content-Type": "application/json"}},
		{"explicit string body", `{"url": "%URL%", "body": "hi"}`,
			"POST", `"hi"`, nil},
		{"null body sends none", `{"url": "%URL%", "body": null}`,
			"POST", "", map[string]string{"Content-Type": ""}},
		{"GET sends no body", `{"url": "%URL%", "method": "GET"}`,
			"GET", "", map[string]string{"Content-Type": ""}},
		{"GET with explicit body", `{"url": "%URL%", "method": "GET", "body": [1]}`,
			"GET", "[1]", map[string]string{"Content-Type": "application/json"}},
		{"DELETE sends no body", `{"url": "%URL%", "method": "DELETE"}`,
			"DELETE", "", nil},
		{"HEAD", `{"url": "%URL%", "method": "HEAD"}`,
			"HEAD", "", nil},
		{"job's own headers win", `{"url": "%URL%", "headers": {"user-agent": "mine", "Content-Type": "application/vnd.x+json", "Idempotency-Key": "k1"}}`,
			"POST", "ARGS", map[string]string{"User-Agent": "mine", "Content-Type": "application/vnd.x+json", "Idempotency-Key": "k1"}},
	}
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		url, seen := server(t, func(w http.ResponseWriter, r *http.Request, n int) {})
		c := startClient(t, db, Config{AllowPrivateTargets: true})
		jobs := make([]*switchyard.JobRow, len(cases))
		for i, tc := range cases {
			jobs[i] = enqueueRaw(t, c, KindHTTP, strings.ReplaceAll(tc.args, "%URL%", url+casePath(i)), nil)
		}
		reqs := make([]request, len(cases))
		for range cases {
			req := wait(t, seen, "request")
			i, _ := strconv.Atoi(strings.TrimPrefix(req.path, "/case/"))
			reqs[i] = req
		}
		for i, tc := range cases {
			req, job := reqs[i], jobs[i]
			if req.method != tc.wantMethod {
				t.Errorf("%s: method = %s, want %s", tc.name, req.method, tc.wantMethod)
			}
			switch tc.wantBody {
			case "":
				if len(req.body) != 0 {
					t.Errorf("%s: body = %q, want none", tc.name, req.body)
				}
			case "ARGS":
				if !jsonEqual(req.body, string(job.Args)) {
					t.Errorf("%s: body = %s, want the args %s", tc.name, req.body, job.Args)
				}
			default:
				if !jsonEqual(req.body, tc.wantBody) {
					t.Errorf("%s: body = %s, want %s", tc.name, req.body, tc.wantBody)
				}
			}
			want := map[string]string{
				"Switchyard-Job-Id":  job.ID,
				"Switchyard-Attempt": "1",
				"Idempotency-Key":    job.ID,
				"User-Agent":         "switchyard",
			}
			for k, v := range tc.wantHeader {
				want[k] = v
			}
			for k, v := range want {
				if got := req.header.Get(k); got != v {
					t.Errorf("%s: header %s = %q, want %q", tc.name, k, got, v)
				}
			}
		}
		stop(t, c)
		for i, tc := range cases {
			if got := getJob(t, c, jobs[i].ID); got.State != switchyard.StateSucceeded {
				t.Errorf("%s: job = state %s errors %+v", tc.name, got.State, got.Errors)
			}
		}
	})
}

func TestHTTPServerErrorRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		url, seen := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, "oops "+strings.Repeat("x", 300))
			}
		})
		c := startClient(t, db, Config{UserAgent: "acme/1", AllowPrivateTargets: true})
		job := enqueueRaw(t, c, KindHTTP, `{"url": "`+url+`/a?b=c"}`, nil)
		first, second := wait(t, seen, "first attempt"), wait(t, seen, "second attempt")
		if first.header.Get("User-Agent") != "acme/1" || second.header.Get("User-Agent") != "acme/1" {
			t.Fatalf("user agents %q, %q", first.header.Get("User-Agent"), second.header.Get("User-Agent"))
		}
		if first.header.Get("Switchyard-Attempt") != "1" || second.header.Get("Switchyard-Attempt") != "2" {
			t.Fatalf("attempt headers %q, %q", first.header.Get("Switchyard-Attempt"), second.header.Get("Switchyard-Attempt"))
		}
		if first.header.Get("Idempotency-Key") != job.ID || second.header.Get("Idempotency-Key") != job.ID {
			t.Fatalf("idempotency keys differ between attempts")
		}
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateSucceeded || got.Attempt != 2 || len(got.Errors) != 1 {
			t.Fatalf("job = state %s attempt %d errors %+v", got.State, got.Attempt, got.Errors)
		}
		want := "POST " + url + "/a?b=c: 500 Internal Server Error: oops " + strings.Repeat("x", 195)
		if msg := got.Errors[0].Message; msg != want {
			t.Fatalf("error = %q, want %q", msg, want)
		}
	})
}

func TestHTTPRetryAfter(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		url, seen := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		c := startClient(t, db, Config{AllowPrivateTargets: true})
		before := time.Now()
		job := enqueueRaw(t, c, KindHTTP, `{"url": "`+url+`"}`, nil)
		wait(t, seen, "request")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateRetryable || got.Attempt != 1 {
			t.Fatalf("job = state %s attempt %d errors %+v", got.State, got.Attempt, got.Errors)
		}
		if earliest := before.Add(59 * time.Minute); got.RunAt.Before(earliest) {
			t.Fatalf("run_at = %s, want at least %s", got.RunAt, earliest)
		}
		if len(got.Errors) != 1 || got.Errors[0].Message != "POST "+url+": 429 Too Many Requests" {
			t.Fatalf("errors = %+v", got.Errors)
		}
	})
}

// TestHTTPEndsDead covers the responses that no retry could fix.
func TestHTTPEndsDead(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		var targetCalled atomic.Bool
		mux := http.NewServeMux()
		seen := make(chan string, 4)
		mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
			seen <- r.URL.Path
			http.Error(w, "no such thing", http.StatusNotFound)
		})
		mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
			seen <- r.URL.Path
			http.Redirect(w, r, "/target", http.StatusFound)
		})
		mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { targetCalled.Store(true) })
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)

		c := startClient(t, db, Config{AllowPrivateTargets: true})
		missing := enqueueRaw(t, c, KindHTTP, `{"url": "`+srv.URL+`/missing"}`, nil)
		moved := enqueueRaw(t, c, KindHTTP, `{"url": "`+srv.URL+`/moved", "method": "GET"}`, nil)
		wait(t, seen, "first request")
		wait(t, seen, "second request")
		stop(t, c)
		for _, tc := range []struct {
			id, want string
		}{
			{missing.ID, "POST " + srv.URL + "/missing: 404 Not Found: no such thing"},
			{moved.ID, "GET " + srv.URL + "/moved: 302 Found: redirects are not followed; Location: /target"},
		} {
			got := getJob(t, c, tc.id)
			if got.State != switchyard.StateDead || got.Attempt != 1 || len(got.Errors) != 1 || got.Errors[0].Message != tc.want {
				t.Errorf("job = state %s attempt %d errors %+v; want dead after one attempt with %q", got.State, got.Attempt, got.Errors, tc.want)
			}
		}
		if targetCalled.Load() {
			t.Fatal("the redirect was followed")
		}
	})
}

func TestHTTPTimeoutAndNetworkError(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		gone := make(chan struct{})
		blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client hang up.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done() // until the client gives up
			close(gone)
		}))
		t.Cleanup(blocking.Close)
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close() // nothing listens there any more

		c := startClient(t, db, Config{AllowPrivateTargets: true})
		opts := &switchyard.EnqueueOpts{MaxAttempts: 1}
		timeout := enqueueRaw(t, c, KindHTTP, `{"url": "`+blocking.URL+`", "timeout": "50ms"}`, opts)
		refused := enqueueRaw(t, c, KindHTTP, `{"url": "`+closed.URL+`", "method": "GET"}`, opts)
		wait(t, gone, "the request to be abandoned")
		got := waitState(t, c, timeout.ID, switchyard.StateDead)
		if len(got.Errors) != 1 || got.Errors[0].Message != "POST "+blocking.URL+": timed out after 50ms" {
			t.Errorf("timeout errors = %+v", got.Errors)
		}
		got = waitState(t, c, refused.ID, switchyard.StateDead)
		if len(got.Errors) != 1 || !strings.HasPrefix(got.Errors[0].Message, "GET "+closed.URL+": dial tcp") {
			t.Errorf("network errors = %+v", got.Errors)
		}
	})
}

func TestHTTPErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		url, seen := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.WriteHeader(http.StatusBadRequest)
		})
		c := startClient(t, db, Config{AllowPrivateTargets: true})
		withUser := strings.Replace(url, "http://", "http://user:hunter2@", 1)
		job := enqueueRaw(t, c, KindHTTP, `{"url": "`+withUser+`", "headers": {"Authorization": "Bearer hunter2"}}`, nil)
		req := wait(t, seen, "request")
		if req.header.Get("Authorization") != "Bearer hunter2" {
			t.Fatalf("authorization header not sent")
		}
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateDead || len(got.Errors) != 1 {
			t.Fatalf("job = state %s errors %+v", got.State, got.Errors)
		}
		if msg := got.Errors[0].Message; strings.Contains(msg, "hunter2") || !strings.Contains(msg, "400 Bad Request") {
			t.Fatalf("error = %q", msg)
		}
	})
}

// TestHTTPRefusesPrivateTargets: by default a job cannot reach this
// machine or the cloud metadata service, however the URL spells the
// address, and ends dead at once instead of retrying.
func TestHTTPRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		var conns atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		port := srv.Listener.Addr().(*net.TCPAddr).Port

		c := startClient(t, db, Config{})
		urls := []string{
			srv.URL,
			fmt.Sprintf("http://localhost:%d/", port),
			fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
			"http://169.254.169.254/latest/meta-data/",
		}
		ids := make([]string, len(urls))
		for i, u := range urls {
			ids[i] = enqueueRaw(t, c, KindHTTP, mustJSON(t, map[string]string{"url": u, "method": "GET"}), nil).ID
		}
		for i, id := range ids {
			got := waitState(t, c, id, switchyard.StateDead, switchyard.StateSucceeded)
			if got.State != switchyard.StateDead || got.Attempt != 1 || len(got.Errors) != 1 ||
				!strings.Contains(got.Errors[0].Message, "forbidden address") {
				t.Errorf("%s: job = state %s attempt %d errors %+v; want dead at once, naming the forbidden address", urls[i], got.State, got.Attempt, got.Errors)
			}
		}
		if n := conns.Load(); n != 0 {
			t.Fatalf("the loopback server accepted %d connections", n)
		}
	})
}

func TestInvalidArgsWriteNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind, args, want string
	}{
		{KindHTTP, `{}`, "url is required"},
		{KindHTTP, `{"url": "ftp://example.com/x"}`, `scheme "ftp"`},
		{KindHTTP, `{"url": "/relative"}`, "must be an http or https URL"},
		{KindHTTP, `{"url": "http:///nohost"}`, "with a host"},
		{KindHTTP, `{"url": "http://exa mple.com"}`, "not a valid URL"},
		{KindHTTP, `{"url": "https://example.com", "method": "CONNECT"}`, `method "CONNECT"`},
		{KindHTTP, `{"url": "https://example.com", "method": "post"}`, `method "post"`},
		{KindHTTP, `{"url": "https://example.com", "timeout": "soon"}`, `timeout "soon"`},
		{KindHTTP, `{"url": "https://example.com", "timeout": "0s"}`, "between 1ms and 15m"},
		{KindHTTP, `{"url": "https://example.com", "timeout": "16m"}`, "between 1ms and 15m"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"Host": "evil"}}`, "Host may not be set"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"content-length": "1"}}`, "Content-Length may not be set"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"Switchyard-Attempt": "9"}}`, "Switchyard-Attempt may not be set"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"Bad Name": "x"}}`, "not a valid header name"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"X-A": "line\r\nX-Injected: 1"}}`, "X-A contains control characters"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"x-a": "1", "X-A": "2"}}`, "X-A is given twice"},
		{KindHTTP, `{"url": "https://example.com", "headers": {"X-A": 1}}`, "cannot unmarshal"},
		{KindHTTP, `{"url": "https://example.com", "extra": 1}`, `unknown field "extra"`},
		{KindSleep, `{}`, "duration is required"},
		{KindSleep, `{"duration": "5"}`, `duration "5"`},
		{KindSleep, `{"duration": "-1s"}`, "between 0 and 1h"},
		{KindSleep, `{"duration": "61m"}`, "between 0 and 1h"},
		{KindSleep, `{"duration": "1s", "fial": "x"}`, `unknown field "fial"`},
		{KindNoop, `[]`, "must be a JSON object"},
	}
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := newClient(t, db, Config{})
		ctx := context.Background()
		for _, tc := range cases {
			_, err := c.Enqueue(ctx, switchyard.RawArgs{KindName: tc.kind, JSON: []byte(tc.args)}, nil)
			if !errors.Is(err, switchyard.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %s: err = %v, want ErrInvalidArgument mentioning %q", tc.kind, tc.args, err, tc.want)
			}
			if err != nil && strings.Contains(tc.args, "evil") && strings.Contains(err.Error(), "evil") {
				t.Errorf("%s: a header value leaked into the error: %v", tc.args, err)
			}
		}
		// Typed args are checked the same way.
		if _, err := c.Enqueue(ctx, HTTPArgs{URL: "https://example.com", Headers: map[string]string{"X-A": "a\nb"}}, nil); !errors.Is(err, switchyard.ErrInvalidArgument) || strings.Contains(err.Error(), "a\nb") {
			t.Errorf("typed args: err = %v", err)
		}
		jobs, _, err := c.ListJobs(ctx, switchyard.ListParams{})
		if err != nil || len(jobs) != 0 {
			t.Fatalf("after rejected enqueues: %d jobs, err %v", len(jobs), err)
		}
	})
}

func TestRegisterConfig(t *testing.T) {
	t.Parallel()
	c, err := switchyard.Open(context.Background(), switchyard.Config{Database: "sqlite:" + testdb.SQLitePath(t), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for _, cfg := range []Config{{MaxResponseBytes: -1}, {UserAgent: "a\r\nb"}} {
		if err := Register(c, cfg); err == nil {
			t.Errorf("Register(%+v) succeeded", cfg)
		}
	}
	if err := Register(nil, Config{}); err == nil {
		t.Error("Register(nil) succeeded")
	}
}

func TestSleepAndNoop(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := startClient(t, db, Config{})
		noop := enqueueRaw(t, c, KindNoop, `{"anything": [1, 2]}`, nil)
		typed, err := c.Enqueue(context.Background(), NoopArgs(nil), nil)
		if err != nil {
			t.Fatalf("enqueue nil NoopArgs: %v", err)
		}
		slept := enqueueRaw(t, c, KindSleep, `{"duration": "2ms"}`, nil)
		failing := enqueueRaw(t, c, KindSleep, `{"duration": "0s", "fail": "demo failure"}`, &switchyard.EnqueueOpts{MaxAttempts: 3})

		for _, id := range []string{noop.ID, typed.Job.ID} {
			if got := waitState(t, c, id, switchyard.StateSucceeded, switchyard.StateDead); got.State != switchyard.StateSucceeded || got.Result != nil {
				t.Errorf("noop job = state %s result %s", got.State, got.Result)
			}
		}
		got := waitState(t, c, slept.ID, switchyard.StateSucceeded, switchyard.StateDead)
		if got.State != switchyard.StateSucceeded || !jsonEqual(got.Result, `{"slept_ms": 2}`) {
			t.Errorf("sleep job = state %s result %s errors %+v", got.State, got.Result, got.Errors)
		}
		got = waitState(t, c, failing.ID, switchyard.StateSucceeded, switchyard.StateDead)
		if got.State != switchyard.StateDead || got.Attempt != 3 || len(got.Errors) != 3 || got.Errors[2].Message != "demo failure" {
			t.Errorf("failing sleep job = state %s attempt %d errors %+v", got.State, got.Attempt, got.Errors)
		}
	})
}

func TestSleepHonoursCancel(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := startClient(t, db, Config{})
		job := enqueueRaw(t, c, KindSleep, `{"duration": "1h"}`, nil)
		waitState(t, c, job.ID, switchyard.StateRunning)
		got, err := c.CancelJob(context.Background(), job.ID)
		if err != nil || got.State != switchyard.StateCancelled {
			t.Fatalf("cancel: %v, job %+v", err, got)
		}
		// Stop waits for running jobs; it fails at its deadline if the sleep
		// went on.
		stop(t, c)
		if got := getJob(t, c, job.ID); got.State != switchyard.StateCancelled {
			t.Fatalf("job = state %s", got.State)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"3600", time.Hour, true},
		{"86401", 24 * time.Hour, true},
		{"99999999999999999999999", 24 * time.Hour, true},
		{"-1", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), 24 * time.Hour, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, false},
	}
	for _, tc := range cases {
		d, ok := parseRetryAfter(tc.in, now)
		if d != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}
