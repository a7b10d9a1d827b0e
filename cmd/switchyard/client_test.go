package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// cliServer runs client subcommands against one real server.
type cliServer struct {
	t   *testing.T
	srv *servertest.Server
}

func startCLIServer(t *testing.T, db string) *cliServer {
	t.Helper()
	return &cliServer{t: t, srv: servertest.Start(t, db)}
}

// run runs the command with --server and the admin key appended, so the
// flags also come after the positional arguments.
func (s *cliServer) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, append(args, "--server", s.srv.URL, "--api-key", s.srv.AdminKey)...)
}

// ok runs the command and fails the test unless it exits 0.
func (s *cliServer) ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.run(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// okJSON runs the command with --json and decodes its output, one object
// per line.
func (s *cliServer) okJSON(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	out := s.ok(t, append(args, "--json")...)
	var objs []map[string]any
	for l := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: line %q is not a JSON object: %v", args, l, err)
		}
		objs = append(objs, m)
	}
	return objs
}

// fails runs the command and checks it exits 1 with want in stderr.
func (s *cliServer) fails(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, errOut, code := s.run(t, args...)
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("%v: exit %d, stderr %q; want exit 1 with %q (stdout %q)", args, code, errOut, want, out)
	}
	return errOut
}

func one(t *testing.T, objs []map[string]any) map[string]any {
	t.Helper()
	if len(objs) != 1 {
		t.Fatalf("want one JSON object, got %d", len(objs))
	}
	return objs[0]
}

