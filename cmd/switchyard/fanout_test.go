package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestBenchFanout runs a small fanout bench (its clients in a child
// process, as the real one runs them) and checks the JSON keys and the
// counts: every message reached every subscriber (at a rate low enough
// that no subscriber falls 64 messages behind, however busy the machine).
// Timings and memory are not asserted: a benchmark is not a test.
func TestBenchFanout(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + testdb.SQLitePath(t)
	out, errOut, code := runCLI(t, "bench", "--mode", "fanout", "--db", db, "--connections", "50", "--subscribers", "20",
		"--stalled", "1", "--jobs", "200", "--rate", "200", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := fanoutJSON(t, out)
	if m["backend"] != "sqlite" || m["mode"] != "fanout" || m["connections"] != 50.0 || m["subscribers"] != 20.0 ||
		m["stalled"] != 1.0 || m["messages"] != 200.0 || m["expected_deliveries"] != 4000.0 || m["deliveries"] != 4000.0 {
		t.Fatalf("counts: %s", out)
	}
	if m["rss_bytes"].(float64) == 0 {
		t.Errorf("no rss_bytes: %s", out)
	}
}

// TestBenchFanoutRemote loads a server the bench did not start, publishing
// over HTTP.
func TestBenchFanoutRemote(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	key, _, err := srv.Client.CreateAPIKey(t.Context(), switchyard.NewAPIKey{Name: "fanout", Role: switchyard.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "bench", "--mode", "fanout", "--server", srv.URL, "--api-key", key,
		"--connections", "10", "--subscribers", "5", "--stalled", "0", "--jobs", "50", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := fanoutJSON(t, out)
	if m["backend"] != "remote" || m["server"] != srv.URL || m["messages"] != 50.0 || m["deliveries"] != 250.0 {
		t.Fatalf("output %s", out)
	}
}

func fanoutJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 JSON line, got %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	for _, k := range []string{"backend", "mode", "connections", "subscribers", "stalled", "rate", "messages", "deliveries",
		"expected_deliveries", "evicted", "stalled_dropped", "rss_bytes", "bytes_per_connection", "latency_p50_ms", "latency_p99_ms", "duration_s"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("missing key %q in %s", k, lines[0])
		}
	}
	return m
}
