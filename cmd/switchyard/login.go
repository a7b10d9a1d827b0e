package main

// login, logout and whoami, and the saved session the client subcommands
// use when no API key is given: its file, and the transport that sends its
// access token and renews it with the refresh token.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

// savedSession is the session file's content. The file holds live
// credentials: it is written readable by its owner only.
type savedSession struct {
	Server           string    `json:"server"`
	Tenant           string    `json:"tenant,omitempty"` // chosen at login; "" for the user's default
	UserID           string    `json:"user_id"`
	Email            string    `json:"email"`
	AccessToken      string    `json:"access_token"`
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
}

// take records a session the server handed out.
func (s *savedSession) take(sess *client.Session) {
	s.AccessToken, s.AccessExpiresAt = sess.AccessToken, sess.ExpiresAt
	s.RefreshToken, s.RefreshExpiresAt = sess.RefreshToken, sess.RefreshExpiresAt
	if sess.User != nil {
		s.UserID, s.Email = sess.User.ID, sess.User.Email
	}
}

// renewBefore is how long before its expiry an access token is renewed, so
// that it does not expire in flight or on a server whose clock is ahead.
const renewBefore = time.Minute

// sessionFileEnv overrides where the session is kept (--session-file's
// environment twin).
const sessionFileEnv = "SWITCHYARD_SESSION_FILE"

// defaultSessionPath is <user config dir>/switchyard/session.json.
func defaultSessionPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the session file: %w (set --session-file or %s)", err, sessionFileEnv)
	}
	return filepath.Join(dir, "switchyard", "session.json"), nil
}

// displaySessionPath is the default session file as help shows it.
func displaySessionPath() string {
	if p, err := defaultSessionPath(); err == nil {
		return p
	}
	return "<user config dir>/switchyard/session.json"
}

func (cf *clientFlags) sessionPath() (string, error) {
	if cf.sessionFile != "" {
		return cf.sessionFile, nil
	}
	return defaultSessionPath()
}

// loadSession returns the saved session's transport, or nil when there is
// no session file or it is for another server than the one named by
// --server or SWITCHYARD_URL: a session's tokens are never sent to another
// server. With required, no session is an error.
func (cf *clientFlags) loadSession(required bool) (*sessionAuth, error) {
	path, err := cf.sessionPath()
	if err != nil {
		if required {
			return nil, err
		}
		return nil, nil
	}
	s, err := readSession(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if required {
			return nil, fmt.Errorf("not logged in: no session file %s", path)
		}
		return nil, nil
	case err != nil:
		return nil, err
	}
	if cf.serverGiven() && sameServer(cf.server, s.Server) != nil {
		if required {
			return nil, fmt.Errorf("the session in %s is for %s, not %s", path, s.Server, cf.server)
		}
		return nil, nil
	}
	refresher, err := client.New(client.Config{
		BaseURL:    s.Server,
		HTTPClient: &http.Client{Timeout: cf.httpTimeout},
		UserAgent:  userAgent(),
	})
	if err != nil {
		return nil, fmt.Errorf("session file %s: server: %w", path, err)
	}
	return &sessionAuth{path: path, base: http.DefaultTransport, refresher: refresher, sess: s}, nil
}

// sameServer returns nil when a and b name the same server, so that a
// trailing slash does not matter.
func sameServer(a, b string) error {
	ca, err := client.New(client.Config{BaseURL: a})
	if err != nil {
		return err
	}
	cb, err := client.New(client.Config{BaseURL: b})
	if err != nil {
		return err
	}
	if ca.BaseURL() != cb.BaseURL() {
		return errors.New("different servers")
	}
	return nil
}

func readSession(path string) (*savedSession, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s savedSession
	if err := json.Unmarshal(b, &s); err != nil || s.Server == "" || s.RefreshToken == "" {
		return nil, fmt.Errorf("session file %s is damaged; log in again or delete it", path)
	}
	return &s, nil
}

