package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"

	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestBenchIngest runs a short ingest bench on SQLite and checks the JSON
// keys DESIGN.md promises and that the figures are sane. Timings are not
// asserted: a benchmark is not a test.
func TestBenchIngest(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + testdb.SQLitePath(t)
	// A request count, not a duration, so that a slow machine cannot leave
	// the measured window empty.
	out, errOut, code := runCLI(t, "bench", "--mode", "ingest", "--db", db, "--duration", "300ms",
		"--connections", "4", "--jobs", "200", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 JSON line, got %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	for _, k := range []string{"backend", "mode", "jobs", "requests_per_sec", "latency_p50_ms", "latency_p99_ms", "connections", "duration_s"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("missing key %q in %s", k, lines[0])
		}
	}
	if m["backend"] != "sqlite" || m["mode"] != "ingest" || m["connections"] != 4.0 {
		t.Fatalf("backend, mode, connections: %s", lines[0])
	}
	num := func(k string) float64 { f, _ := m[k].(float64); return f }
	if num("requests_per_sec") <= 0 || num("jobs") <= 0 || num("duration_s") <= 0 {
		t.Fatalf("want positive requests_per_sec, jobs and duration_s: %s", lines[0])
	}
	if p50, p99 := num("latency_p50_ms"), num("latency_p99_ms"); p50 <= 0 || p99 < p50 {
		t.Fatalf("want 0 < p50 <= p99: %s", lines[0])
	}
}

// TestBenchIngestRequests checks that --jobs bounds the measured requests
// and that the human output is one line.
func TestBenchIngestRequests(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + testdb.SQLitePath(t)
	out, errOut, code := runCLI(t, "bench", "--mode", "ingest", "--db", db, "--duration", "300ms",
		"--connections", "3", "--jobs", "50")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "sqlite ingest: 50 POST /v1/jobs over 3 connections") || strings.Count(out, "\n") != 1 {
		t.Fatalf("output %q", out)
	}
}

// TestBenchIngestEventsAndWebhooks sends CloudEvents and signed webhooks
// of several KB, with rules matching them: every answer must be 201, so
// each was verified and recorded.
func TestBenchIngestEventsAndWebhooks(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"events", "webhooks"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			db := "sqlite:" + testdb.SQLitePath(t)
			out, errOut, code := runCLI(t, "bench", "--mode", "ingest", "--ingest", kind, "--rules", "2", "--db", db,
				"--duration", "300ms", "--connections", "3", "--jobs", "40", "--payload", "3000")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.HasPrefix(out, "sqlite ingest: 40 POST ") || !strings.Contains(out, "(2 rules) (data +3000 bytes)") {
				t.Fatalf("output %q", out)
			}
		})
	}
	_, errOut, code := runCLI(t, "bench", "--mode", "ingest", "--ingest", "letters", "--duration", "100ms")
	if code == 0 || !strings.Contains(errOut, "--ingest") {
		t.Errorf("an unknown --ingest: exit %d, %q", code, errOut)
	}
}

// TestBenchIngestRemote targets a server the bench did not start, and
// checks that a failing answer fails the bench with its body.
func TestBenchIngestRemote(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	out, errOut, code := runCLI(t, "bench", "--mode", "ingest", "--server", srv.URL, "--api-key", srv.AdminKey,
		"--duration", "200ms", "--connections", "2", "--jobs", "100", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if m["backend"] != "remote" || m["server"] != srv.URL || m["jobs"].(float64) <= 0 {
		t.Fatalf("output %s", out)
	}

	_, errOut, code = runCLI(t, "bench", "--mode", "ingest", "--server", srv.URL, "--api-key", "sy_wrong",
		"--duration", "200ms", "--connections", "2", "--jobs", "20")
	if code != 1 || !strings.Contains(errOut, "request(s) failed") || !strings.Contains(errOut, "401") ||
		!strings.Contains(errOut, `"code":"unauthenticated"`) {
		t.Fatalf("wrong key: exit %d, stderr %q", code, errOut)
	}
}

func TestBenchIngestBadFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--server", "http://127.0.0.1:1"}, "--server needs --api-key"},
		{[]string{"--server", "http://127.0.0.1:1", "--api-key", "k", "--mode", "latency"}, "--mode ingest only"},
		{[]string{"--server", "http://127.0.0.1:1", "--api-key", "k", "--db", "sqlite:x.db"}, "not both"},
		{[]string{"--connections", "0"}, "must be positive"},
		{[]string{"--payload", "-1"}, "--payload must be between 0 and"},
		{[]string{"--payload", "1000000"}, "--payload must be between 0 and"},
	}
	for _, tc := range cases {
		args := append([]string{"bench", "--mode", "ingest"}, tc.args...)
		_, errOut, code := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 containing %q", args, code, errOut, tc.want)
		}
	}
}

// TestBenchIngestCleansUp checks that the in-process server's setup, a
// source and rules in the benchmark's tenant, is gone once it stops, with
// the jobs its rules made.
func TestBenchIngestCleansUp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := "sqlite:" + testdb.SQLitePath(t)
	o := benchOptions{db: db, durability: "full", ingest: ingestWebhooks, rules: 2, duration: time.Second, connections: 1}
	target, err := startIngestServer(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	shape, err := newIngestShape(o.ingest, target, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := ingestLoad{url: target.url + shape.path, shape: shape, key: target.key, conns: 1, requests: 5}
	if _, _, err := l.run(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := switchyard.Open(ctx, switchyard.Config{Database: db, TenantID: target.tenant})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	count := func() (rules, sources, jobs int) {
		t.Helper()
		rs, _, err := c.Rules(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		ss, _, err := c.Sources(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		js, _, err := c.ListJobs(ctx, switchyard.ListParams{Queue: ingestQueue, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs), len(ss), len(js)
	}
	if r, s, j := count(); r != 2 || s != 1 || j < 10 {
		t.Fatalf("while running: %d rules, %d sources, %d jobs; want 2, 1 and at least 10", r, s, j)
	}
	if err := target.stop(); err != nil {
		t.Fatal(err)
	}
	if r, s, j := count(); r != 0 || s != 0 || j != 0 {
		t.Fatalf("after stop: %d rules, %d sources, %d jobs; want none", r, s, j)
	}
}

// The --payload padding is valid JSON of about the size asked for.
func TestIngestPadding(t *testing.T) {
	if ingestPadding(0) != "" {
		t.Error("padding for 0 bytes")
	}
	for _, n := range []int{1, 500, 7000, maxIngestPayload} {
		pad := ingestPadding(n)
		if len(pad) < n || len(pad) > max(n, 150)+100 { // the object's own fields take ~150
			t.Errorf("ingestPadding(%d) is %d bytes", n, len(pad))
		}
		if doc := `{"i":1` + pad + `}`; !json.Valid([]byte(doc)) {
			t.Errorf("ingestPadding(%d) makes invalid JSON: %.200s", n, doc)
		}
	}
}
