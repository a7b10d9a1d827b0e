package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// runChild runs the command in a child process with stdin, the way a
// password reaches --password-stdin, and the extra environment.
func runChild(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// as runs a command with another API key than the admin's.
func (s *cliServer) as(t *testing.T, key string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLI(t, append(args, "--server", s.srv.URL, "--api-key", key)...)
}

// field returns the value of a "key: value" line of a one-object view.
func field(t *testing.T, out, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `:[ \t]+(.*?)\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in\n%s", key, out)
	}
	return m[1]
}

// TestTenantWalk walks through what an operator does with tenants: creates
// one, gives it a viewer key, and checks what the key may and may not do,
// what the audit log says about it, and the tenant's members.
func TestTenantWalk(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		s := startCLIServer(t, db)

		// A tenant, with and without its own rate limit.
		tn := one(t, s.okJSON(t, "tenants", "create", "acme", "--name", "Acme", "--rate-limit", "100", "--rate-burst", "200"))
		if tn["id"] != "acme" || tn["name"] != "Acme" || tn["rate_limit"].(map[string]any)["burst"] != 200.0 {
			t.Fatalf("created %v", tn)
		}
		s.fails(t, "(conflict, request ", "tenants", "create", "acme")
		s.fails(t, "(invalid_argument, request ", "tenants", "create", "Not A Slug")
		out := s.ok(t, "tenants", "get", "acme")
		if field(t, out, "rate_limit") != "100 requests/s, burst 200" || field(t, out, "name") != "Acme" {
			t.Fatalf("tenants get:\n%s", out)
		}
		tn = one(t, s.okJSON(t, "tenants", "update", "acme", "--no-rate-limit"))
		if tn["rate_limit"] != nil || tn["name"] != "Acme" {
			t.Fatalf("--no-rate-limit: %v", tn)
		}
		tn = one(t, s.okJSON(t, "tenants", "update", "acme", "--rate-limit", "2.5"))
		if l := tn["rate_limit"].(map[string]any); l["requests_per_second"] != 2.5 || l["burst"] != 3.0 {
			t.Fatalf("--rate-limit without a burst: %v", tn)
		}
		s.ok(t, "tenants", "update", "acme", "--name", "Acme Corp", "--rate-limit", "1000", "--rate-burst", "2000")
		rows := table(s.ok(t, "tenants", "list"))
		if len(rows) != 3 || strings.Join(rows[0], " ") != "ID RATE_LIMIT CREATED NAME" || rows[1][0] != "acme" ||
			rows[1][1] != "1000/s,burst=2000" || rows[2][0] != "default" || rows[2][1] != "default" {
			t.Fatalf("tenants list: %q", rows)
		}
		_, errOut, code := s.run(t, "tenants", "list", "--limit", "1")
		if code != 0 || !strings.HasPrefix(errOut, "next cursor: ") {
			t.Fatalf("tenants list --limit 1: exit %d, stderr %q", code, errOut)
		}

		// A job in each tenant, held where they are.
		s.ok(t, "queues", "pause", "held", "--tenant", "acme")
		acmeJob := one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--queue", "held", "--tenant", "acme"))["id"].(string)
		defaultJob := one(t, s.okJSON(t, "jobs", "enqueue", "noop", "--delay", "1h"))["id"].(string)

		// A viewer key for acme; its secret is printed once.
		out = s.ok(t, "keys", "create", "dashboard", "--role", "viewer", "--expires-in", "720h", "--tenant", "acme")
		keyID := field(t, out, "id")
		m := regexp.MustCompile(`shown only this once.*\n\n    (sy_\S+)\n`).FindStringSubmatch(out)
		if m == nil || field(t, out, "tenant") != "acme" || field(t, out, "role") != "viewer" || field(t, out, "status") != "active" ||
			field(t, out, "expires_at") == "-" || !strings.HasPrefix(m[1], field(t, out, "prefix")) {
			t.Fatalf("keys create:\n%s", out)
		}
		viewer := m[1]
		created := one(t, s.okJSON(t, "keys", "create", "ci", "--role", "operator", "--tenant", "acme"))
		if sec, _ := created["secret"].(string); !strings.HasPrefix(sec, "sy_") || created["key"].(map[string]any)["expires_at"] != nil {
			t.Fatalf("keys create --json: %v", created)
		}

		// The viewer key lists acme's jobs, may not cancel them, and sees
		// nothing of the default tenant.
		out, errOut, code = s.as(t, viewer, "jobs", "list")
		if rows := table(out); code != 0 || len(rows) != 2 || rows[1][0] != acmeJob {
			t.Fatalf("viewer lists jobs: exit %d\n%s\n%s", code, out, errOut)
		}
		_, errOut, code = s.as(t, viewer, "jobs", "cancel", acmeJob)
		if code != 1 || !strings.Contains(errOut, "needs the operator role; you have viewer (permission_denied, request ") {
			t.Fatalf("viewer cancels: exit %d, %q", code, errOut)
		}
		_, errOut, code = s.as(t, viewer, "jobs", "get", defaultJob)
		if code != 1 || !strings.Contains(errOut, "(not_found, request ") {
			t.Fatalf("viewer gets the default tenant's job: exit %d, %q", code, errOut)
		}
		_, errOut, code = s.as(t, viewer, "jobs", "list", "--tenant", "default")
		if code != 1 || !strings.Contains(errOut, `tenant "default" not found (not_found, request `) {
			t.Fatalf("viewer lists the default tenant's jobs: exit %d, %q", code, errOut)
		}
		_, errOut, code = s.as(t, viewer, "keys", "list")
		if code != 1 || !strings.Contains(errOut, "(permission_denied, request ") {
			t.Fatalf("viewer lists keys: exit %d, %q", code, errOut)
		}
		out, _, code = s.as(t, viewer, "whoami")
		if code != 0 || field(t, out, "tenant") != "acme" || field(t, out, "role") != "viewer" || !strings.Contains(field(t, out, "key"), keyID) {
			t.Fatalf("viewer's whoami: exit %d\n%s", code, out)
		}

		// The audit log tells.
		out = s.ok(t, "audit", "--tenant", "acme")
		rows = table(out)
		if strings.Join(rows[0], " ") != "TIME ACTOR ACTION TARGET RESULT STATUS DETAIL" {
			t.Fatalf("audit header %q", rows[0])
		}
		for _, want := range []string{"keys.create", "jobs.cancel", "queues.pause", "jobs.create"} {
			if !strings.Contains(out, want) {
				t.Errorf("acme's audit log lacks %s:\n%s", want, out)
			}
		}
		cancels := s.okJSON(t, "audit", "--tenant", "acme", "--action", "jobs.cancel")
		if len(cancels) != 1 || cancels[0]["result"] != "denied" || cancels[0]["status"] != 403.0 || cancels[0]["target"] != acmeJob ||
			cancels[0]["actor"].(map[string]any)["id"] != keyID {
			t.Fatalf("audit --action jobs.cancel: %v", cancels)
		}
		if got := s.okJSON(t, "audit", "--tenant", "acme", "--actor", keyID, "--result", "denied", "--since", "1h"); len(got) != 1 {
			t.Fatalf("the viewer key's denied requests: %v", got) // the cancel; reads are not audited
		}
		if got := s.okJSON(t, "audit", "--tenant", "acme", "--until", "1h"); len(got) != 0 {
			t.Fatalf("audit --until 1h: %v", got)
		}
		out, errOut, code = s.run(t, "audit", "--all-tenants", "--limit", "1")
		if rows := table(out); code != 0 || len(rows) != 2 || rows[0][1] != "TENANT" || !strings.HasPrefix(errOut, "next cursor: ") {
			t.Fatalf("audit --all-tenants --limit 1: exit %d\n%s\n%s", code, out, errOut)
		}
		all := s.okJSON(t, "audit", "--all-tenants", "--all", "--limit", "2")
		tenants := map[any]bool{}
		for _, e := range all {
			tenants[e["tenant_id"]] = true
		}
		if !tenants["acme"] || !tenants["default"] {
			t.Fatalf("audit --all-tenants --all covers %v", tenants)
		}

		// Revoking the key ends it at once.
		out = s.ok(t, "keys", "list", "--tenant", "acme")
		if !regexp.MustCompile(`(?m)^` + keyID + `\s+dashboard\s+viewer\s+sy_\S+\s+active\s`).MatchString(out) {
			t.Fatalf("keys list:\n%s", out)
		}
		if out := s.ok(t, "keys", "revoke", keyID, "--tenant", "acme"); !strings.Contains(out, "revoked") {
			t.Fatalf("keys revoke: %q", out)
		}
		s.fails(t, "(conflict, request ", "keys", "revoke", keyID, "--tenant", "acme")
		if out := s.ok(t, "keys", "get", keyID, "--tenant", "acme"); field(t, out, "status") != "revoked" {
			t.Fatalf("keys get:\n%s", out)
		}
		s.fails(t, "(not_found, request ", "keys", "get", keyID) // the default tenant's keys
		_, errOut, code = s.as(t, viewer, "jobs", "list")
		if code != 1 || !strings.Contains(errOut, "(unauthenticated, request ") || !strings.Contains(errOut, "came from --api-key") {
			t.Fatalf("revoked key: exit %d, %q", code, errOut)
		}

		// Members; passwords come from stdin.
		base := []string{"--server", s.srv.URL, "--api-key", s.srv.AdminKey, "--tenant", "acme", "--json"}
		out, errOut, code = runChild(t, anaPassword+"\n", nil, append([]string{"users", "add", "ana@example.com", "--role", "admin", "--password-stdin"}, base...)...)
		ana := parseOne(t, out)
		anaID, _ := ana["id"].(string)
		if code != 0 || anaID == "" || ana["role"] != "admin" || ana["email"] != "ana@example.com" {
			t.Fatalf("users add: exit %d\n%s\n%s", code, out, errOut)
		}
		_, errOut, code = runChild(t, "", []string{passwordEnv + "=bob's long password"}, append([]string{"users", "add", "bob@example.com", "--role", "viewer"}, base...)...)
		if code != 0 {
			t.Fatalf("users add with %s: exit %d, %q", passwordEnv, code, errOut)
		}
		s.fails(t, "password is required for a new user", "users", "add", "eve@example.com", "--role", "viewer", "--tenant", "acme")
		s.fails(t, "(conflict, request ", "users", "add", "ana@example.com", "--role", "viewer", "--tenant", "acme")
		rows = table(s.ok(t, "users", "list", "--tenant", "acme"))
		if len(rows) != 3 || strings.Join(rows[0], " ") != "ID EMAIL ROLE INSTANCE_ADMIN CREATED" {
			t.Fatalf("users list: %q", rows)
		}
		if u := one(t, s.okJSON(t, "users", "set-role", anaID, "operator", "--tenant", "acme")); u["role"] != "operator" {
			t.Fatalf("set-role: %v", u)
		}
		if out := s.ok(t, "users", "get", anaID, "--tenant", "acme"); field(t, out, "role") != "operator" || field(t, out, "email") != "ana@example.com" {
			t.Fatalf("users get:\n%s", out)
		}
		s.fails(t, "(not_found, request ", "users", "get", anaID) // not a member of default
		bob := ""
		for _, u := range s.okJSON(t, "users", "list", "--tenant", "acme") {
			if u["email"] == "bob@example.com" {
				bob = u["id"].(string)
			}
		}
		if out := s.ok(t, "users", "remove", bob, "--tenant", "acme"); !strings.Contains(out, "removed") {
			t.Fatalf("users remove: %q", out)
		}
		s.fails(t, "(not_found, request ", "users", "get", bob, "--tenant", "acme")

		// Ana logs in; the session works without a key or a server.
		testSession(t, s, anaID, acmeJob, defaultJob)
	})
}

func parseOne(t *testing.T, out string) map[string]any {
	t.Helper()
	var objs []map[string]any
	for l := range strings.Lines(out) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", l, err)
		}
		objs = append(objs, m)
	}
	return one(t, objs)
}

func TestAccessCommandLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenants"}, "missing subcommand"},
		{[]string{"tenants", "create"}, "want exactly one tenant ID"},
		{[]string{"tenants", "create", "a", "--rate-burst", "5"}, "--rate-burst needs --rate-limit"},
		{[]string{"tenants", "create", "a", "--rate-limit", "-1"}, "--rate-limit must be a positive number"},
		{[]string{"tenants", "update", "a"}, "nothing to change"},
		{[]string{"tenants", "update", "a", "--rate-limit", "5", "--no-rate-limit"}, "not both"},
		{[]string{"users", "add", "a@example.com"}, "--role is required"},
		{[]string{"users", "set-role", "usr_1"}, "want a user ID and a ROLE"},
		{[]string{"users", "set-password", "usr_1"}, "no password"},
		{[]string{"users", "add", "a@example.com", "--role", "admin", "--password", "x"}, "flag provided but not defined: -password"},
		{[]string{"keys", "create", "k"}, "--role is required"},
		{[]string{"keys", "create", "k", "--role", "viewer", "--expires-in", "-1h"}, "may not be negative"},
		{[]string{"keys", "revoke"}, "want exactly one key ID"},
		{[]string{"audit", "--since", "yesterday"}, "neither an RFC 3339 time"},
		{[]string{"audit", "extra"}, "unexpected arguments: extra"},
		{[]string{"login"}, "want exactly one EMAIL"},
		{[]string{"login", "a@example.com"}, "no password"},
		{[]string{"whoami", "extra"}, "unexpected arguments"},
	} {
		_, errOut, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with %q", tc.args, code, errOut, tc.want)
		}
	}
	for _, args := range [][]string{
		{"tenants", "--help"}, {"tenants", "create", "--help"}, {"users", "add", "--help"}, {"users", "set-password", "--help"},
		{"keys", "create", "--help"}, {"audit", "--help"}, {"login", "--help"}, {"logout", "--help"}, {"whoami", "--help"},
	} {
		out, _, code := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "Usage: switchyard "+args[0]) {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
		if len(args) > 2 && (!strings.Contains(out, "--tenant") || !strings.Contains(out, "SWITCHYARD_TENANT")) {
			t.Errorf("%v lacks --tenant:\n%s", args, out)
		}
	}
	out, _, _ := runCLI(t, "tenants", "create", "--help")
	if !regexp.MustCompile(`--rate-limit requests\n.*\n.*\n\s+command line only`).MatchString(out) {
		t.Errorf("tenants create --help does not say --rate-limit is command line only:\n%s", out)
	}
	out, _, _ = runCLI(t, "--help")
	for _, c := range []string{"tenants", "users", "keys", "audit", "login", "logout", "whoami"} {
		if !regexp.MustCompile(`(?m)^  ` + c + ` `).MatchString(out) {
			t.Errorf("switchyard --help lacks %s:\n%s", c, out)
		}
	}
}

// TestRateFlagsIgnoreServeEnvironment: SWITCHYARD_RATE_LIMIT configures
// serve; it must not become a tenant's rate limit. It sets the
// environment, so it cannot run in parallel.
func TestRateFlagsIgnoreServeEnvironment(t *testing.T) {
	s := startCLIServer(t, "sqlite:"+testdb.SQLitePath(t))
	t.Setenv("SWITCHYARD_RATE_LIMIT", "7")
	t.Setenv("SWITCHYARD_RATE_BURST", "9")
	tn := one(t, s.okJSON(t, "tenants", "create", "calm"))
	if tn["rate_limit"] != nil {
		t.Fatalf("the serve environment set the tenant's rate limit: %v", tn)
	}
	_, errOut, code := s.run(t, "tenants", "update", "calm")
	if code != 2 || !strings.Contains(errOut, "nothing to change") {
		t.Fatalf("update with only the serve environment: exit %d, %q", code, errOut)
	}
}
