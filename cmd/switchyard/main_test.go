package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// childEnv makes the test binary run the switchyard command given by its
// arguments instead of the tests: the multi-node test starts real serve
// processes that way, without building the binary first.
const childEnv = "SWITCHYARD_TEST_COMMAND_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	testdb.Main(m)
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestBenchReportsEveryMode runs a small bench of each mode on both backends
// and checks the JSON keys DESIGN.md promises. The figures themselves are
// not asserted: a benchmark is not a test.
func TestBenchReportsEveryMode(t *testing.T) {
	t.Parallel()
	dbs := map[string]string{
		"sqlite":   "sqlite:" + testdb.SQLitePath(t),
		"postgres": testdb.PostgresURL(t),
	}
	for backend, db := range dbs {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runCLI(t, "bench", "--db", db, "--mode", "all", "--jobs", "300", "--batch", "100",
				"--workers", "20", "--rate", "200", "--duration", "300ms", "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 {
				t.Fatalf("want 3 JSON lines, got %q", out)
			}
			want := map[string][]string{
				"throughput": {"insert_jobs_per_sec", "work_jobs_per_sec", "jobs"},
				"latency":    {"latency_p50_ms", "latency_p99_ms", "jobs"},
				"idle":       {"idle_cpu_percent"},
			}
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if m["backend"] != backend {
					t.Fatalf("backend = %v in %s", m["backend"], l)
				}
				mode, _ := m["mode"].(string)
				keys, ok := want[mode]
				if !ok {
					t.Fatalf("unexpected mode in %s", l)
				}
				delete(want, mode)
				for _, k := range keys {
					if _, ok := m[k]; !ok {
						t.Fatalf("%s: missing key %q in %s", mode, k, l)
					}
				}
				if mode == "throughput" && m["jobs"].(float64) != 300 {
					t.Fatalf("throughput jobs = %v", m["jobs"])
				}
			}
		})
	}
}

func TestMigrateAndVersion(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite:" + testdb.SQLitePath(t), testdb.PostgresURL(t)} {
		for range 2 { // idempotent
			out, errOut, code := runCLI(t, "migrate", "--db", db)
			if code != 0 || !strings.Contains(out, "migrations applied") {
				t.Fatalf("migrate %s: exit %d, %s %s", db, code, out, errOut)
			}
		}
	}
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "switchyard ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestBadCommandLines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"bench", "--mode", "sideways", "--db", "sqlite:" + testdb.SQLitePath(t)}, 1, `unknown --mode "sideways"`},
		{[]string{"bench", "--jobs", "0"}, 1, "must be positive"},
		{[]string{"bench", "--db", "mysql://x"}, 1, "want sqlite:PATH or a postgres:// URL"},
		{[]string{"migrate", "--db", "sqlite:"}, 1, "needs a file path"},
		{[]string{"bench", "--no-such-flag"}, 1, "flag provided but not defined"},
		{[]string{"version", "extra"}, 1, "unexpected arguments"},
	}
	for _, tc := range cases {
		_, errOut, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d containing %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	out, _, code := runCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "bench") || !strings.Contains(out, "migrate") {
		t.Fatalf("help: %d %q", code, out)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	db := "sqlite:" + testdb.SQLitePath(t)
	t.Setenv("SWITCHYARD_DB", db)
	if _, errOut, code := runCLI(t, "migrate"); code != 0 {
		t.Fatalf("migrate with SWITCHYARD_DB: %s", errOut)
	}
	if _, err := os.Stat(strings.TrimPrefix(db, "sqlite:")); err != nil {
		t.Fatalf("SWITCHYARD_DB was not used: %v", err)
	}
	t.Setenv("SWITCHYARD_JOBS", "many")
	if _, errOut, code := runCLI(t, "bench"); code != 1 || !strings.Contains(errOut, "SWITCHYARD_JOBS") {
		t.Fatalf("bad env value: exit %d %q", code, errOut)
	}
}