// writeSession replaces the session file atomically, readable by its owner
// only; the directory is created private if missing.
func writeSession(path string, s *savedSession) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".session-*.json")
	if err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	// CreateTemp makes the file 0600; Chmod says so for umasks and
	// platforms that differ.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save session: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save session: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// sessionError is a failure to renew the saved session.
type sessionError struct {
	path string
	err  error
}

func (e *sessionError) Error() string {
	return "renew the session saved in " + e.path + ": " + e.err.Error()
}
func (e *sessionError) Unwrap() error { return e.err }

// sessionAuth is an http.RoundTripper that authenticates each request with
// the saved session's access token. It renews the token with the refresh
// token, saving the rotated pair, when the token is about to expire or the
// server answers 401, and then retries the request once.
type sessionAuth struct {
	path      string
	base      http.RoundTripper
	refresher *client.Client // calls POST /v1/auth/refresh, without credentials

	mu   sync.Mutex
	sess *savedSession
}

func (a *sessionAuth) server() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess.Server
}

func (a *sessionAuth) tenant() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess.Tenant
}

func (a *sessionAuth) email() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess.Email
}

// RoundTrip implements http.RoundTripper.
func (a *sessionAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if req.Body != nil && req.GetBody != nil {
		// Each attempt sends a copy from GetBody; the original is closed
		// here, as RoundTrip must.
		defer req.Body.Close()
	}
	token, err := a.token(ctx)
	if err != nil {
		if req.Body != nil && req.GetBody == nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := a.send(req, token)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// The token may have ended early (a restore, a clock far off); a fresh
	// one decides. A body that cannot be sent again keeps the 401.
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	fresh, rerr := a.renew(ctx, token)
	if rerr != nil {
		var apiErr *client.Error
		if errors.As(rerr, &apiErr) && apiErr.Code == client.CodeUnauthenticated {
			return resp, nil // the server's 401 says it as well
		}
		resp.Body.Close()
		return nil, rerr
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return a.send(req, fresh)
}

func (a *sessionAuth) send(req *http.Request, token string) (*http.Response, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	r.Header.Set("Authorization", "Bearer "+token)
	return a.base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport underneath.
func (a *sessionAuth) CloseIdleConnections() {
	if c, ok := a.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// token returns an access token that is not about to expire, renewing it
// if needed.
func (a *sessionAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	token, expires := a.sess.AccessToken, a.sess.AccessExpiresAt
	a.mu.Unlock()
	if time.Until(expires) > renewBefore {
		return token, nil
	}
	return a.renew(ctx, token)
}

// renew trades the refresh token for a new session and saves it, unless
// the token in use is no longer stale (another request or process renewed
// it). Processes renewing at once take turns through a lock file: a refresh
// token is good once, and its second use would end the session.
func (a *sessionAuth) renew(ctx context.Context, stale string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess.AccessToken != stale && time.Until(a.sess.AccessExpiresAt) > renewBefore {
		return a.sess.AccessToken, nil
	}
	unlock, err := lockFile(ctx, a.path+".lock")
	if err != nil {
		return "", &sessionError{a.path, err}
	}
	defer unlock()
	if disk, err := readSession(a.path); err == nil && disk.Server == a.sess.Server && disk.RefreshToken != a.sess.RefreshToken {
		a.sess = disk // renewed by another process
		if disk.AccessToken != stale && time.Until(disk.AccessExpiresAt) > renewBefore {
			return disk.AccessToken, nil
		}
	}
	if !a.sess.RefreshExpiresAt.IsZero() && time.Now().After(a.sess.RefreshExpiresAt) {
		return "", &sessionError{a.path, fmt.Errorf("the session expired at %s", a.sess.RefreshExpiresAt.Local().Format(time.RFC3339))}
	}
	sess, err := a.refresher.Refresh(ctx, a.sess.RefreshToken)
	if err != nil {
		return "", &sessionError{a.path, err}
	}
	next := *a.sess
	next.take(sess)
	if err := writeSession(a.path, &next); err != nil {
		// The old refresh token is spent: without the file, the next
		// command must log in again. This one can still go on.
		fmt.Fprintf(os.Stderr, "switchyard: warning: %v; the next command will need a new login\n", err)
	}
	a.sess = &next
	return next.AccessToken, nil
}

// lockFile takes an exclusive lock by creating path, waiting while another
// process holds it. A lock older than staleLock is taken for abandoned by a
// process that died holding it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	const staleLock = 30 * time.Second
	deadline := time.Now().Add(2 * staleLock)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > staleLock {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: still held; delete it if no switchyard command is running", path)
		}
		// Another process is renewing; it takes one request.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// passwordEnv holds a password for commands run without a terminal to type
// it in; --password-stdin is preferred, as the environment of a process
// can be read by others of the same user.
const passwordEnv = "SWITCHYARD_PASSWORD"

// maxPassword bounds what --password-stdin reads.
const maxPassword = 4 << 10

// readPassword reads the password from stdin (fromStdin) or
// SWITCHYARD_PASSWORD. ok is false when neither gave one.
func readPassword(fromStdin bool) (password string, ok bool, err error) {
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, maxPassword+1))
		if err != nil {
			return "", false, fmt.Errorf("read the password from stdin: %w", err)
		}
		if len(b) > maxPassword {
			return "", false, usageErr{fmt.Errorf("--password-stdin: the password is longer than %d bytes", maxPassword)}
		}
		// One line: the newline echo or a here-string adds is not part of it.
		p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if p == "" {
			return "", false, usageErr{errors.New("--password-stdin: stdin held no password")}
		}
		return p, true, nil
	}
	if p, set := os.LookupEnv(passwordEnv); set && p != "" {
		return p, true, nil
	}
	return "", false, nil
}

// passwordFlag defines --password-stdin.
func passwordFlag(cf *clientFlags, p *bool) {
	cf.fs.BoolVar(p, "password-stdin", false, "read the password from stdin (one line), e.g. from a password manager or a file;\n"+
		"without it, "+passwordEnv+" is read. A password is never a flag: flags land in shell history and ps")
}

const loginDescription = `
Logs in to the server as the user with this email and saves the session in
--session-file, readable by you only. The password comes from stdin with
--password-stdin (preferred), or from SWITCHYARD_PASSWORD.

Later client commands given no --api-key (nor SWITCHYARD_API_KEY) use the
session for the server it was made on, whatever --server or SWITCHYARD_URL
says otherwise; its access token lasts 30 minutes and is renewed by itself
(the rotated tokens are saved) for up to 7 days. --tenant chooses the
tenant the session acts in by default. 'switchyard logout' ends it.

Example:
  pass show switchyard | switchyard login ana@example.com --password-stdin --server https://jobs.example.com`

func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("login EMAIL --password-stdin [flags]", "", stderr)
	setUsage(fs, loginDescription)
	cf := newClientFlags(fs, stdout)
	var fromStdin bool
	passwordFlag(cf, &fromStdin)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cf.usageError("want exactly one EMAIL, got %d arguments", len(pos))
	}
	password, ok, err := readPassword(fromStdin)
	if err != nil {
		return err
	}
	if !ok {
		return cf.usageError("no password: pipe it in with --password-stdin, or set %s", passwordEnv)
	}
	path, err := cf.sessionPath()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: cf.httpTimeout}
	cf.hc = hc
	defer cf.close()
	c, err := client.New(client.Config{BaseURL: cf.server, HTTPClient: hc, UserAgent: userAgent()})
	if err != nil {
		return usageErr{fmt.Errorf("--server: %w", err)}
	}
	sess, err := c.Login(ctx, pos[0], password)
	if err != nil {
		var apiErr *client.Error
		if errors.As(err, &apiErr) {
			// A 401 here is about the email and password, which the
			// message says; the key hints of explain do not apply.
			return errors.New(apiMessage(apiErr))
		}
		return cf.explain(err)
	}
	asUser := c.WithCredential(sess.AccessToken)
	var tenants []string
	if cf.tenant != "" {
		// Check the tenant now rather than on every later command.
		if _, err := asUser.WithTenant(cf.tenant).Me(ctx); err != nil {
			_ = asUser.Logout(ctx)
			return fmt.Errorf("--tenant %s: %w", cf.tenant, cf.explain(err))
		}
	} else if page, err := asUser.ListTenants(ctx, client.ListParams{}); err == nil {
		for _, t := range page.Items {
			tenants = append(tenants, t.ID)
		}
	}
	saved := &savedSession{Server: c.BaseURL(), Tenant: cf.tenant}
	saved.take(sess)
	if err := writeSession(path, saved); err != nil {
		_ = asUser.Logout(ctx)
		return err
	}
	if cf.jsonOut {
		return printJSON(stdout, sess.User.Raw, sess.User)
	}
	fmt.Fprintf(stdout, "Logged in to %s as %s (%s).\nSession saved in %s; it lasts until %s.\n",
		saved.Server, saved.Email, saved.UserID, path, compactTime(saved.RefreshExpiresAt))
	switch {
	case cf.tenant != "":
		fmt.Fprintf(stdout, "Commands act in tenant %s unless --tenant says otherwise.\n", cf.tenant)
	case len(tenants) > 1:
		fmt.Fprintf(stdout, "You belong to several tenants (%s): choose one with --tenant or SWITCHYARD_TENANT.\n", strings.Join(tenants, ", "))
	case len(tenants) == 0 && !sess.User.InstanceAdmin:
		fmt.Fprintln(stdout, "You are not a member of any tenant yet.")
	}
	return nil
}