// table splits table output into rows of cells.
func table(out string) [][]string {
	var rows [][]string
	for l := range strings.Lines(out) {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestJobsCommands(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t, "sqlite:"+testdb.SQLitePath(t))

	t.Run("enqueue-get-cancel-retry-delete", func(t *testing.T) {
		t.Parallel()
		s.ok(t, "queues", "pause", "held")
		job := one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--queue", "held", "--args", `{"n":1}`, "--priority", "1",
			"--tag", "t1", "--tag", "t2", "--unique-key", "u1", "--max-attempts", "3", "--timeout", "30s"))
		id, _ := job["id"].(string)
		if id == "" || job["queue"] != "held" || job["kind"] != "noop" || job["priority"] != 1.0 ||
			job["state"] != "available" || job["max_attempts"] != 3.0 || job["timeout"] != 30.0 ||
			job["unique_key"] != "u1" || job["args"].(map[string]any)["n"] != 1.0 {
			t.Fatalf("enqueued %v", job)
		}
		if tags, _ := json.Marshal(job["tags"]); string(tags) != `["t1","t2"]` {
			t.Fatalf("tags %s", tags)
		}

		// Same unique key: the live job comes back, with a note on stderr.
		out, errOut, code := s.run(t, "jobs", "enqueue", "noop", "--queue", "held", "--unique-key", "u1")
		if code != 0 || !strings.Contains(errOut, "nothing was enqueued") || !regexp.MustCompile(`(?m)^id:\s+`+regexp.QuoteMeta(id)+`$`).MatchString(out) {
			t.Fatalf("enqueue again: exit %d\n%s\n%s", code, out, errOut)
		}

		out = s.ok(t, "jobs", "get", id)
		for _, want := range []string{"id:", "state:", "available", "kind:", "noop", `{"n":1}`, "t1, t2", "30s", "0 of 3", "errors:", "none"} {
			if !strings.Contains(out, want) {
				t.Fatalf("jobs get: no %q in\n%s", want, out)
			}
		}
		if got := one(t, s.okJSON(t, "jobs", "get", id)); got["id"] != id {
			t.Fatalf("jobs get --json: %v", got)
		}

		if out := s.ok(t, "jobs", "cancel", id); !regexp.MustCompile(`(?m)^state:\s+cancelled$`).MatchString(out) {
			t.Fatalf("cancel:\n%s", out)
		}
		if got := one(t, s.okJSON(t, "jobs", "retry", id)); got["state"] == "cancelled" || got["id"] != id {
			t.Fatalf("retry: %v", got)
		}
		if out := s.ok(t, "jobs", "delete", id); !strings.Contains(out, "deleted") {
			t.Fatalf("delete: %q", out)
		}
		errOut = s.fails(t, "(not_found, request ", "jobs", "get", id)
		if !strings.HasPrefix(errOut, "switchyard jobs: ") {
			t.Fatalf("error line %q", errOut)
		}
	})

	t.Run("enqueue-schedule", func(t *testing.T) {
		t.Parallel()
		s.ok(t, "queues", "pause", "later")
		argsFile := filepath.Join(t.TempDir(), "args.json")
		if err := os.WriteFile(argsFile, []byte(`{"from": "file"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		job := one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--queue", "later", "--args", "@"+argsFile, "--delay", "1h"))
		if job["state"] != "scheduled" || job["args"].(map[string]any)["from"] != "file" {
			t.Fatalf("delayed: %v", job)
		}
		job = one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--queue", "later", "--run-at", "2030-01-02T03:04:05Z"))
		if job["state"] != "scheduled" || !strings.HasPrefix(job["run_at"].(string), "2030-01-02T03:04:05") {
			t.Fatalf("run-at: %v", job)
		}
	})

	t.Run("list-paging", func(t *testing.T) {
		t.Parallel()
		s.ok(t, "queues", "pause", "paged")
		ids := map[string]bool{}
		for range 5 {
			job := one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--queue", "paged", "--tag", "paged"))
			ids[job["id"].(string)] = true
		}

		out, errOut, code := s.run(t, "jobs", "list", "--queue", "paged", "--limit", "2")
		rows := table(out)
		if code != 0 || len(rows) != 3 || strings.Join(rows[0], " ") != "ID QUEUE KIND STATE ATTEMPT RUN_AT" {
			t.Fatalf("list: exit %d\n%s\n%s", code, out, errOut)
		}
		for _, r := range rows[1:] {
			if !ids[r[0]] || r[1] != "paged" || r[2] != "noop" || r[3] != "available" || r[4] != "0/25" {
				t.Fatalf("row %q", r)
			}
		}
		cursor, ok := strings.CutPrefix(strings.TrimSpace(errOut), "next cursor: ")
		if !ok || cursor == "" {
			t.Fatalf("no next cursor on stderr: %q", errOut)
		}
		next := s.okJSON(t, "jobs", "list", "--queue", "paged", "--limit", "2", "--cursor", cursor)
		if len(next) != 2 || !ids[next[0]["id"].(string)] || next[0]["id"] == rows[1][0] || next[0]["id"] == rows[2][0] {
			t.Fatalf("second page %v after %v", next, rows)
		}

		out, errOut, code = s.run(t, "jobs", "list", "--tag", "paged", "--limit", "2", "--all", "--json")
		seen := map[string]bool{}
		for l := range strings.Lines(out) {
			var j struct{ ID string }
			if err := json.Unmarshal([]byte(l), &j); err != nil || !ids[j.ID] || seen[j.ID] {
				t.Fatalf("--all line %q: %v", l, err)
			}
			seen[j.ID] = true
		}
		if code != 0 || len(seen) != 5 || errOut != "" {
			t.Fatalf("--all: exit %d, %d of 5 jobs, stderr %q", code, len(seen), errOut)
		}

		if objs := s.okJSON(t, "jobs", "list", "--queue", "paged", "--state", "succeeded", "--kind", "noop"); len(objs) != 0 {
			t.Fatalf("filters ignored: %v", objs)
		}
		s.fails(t, "(invalid_argument, request ", "jobs", "list", "--state", "sideways")
	})

	t.Run("wait", func(t *testing.T) {
		t.Parallel()
		job := one(t, s.okJSON(t, "jobs", "enqueue", "sleep", "--args", `{"duration":"1ms"}`, "--wait"))
		if job["state"] != "succeeded" || job["finished_at"] == nil {
			t.Fatalf("--wait: %v", job)
		}
		out, errOut, code := s.run(t, "jobs", "enqueue", "sleep", "--args", `{"duration":"1ms","fail":"boom"}`,
			"--max-attempts", "1", "--wait")
		if code != 1 || !strings.Contains(errOut, "ended dead: boom") || !regexp.MustCompile(`(?m)^state:\s+dead$`).MatchString(out) {
			t.Fatalf("--wait on a failing job: exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		s.fails(t, "(not_found, request ", "jobs", "get", "999999999")
		s.fails(t, "(not_found, request ", "jobs", "cancel", "999999999")
		s.fails(t, "(invalid_argument, request ", "jobs", "enqueue", "noop", "--priority", "9")

		_, errOut, code := runCLI(t, "jobs", "get", "1", "--server", s.srv.URL, "--api-key", "wrong")
		if code != 1 || !strings.Contains(errOut, "(unauthenticated, request ") || !strings.Contains(errOut, "came from --api-key") {
			t.Fatalf("bad key: exit %d, %q", code, errOut)
		}
		_, errOut, code = runCLI(t, "queues", "list", "--server", s.srv.URL, "--key-file", filepath.Join(t.TempDir(), "none"))
		if code != 1 || !strings.Contains(errOut, "read key file") {
			t.Fatalf("missing explicit key file: exit %d, %q", code, errOut)
		}

		keyFile := filepath.Join(t.TempDir(), "switchyard.key")
		if err := os.WriteFile(keyFile, []byte(s.srv.AdminKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, "queues", "list", "--server", s.srv.URL, "--key-file", keyFile)
		if code != 0 || !strings.HasPrefix(out, "NAME") {
			t.Fatalf("--key-file: exit %d, %q %q", code, out, errOut)
		}
	})

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"jobs"}, "missing subcommand"},
			{[]string{"jobs", "enqueue", "noop", "--args", "-h"}, "must be a JSON object"},
			{[]string{"jobs", "frob"}, `unknown subcommand "frob"`},
			{[]string{"jobs", "get"}, "want exactly one job ID"},
			{[]string{"jobs", "get", "1", "2"}, "want exactly one job ID"},
			{[]string{"jobs", "enqueue", "noop", "--delay", "1s", "--run-at", "2030-01-01T00:00:00Z"}, "not both"},
			{[]string{"jobs", "enqueue", "noop", "--run-at", "tomorrow"}, "RFC 3339"},
			{[]string{"jobs", "enqueue", "noop", "--args", "[1]"}, "must be a JSON object"},
			{[]string{"jobs", "list", "extra"}, "unexpected arguments: extra"},
			{[]string{"jobs", "list", "--no-such-flag"}, "flag provided but not defined"},
			{[]string{"queues", "set", "q"}, "give --concurrency"},
			{[]string{"queues", "pause"}, "want exactly one queue NAME"},
		} {
			_, errOut, code := s.run(t, tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want failure with %q", tc.args, code, errOut, tc.want)
			}
		}
		// Command-line mistakes carry exit code 2 for run(); the server's
		// refusals do not.
		var coder interface{ ExitCode() int }
		err := runJobs(context.Background(), []string{"get", "1", "2"}, io.Discard, io.Discard)
		if !errors.As(err, &coder) || coder.ExitCode() != 2 {
			t.Errorf("usage error %v has no exit code 2", err)
		}
		err = runJobs(context.Background(), []string{"get", "999999999", "--server", s.srv.URL, "--api-key", s.srv.AdminKey}, io.Discard, io.Discard)
		if err == nil || errors.As(err, &coder) {
			t.Errorf("not-found error %v is a usage error", err)
		}

		for _, args := range [][]string{{"jobs", "get", "1", "--help"}, {"queues", "set", "--help"}, {"jobs", "--help"}} {
			out, _, code := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "Usage: switchyard "+args[0]) {
				t.Errorf("%v: exit %d, %q", args, code, out)
			}
		}
		out, _, _ := runCLI(t, "jobs", "enqueue", "--help")
		for _, want := range []string{"--wait", "SWITCHYARD_URL or SWITCHYARD_SERVER", "SWITCHYARD_API_KEY", "SWITCHYARD_KEY_FILE", "SWITCHYARD_UNIQUE_KEY"} {
			if !strings.Contains(out, want) {
				t.Errorf("enqueue --help lacks %q:\n%s", want, out)
			}
		}
	})
}

func TestQueuesCommands(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t, "sqlite:"+testdb.SQLitePath(t))
	out := s.ok(t, "queues", "pause", "mail")
	rows := table(out)
	if len(rows) != 2 || strings.Join(rows[0], " ") != "NAME PAUSED CONCURRENCY AVAILABLE RUNNING SCHEDULED RETRYABLE SUCCEEDED DEAD CANCELLED" ||
		rows[1][0] != "mail" || rows[1][1] != "yes" {
		t.Fatalf("pause:\n%s", out)
	}
	s.ok(t, "jobs", "enqueue", "noop", "--queue", "mail")
	s.ok(t, "jobs", "enqueue", "noop", "--queue", "mail", "--delay", "1h")

	rows = table(s.ok(t, "queues", "list"))
	var mail []string
	for _, r := range rows[1:] {
		if r[0] == "mail" {
			mail = r
		}
	}
	// NAME PAUSED CONCURRENCY AVAILABLE RUNNING SCHEDULED …
	if mail == nil || mail[1] != "yes" || mail[3] != "1" || mail[5] != "1" {
		t.Fatalf("queues list: %q", rows)
	}

	q := one(t, s.okJSON(t, "queues", "set", "mail", "--concurrency", "5"))
	if q["name"] != "mail" || q["concurrency"] != 5.0 || q["paused"] != true {
		t.Fatalf("set: %v", q)
	}
	q = one(t, s.okJSON(t, "queues", "resume", "mail"))
	if q["paused"] != false || q["concurrency"] != 5.0 {
		t.Fatalf("resume: %v", q)
	}
	found := false
	for _, q := range s.okJSON(t, "queues", "list") {
		if q["name"] == "mail" {
			found = q["paused"] == false && q["counts"].(map[string]any)["scheduled"] == 1.0
		}
	}
	if !found {
		t.Fatal("queues list --json lacks the resumed queue mail")
	}
	s.fails(t, "(invalid_argument, request ", "queues", "set", "mail", "--concurrency", "0")
}

// TestClientDefaults finds the server and key the way a local user does:
// SWITCHYARD_URL names the server and the key file switchyard.key lies in
// the working directory. It changes the environment and the working
// directory, so it cannot run in parallel.
func TestClientDefaults(t *testing.T) {
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "switchyard.key"), []byte(srv.AdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("SWITCHYARD_URL", srv.URL)
	t.Setenv("SWITCHYARD_SERVER", "http://127.0.0.1:1") // SWITCHYARD_URL wins
	out, errOut, code := runCLI(t, "jobs", "enqueue", "noop", "--wait")
	if code != 0 || !regexp.MustCompile(`(?m)^state:\s+succeeded$`).MatchString(out) {
		t.Fatalf("enqueue --wait with defaults: exit %d\n%s\n%s", code, out, errOut)
	}

	// Without the key file no key is sent, and the server's 401 explains.
	if err := os.Remove(filepath.Join(dir, "switchyard.key")); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "queues", "list")
	if code != 1 || !strings.Contains(errOut, "(unauthenticated, request ") || !strings.Contains(errOut, "no API key was sent") {
		t.Fatalf("no key: exit %d, %q", code, errOut)
	}
	t.Setenv("SWITCHYARD_API_KEY", srv.AdminKey)
	if _, errOut, code := runCLI(t, "queues", "list"); code != 0 {
		t.Fatalf("SWITCHYARD_API_KEY: exit %d, %q", code, errOut)
	}
}

// TestClientCommandsPostgres runs the main path on the other driver.
func TestClientCommandsPostgres(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t, testdb.PostgresURL(t))
	job := one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--tag", "pg", "--wait"))
	if job["state"] != "succeeded" {
		t.Fatalf("--wait: %v", job)
	}
	listed := s.okJSON(t, "jobs", "list", "--tag", "pg")
	if len(listed) != 1 || listed[0]["id"] != job["id"] {
		t.Fatalf("list: %v", listed)
	}
	s.ok(t, "queues", "pause", "default")
	rows := table(s.ok(t, "queues", "list"))
	if len(rows) < 2 || rows[1][0] != "default" || rows[1][1] != "yes" {
		t.Fatalf("queues list: %q", rows)
	}
}
