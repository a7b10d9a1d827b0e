package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const anaPassword = "correct horse battery staple"

func readSaved(t *testing.T, path string) *savedSession {
	t.Helper()
	s, err := readSession(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeSaved(t *testing.T, path string, s *savedSession) {
	t.Helper()
	if err := writeSession(path, s); err != nil {
		t.Fatal(err)
	}
}

// testSession logs in as Ana, operator of acme, and uses the saved
// session: it stands in for a key and a server, renews itself, and ends
// with logout or a password change.
func testSession(t *testing.T, s *cliServer, anaID, acmeJob, defaultJob string) {
	file := filepath.Join(t.TempDir(), "config", "switchyard", "session.json")
	login := func(password string, extra ...string) (stdout, stderr string, code int) {
		t.Helper()
		return runChild(t, password+"\n", nil, append([]string{"login", "ana@example.com", "--password-stdin",
			"--server", s.srv.URL + "/", "--session-file", file}, extra...)...)
	}
	// sess runs a command in-process with the session: no key, no server.
	sess := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return runCLI(t, append(args, "--session-file", file)...)
	}

	_, errOut, code := login("not the password")
	if code != 1 || !strings.Contains(errOut, "wrong email or password (unauthenticated, request ") || strings.Contains(errOut, "hint") {
		t.Fatalf("login with a wrong password: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed login left a session file: %v", err)
	}

	out, errOut, code := login(anaPassword)
	if code != 0 || !strings.Contains(out, "Logged in to "+s.srv.URL+" as ana@example.com ("+anaID+")") {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, %v", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(file)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("session directory: %v, %v", di, err)
	}
	saved := readSaved(t, file)
	if saved.Server != s.srv.URL || saved.UserID != anaID || saved.Email != "ana@example.com" || saved.AccessToken == "" ||
		!strings.HasPrefix(saved.RefreshToken, "syr_") || time.Until(saved.AccessExpiresAt) < 20*time.Minute ||
		time.Until(saved.RefreshExpiresAt) < 24*time.Hour {
		t.Fatalf("saved session %+v", saved)
	}

	out, errOut, code = sess("whoami")
	if code != 0 || !strings.Contains(field(t, out, "user"), "ana@example.com") || field(t, out, "tenant") != "acme" ||
		field(t, out, "role") != "operator" || field(t, out, "credential") != "session in "+file || field(t, out, "server") != s.srv.URL {
		t.Fatalf("whoami: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = sess("jobs", "cancel", acmeJob)
	if code != 0 || field(t, out, "state") != "cancelled" {
		t.Fatalf("the operator cancels: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code = sess("jobs", "get", defaultJob); code != 1 || !strings.Contains(errOut, "(not_found, request ") {
		t.Fatalf("another tenant's job: exit %d, %q", code, errOut)
	}
	if _, errOut, code = sess("keys", "list"); code != 1 || !strings.Contains(errOut, "needs the admin role; you have operator") {
		t.Fatalf("the operator lists keys: exit %d, %q", code, errOut)
	}
	// A session is for its server only: named differently, the server gets
	// no credential.
	other := strings.Replace(s.srv.URL, "127.0.0.1", "localhost", 1)
	_, errOut, code = sess("whoami", "--server", other)
	if code != 1 || !strings.Contains(errOut, "(unauthenticated, request ") || !strings.Contains(errOut, "no API key was sent") {
		t.Fatalf("whoami on another server: exit %d, %q", code, errOut)
	}
	// An API key wins over the session.
	out, _, code = sess("whoami", "--api-key", s.srv.AdminKey, "--server", s.srv.URL)
	if code != 0 || field(t, out, "role") != "instance_admin" {
		t.Fatalf("whoami with --api-key: exit %d\n%s", code, out)
	}

	// An access token about to expire is renewed before the request, and
	// the rotated tokens are saved.
	before := readSaved(t, file)
	before.AccessExpiresAt = time.Now().Add(10 * time.Second)
	writeSaved(t, file, before)
	if _, errOut, code := sess("jobs", "list"); code != 0 {
		t.Fatalf("jobs list with an expiring token: exit %d, %q", code, errOut)
	}
	after := readSaved(t, file)
	if after.RefreshToken == before.RefreshToken || after.AccessToken == before.AccessToken || time.Until(after.AccessExpiresAt) < 20*time.Minute {
		t.Fatalf("not renewed: %+v", after)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("renewed session file: %v, %v", fi, err)
	}

	// An access token the server refuses is renewed after the 401 and the
	// request sent again, body and all.
	after.AccessToken = "sy_not-a-real-key"
	writeSaved(t, file, after)
	out, errOut, code = sess("jobs", "enqueue", "noop", "--queue", "held", "--args", `{"n":7}`)
	if code != 0 || field(t, out, "args") != `{"n":7}` {
		t.Fatalf("enqueue with a refused token: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := readSaved(t, file); got.AccessToken == after.AccessToken || got.RefreshToken == after.RefreshToken {
		t.Fatalf("not renewed after a 401: %+v", got)
	}

	// Commands renewing at once use the refresh token once: a second use
	// would end the session.
	expired := readSaved(t, file)
	expired.AccessExpiresAt = time.Now().Add(-time.Minute)
	writeSaved(t, file, expired)
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		wg.Go(func() { _, _, codes[i] = sess("whoami") })
	}
	wg.Wait()
	if _, errOut, code := sess("whoami"); code != 0 || fmtCodes(codes) != "0 0 0 0 0" {
		t.Fatalf("concurrent renewals: exit codes %v, then %d %q", codes, code, errOut)
	}
	if reused := s.okJSON(t, "audit", "--all-tenants", "--action", "auth.refresh_reused"); len(reused) != 0 {
		t.Fatalf("a refresh token was used twice: %v", reused)
	}
	if refreshed := s.okJSON(t, "audit", "--tenant", "acme", "--action", "auth.refresh", "--actor", anaID); len(refreshed) != 3 {
		t.Fatalf("ana's renewals in the audit log: %v", refreshed)
	}

	// Logout ends the session on the server and deletes the file.
	ended := readSaved(t, file).AccessToken
	out, errOut, code = sess("logout")
	if code != 0 || !strings.Contains(out, "Logged out ana@example.com") {
		t.Fatalf("logout: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("logout left the session file: %v", err)
	}
	if _, errOut, code = sess("logout"); code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("logout again: exit %d, %q", code, errOut)
	}
	if _, errOut, code = s.as(t, ended, "whoami"); code != 1 || !strings.Contains(errOut, "(unauthenticated, request ") {
		t.Fatalf("the access token after logout: exit %d, %q", code, errOut)
	}
	if _, errOut, code = sess("whoami", "--server", s.srv.URL); code != 1 || !strings.Contains(errOut, "no session from 'switchyard login'") {
		t.Fatalf("whoami after logout: exit %d, %q", code, errOut)
	}

	// A tenant chosen at login is checked, and then used by default.
	if _, errOut, code = login(anaPassword, "--tenant", "default"); code != 1 || !strings.Contains(errOut, `tenant "default" not found`) {
		t.Fatalf("login --tenant default: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused tenant left a session file: %v", err)
	}
	out, errOut, code = login(anaPassword, "--tenant", "acme", "--json")
	if u := parseOne(t, out); code != 0 || u["id"] != anaID || readSaved(t, file).Tenant != "acme" {
		t.Fatalf("login --tenant acme --json: exit %d\n%s\n%s", code, out, errOut)
	}

	// Ana changes her own password: her sessions end, and the CLI says to
	// log in again.
	const newPassword = "a brand new long password"
	_, errOut, code = runChild(t, newPassword+"\n", nil, "users", "set-password", anaID, "--password-stdin", "--session-file", file)
	if code != 0 {
		t.Fatalf("set-password as herself: exit %d, %q", code, errOut)
	}
	_, errOut, code = sess("whoami")
	if code != 1 || !strings.Contains(errOut, "(unauthenticated, request ") || !strings.Contains(errOut, "log in again") {
		t.Fatalf("whoami after the password change: exit %d, %q", code, errOut)
	}
	// Expired as well, the token is renewed first, which fails.
	dead := readSaved(t, file)
	dead.AccessExpiresAt = time.Now().Add(-time.Minute)
	writeSaved(t, file, dead)
	_, errOut, code = sess("whoami")
	if code != 1 || !regexp.MustCompile(`session saved in .* could not be renewed: .*\(unauthenticated, request .*\nhint: log in again`).MatchString(errOut) {
		t.Fatalf("whoami with an ended, expired session: exit %d, %q", code, errOut)
	}
	if _, errOut, code = login(newPassword); code != 0 {
		t.Fatalf("login with the new password: exit %d, %q", code, errOut)
	}
	var m map[string]any
	b, _ := os.ReadFile(file)
	if err := json.Unmarshal(b, &m); err != nil || m["tenant"] != nil {
		t.Fatalf("a login without --tenant kept the old one: %s", b)
	}
}

func fmtCodes(codes []int) string {
	var parts []string
	for _, c := range codes {
		parts = append(parts, itoa(c))
	}
	return strings.Join(parts, " ")
}