func runLogout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logout [flags]", "", stderr)
	setUsage(fs, `
Ends the session 'switchyard login' saved: the server revokes its tokens,
and the session file is deleted. A session the server had already ended is
deleted too.`)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	sa, err := cf.loadSession(true)
	if err != nil {
		return err
	}
	cf.session, cf.keySource = sa, "session"
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	err = c.Logout(ctx)
	var apiErr *client.Error
	ended := errors.As(err, &apiErr) && apiErr.Code == client.CodeUnauthenticated
	if err != nil && !ended {
		return cf.explain(err)
	}
	if err := os.Remove(sa.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete the session file: %w", err)
	}
	if !cf.jsonOut {
		if ended {
			fmt.Fprintf(stdout, "The session had ended already; deleted %s.\n", sa.path)
		} else {
			fmt.Fprintf(stdout, "Logged out %s from %s; deleted %s.\n", sa.email(), sa.server(), sa.path)
		}
	}
	return nil
}

func runWhoami(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("whoami [flags]", "", stderr)
	setUsage(fs, `
Shows who the credential is (an API key, or the user of the saved session),
the tenant commands act in and the role there (GET /v1/me).`)
	cf := newClientFlags(fs, stdout)
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	me, err := c.Me(ctx)
	if err != nil {
		return cf.explain(err)
	}
	if cf.jsonOut {
		return printJSON(stdout, me.Raw, me)
	}
	tw := newTable(stdout)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("server", c.BaseURL())
	switch {
	case me.User != nil:
		row("user", me.User.Email+" ("+me.User.ID+")")
		if me.User.InstanceAdmin {
			row("instance admin", "yes")
		}
	case me.Key != nil:
		row("key", me.Key.Name+" ("+me.Key.ID+", "+me.Key.Prefix+"…)")
		row("key tenant", me.Key.TenantID)
	}
	row("tenant", orDash(me.TenantID))
	row("role", orDash(me.Role))
	switch {
	case cf.session != nil:
		row("credential", "session in "+cf.session.path)
	case cf.keySource != "":
		row("credential", cf.keySource)
	}
	if me.TenantID == "" && me.User != nil {
		fmt.Fprintln(tw, "\nYou belong to several tenants: choose one with --tenant or SWITCHYARD_TENANT.")
	}
	return tw.Flush()
}
