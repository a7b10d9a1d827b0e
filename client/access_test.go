package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestAccess covers tenants, API keys, users, sessions and the audit log
// against a real server on both drivers.
func TestAccess(t *testing.T) {
	t.Parallel()
	dbs := map[string]string{
		"sqlite":   "sqlite:" + testdb.SQLitePath(t),
		"postgres": testdb.PostgresURL(t),
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			admin, srv := newClient(t, db)
			// The subtests build on each other: keys and users live in
			// the tenant the first one creates.
			t.Run("tenants", func(t *testing.T) { testTenants(t, admin) })
			t.Run("keys", func(t *testing.T) { testKeys(t, admin, srv) })
			t.Run("users", func(t *testing.T) { testUsers(t, admin, srv) })
			t.Run("sessions", func(t *testing.T) { testSessions(t, admin, srv) })
			t.Run("audit", func(t *testing.T) { testAudit(t, admin, srv) })
			t.Run("rate-limit", func(t *testing.T) { testRateLimit(t, admin, srv) })
		})
	}
}

// as returns a client for srv that authenticates with token.
func as(t *testing.T, srv *servertest.Server, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testTenants(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	acme, err := admin.CreateTenant(ctx, client.TenantRequest{ID: "acme", Name: "Acme", RateLimit: &client.RateLimit{RequestsPerSecond: 50, Burst: 100}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if acme.ID != "acme" || acme.Name != "Acme" || acme.CreatedAt.IsZero() || acme.RateLimit == nil ||
		acme.RateLimit.RequestsPerSecond != 50 || acme.RateLimit.Burst != 100 || len(acme.Raw) == 0 {
		t.Fatalf("created %+v", acme)
	}
	_, err = admin.CreateTenant(ctx, client.TenantRequest{ID: "acme"})
	apiError(t, err, client.CodeConflict)
	_, err = admin.CreateTenant(ctx, client.TenantRequest{ID: "Not A Slug"})
	apiError(t, err, client.CodeInvalidArgument)
	plain, err := admin.CreateTenant(ctx, client.TenantRequest{ID: "globex"})
	if err != nil || plain.Name != "globex" || plain.RateLimit != nil {
		t.Fatalf("create with defaults: %+v, %v", plain, err)
	}

	// Page through every tenant, one at a time.
	var ids []string
	p := client.ListParams{Limit: 1}
	for range 10 {
		page, err := admin.ListTenants(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range page.Items {
			ids = append(ids, tn.ID)
		}
		if page.NextCursor == "" {
			break
		}
		p.Cursor = page.NextCursor
	}
	if !slices.Equal(ids, []string{"acme", "default", "globex"}) {
		t.Fatalf("listed tenants %v", ids)
	}

	got, err := admin.GetTenant(ctx, "acme")
	if err != nil || got.ID != "acme" || got.RateLimit == nil {
		t.Fatalf("get: %+v, %v", got, err)
	}
	_, err = admin.GetTenant(ctx, "no-such-tenant")
	apiError(t, err, client.CodeNotFound)

	name := "Acme Corp"
	got, err = admin.UpdateTenant(ctx, "acme", client.TenantUpdate{Name: &name})
	if err != nil || got.Name != name || got.RateLimit == nil || got.RateLimit.Burst != 100 {
		t.Fatalf("rename: %+v, %v", got, err)
	}
	got, err = admin.UpdateTenant(ctx, "acme", client.TenantUpdate{ClearRateLimit: true})
	if err != nil || got.Name != name || got.RateLimit != nil {
		t.Fatalf("clear the rate limit: %+v, %v", got, err)
	}
	got, err = admin.UpdateTenant(ctx, "acme", client.TenantUpdate{RateLimit: &client.RateLimit{RequestsPerSecond: 500, Burst: 1000}})
	if err != nil || got.RateLimit == nil || got.RateLimit.RequestsPerSecond != 500 {
		t.Fatalf("set the rate limit: %+v, %v", got, err)
	}
	_, err = admin.UpdateTenant(ctx, "acme", client.TenantUpdate{})
	apiError(t, err, client.CodeInvalidArgument)
	_, err = admin.UpdateTenant(ctx, "acme", client.TenantUpdate{RateLimit: &client.RateLimit{RequestsPerSecond: 1, Burst: 1}, ClearRateLimit: true})
	var ae *client.Error
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("setting and clearing the rate limit at once: %v", err)
	}
	if _, err := admin.GetTenant(ctx, ""); err == nil || errors.As(err, &ae) {
		t.Fatalf("get the tenant named \"\": %v", err)
	}
}

func testKeys(t *testing.T, admin *client.Client, srv *servertest.Server) {
	ctx := context.Background()
	acme := admin.WithTenant("acme")
	if acme.Tenant() != "acme" || admin.Tenant() != "" {
		t.Fatalf("WithTenant changed the original: %q, %q", acme.Tenant(), admin.Tenant())
	}
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	key, secret, err := acme.CreateKey(ctx, client.KeyRequest{Name: "dashboard", Role: client.RoleViewer, ExpiresAt: expires})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if key.ID == "" || key.TenantID != "acme" || key.Name != "dashboard" || key.Role != client.RoleViewer ||
		key.ExpiresAt == nil || !key.ExpiresAt.Equal(expires) || key.RevokedAt != nil || key.LastUsedAt != nil ||
		!strings.HasPrefix(secret, "sy_") || key.Prefix == "" || !strings.HasPrefix(secret, key.Prefix) {
		t.Fatalf("created %+v with secret %q", key, secret)
	}
	page, err := acme.ListKeys(ctx, client.ListParams{})
	if err != nil || !slices.ContainsFunc(page.Items, func(k client.APIKey) bool { return k.ID == key.ID }) {
		t.Fatalf("list: %+v, %v", page, err)
	}
	// Another tenant's key list does not hold it, nor can it be read there.
	page, err = admin.ListKeys(ctx, client.ListParams{})
	if err != nil || slices.ContainsFunc(page.Items, func(k client.APIKey) bool { return k.ID == key.ID }) {
		t.Fatalf("default's keys: %+v, %v", page, err)
	}
	_, err = admin.GetKey(ctx, key.ID)
	apiError(t, err, client.CodeNotFound)

	// The viewer key reads its tenant, changes nothing, and sees no other
	// tenant.
	viewer := as(t, srv, secret)
	me, err := viewer.Me(ctx)
	if err != nil || me.Type != "key" || me.Key == nil || me.Key.ID != key.ID || me.User != nil ||
		me.TenantID != "acme" || me.Role != client.RoleViewer {
		t.Fatalf("me: %+v, %v", me, err)
	}
	if _, err := viewer.ListJobs(ctx, client.ListJobsParams{}); err != nil {
		t.Fatalf("viewer lists jobs: %v", err)
	}
	_, _, err = viewer.EnqueueJob(ctx, client.JobRequest{Kind: "noop"})
	if e := apiError(t, err, client.CodePermissionDenied); e.Status != http.StatusForbidden {
		t.Fatalf("viewer enqueues: %+v", e)
	}
	other, _, err := admin.EnqueueJob(ctx, client.JobRequest{Kind: "noop", Queue: "keys-test", Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, err = viewer.GetJob(ctx, other.ID)
	apiError(t, err, client.CodeNotFound)
	_, err = viewer.WithTenant("default").ListJobs(ctx, client.ListJobsParams{})
	apiError(t, err, client.CodeNotFound)
	_, err = viewer.ListKeys(ctx, client.ListParams{})
	apiError(t, err, client.CodePermissionDenied)

	// No one hands out more than their own role.
	acmeAdminKey, adminSecret, err := acme.CreateKey(ctx, client.KeyRequest{Name: "ops", Role: client.RoleAdmin})
	if err != nil || acmeAdminKey.ExpiresAt != nil {
		t.Fatalf("create admin key: %+v, %v", acmeAdminKey, err)
	}
	_, _, err = as(t, srv, adminSecret).CreateKey(ctx, client.KeyRequest{Name: "up", Role: client.RoleOwner})
	apiError(t, err, client.CodePermissionDenied)
	_, _, err = acme.CreateKey(ctx, client.KeyRequest{Name: "past", Role: client.RoleViewer, ExpiresAt: time.Now().Add(-time.Hour)})
	apiError(t, err, client.CodeInvalidArgument)
	_, _, err = acme.CreateKey(ctx, client.KeyRequest{Name: "bad", Role: "superuser"})
	apiError(t, err, client.CodeInvalidArgument)

	if err := acme.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	err = acme.RevokeKey(ctx, key.ID)
	apiError(t, err, client.CodeConflict)
	got, err := acme.GetKey(ctx, key.ID)
	if err != nil || got.RevokedAt == nil {
		t.Fatalf("revoked key: %+v, %v", got, err)
	}
	_, err = viewer.ListJobs(ctx, client.ListJobsParams{})
	apiError(t, err, client.CodeUnauthenticated)
	if err := acme.RevokeKey(ctx, ""); err == nil {
		t.Fatal("revoking the key with id \"\" did not fail")
	}
}

const anaPassword = "correct horse battery staple"

func testUsers(t *testing.T, admin *client.Client, srv *servertest.Server) {
	ctx := context.Background()
	acme := admin.WithTenant("acme")
	ana, err := acme.CreateUser(ctx, client.UserRequest{Email: "ana@example.com", Password: anaPassword, Role: client.RoleAdmin})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if ana.ID == "" || ana.Email != "ana@example.com" || ana.Role != client.RoleAdmin || ana.InstanceAdmin || ana.CreatedAt.IsZero() {
		t.Fatalf("created %+v", ana)
	}
	_, err = acme.CreateUser(ctx, client.UserRequest{Email: "ana@example.com", Role: client.RoleViewer})
	apiError(t, err, client.CodeConflict)
	_, err = acme.CreateUser(ctx, client.UserRequest{Email: "short@example.com", Password: "short", Role: client.RoleViewer})
	apiError(t, err, client.CodeInvalidArgument)
	// An existing user joins another tenant with their own password.
	inGlobex, err := admin.WithTenant("globex").CreateUser(ctx, client.UserRequest{Email: "ana@example.com", Role: client.RoleViewer})
	if err != nil || inGlobex.ID != ana.ID || inGlobex.Role != client.RoleViewer {
		t.Fatalf("add to globex: %+v, %v", inGlobex, err)
	}

	sess, err := admin.Login(ctx, "ana@example.com", anaPassword)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	asAna := as(t, srv, sess.AccessToken).WithTenant("acme")
	bob, err := asAna.CreateUser(ctx, client.UserRequest{Email: "bob@example.com", Password: "bob's long password", Role: client.RoleViewer})
	if err != nil || bob.Role != client.RoleViewer {
		t.Fatalf("ana adds bob: %+v, %v", bob, err)
	}
	_, err = asAna.CreateUser(ctx, client.UserRequest{Email: "eve@example.com", Password: "eve's long password", Role: client.RoleOwner})
	apiError(t, err, client.CodePermissionDenied)

	page, err := asAna.ListUsers(ctx, client.ListParams{})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("list: %+v, %v", page, err)
	}
	got, err := asAna.GetUser(ctx, bob.ID)
	if err != nil || got.Email != "bob@example.com" || got.Role != client.RoleViewer {
		t.Fatalf("get: %+v, %v", got, err)
	}
	role := client.RoleOperator
	got, err = asAna.UpdateUser(ctx, bob.ID, client.UserUpdate{Role: &role})
	if err != nil || got.Role != client.RoleOperator {
		t.Fatalf("set role: %+v, %v", got, err)
	}
	pw := "a new long password"
	_, err = asAna.UpdateUser(ctx, bob.ID, client.UserUpdate{Password: &pw})
	apiError(t, err, client.CodePermissionDenied)

	// Bob sets his own password: his sessions end, the new one works.
	bobSess, err := admin.Login(ctx, "bob@example.com", "bob's long password")
	if err != nil {
		t.Fatal(err)
	}
	asBob := as(t, srv, bobSess.AccessToken)
	if _, err := asBob.UpdateUser(ctx, bob.ID, client.UserUpdate{Password: &pw}); err != nil {
		t.Fatalf("bob sets his password: %v", err)
	}
	_, err = asBob.Me(ctx)
	apiError(t, err, client.CodeUnauthenticated)
	if _, err := admin.Login(ctx, "bob@example.com", pw); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}

	if err := asAna.DeleteUser(ctx, bob.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = asAna.GetUser(ctx, bob.ID)
	apiError(t, err, client.CodeNotFound)
	err = asAna.DeleteUser(ctx, bob.ID)
	apiError(t, err, client.CodeNotFound)
	if _, err := asAna.GetUser(ctx, ""); err == nil {
		t.Fatal("getting the user with id \"\" did not fail")
	}
}

func testSessions(t *testing.T, admin *client.Client, srv *servertest.Server) {
	ctx := context.Background()
	_, err := admin.Login(ctx, "ana@example.com", "wrong password!")
	if e := apiError(t, err, client.CodeUnauthenticated); !strings.Contains(e.Message, "wrong email or password") {
		t.Fatalf("wrong password: %+v", e)
	}
	sess, err := admin.Login(ctx, "ana@example.com", anaPassword)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if sess.TokenType != "Bearer" || sess.AccessToken == "" || !strings.HasPrefix(sess.RefreshToken, "syr_") ||
		sess.ExpiresIn != 30*time.Minute || sess.RefreshExpiresIn != 7*24*time.Hour ||
		time.Until(sess.ExpiresAt) < 29*time.Minute || time.Until(sess.RefreshExpiresAt) < 6*24*time.Hour ||
		sess.User == nil || sess.User.Email != "ana@example.com" || len(sess.Raw) == 0 {
		t.Fatalf("session %+v", sess)
	}

	// Ana belongs to acme and globex: she must say which.
	asAna := as(t, srv, sess.AccessToken)
	me, err := asAna.Me(ctx)
	if err != nil || me.Type != "user" || me.User == nil || me.User.ID != sess.User.ID || me.Key != nil || me.TenantID != "" {
		t.Fatalf("me without a tenant: %+v, %v", me, err)
	}
	_, err = asAna.ListJobs(ctx, client.ListJobsParams{})
	apiError(t, err, client.CodeInvalidArgument)
	me, err = asAna.WithTenant("acme").Me(ctx)
	if err != nil || me.TenantID != "acme" || me.Role != client.RoleAdmin {
		t.Fatalf("me in acme: %+v, %v", me, err)
	}
	me, err = asAna.WithTenant("globex").Me(ctx)
	if err != nil || me.TenantID != "globex" || me.Role != client.RoleViewer {
		t.Fatalf("me in globex: %+v, %v", me, err)
	}
	_, err = asAna.WithTenant("default").Me(ctx)
	apiError(t, err, client.CodeNotFound)
	page, err := asAna.ListTenants(ctx, client.ListParams{})
	var tenants []string
	for _, tn := range page.Items {
		tenants = append(tenants, tn.ID)
	}
	slices.Sort(tenants)
	if err != nil || !slices.Equal(tenants, []string{"acme", "globex"}) {
		t.Fatalf("ana's tenants: %v, %v", tenants, err)
	}

	// Refresh rotates; the old refresh token, used again, ends the session.
	next, err := admin.Refresh(ctx, sess.RefreshToken)
	if err != nil || next.RefreshToken == sess.RefreshToken || next.AccessToken == "" {
		t.Fatalf("refresh: %+v, %v", next, err)
	}
	if _, err := as(t, srv, next.AccessToken).WithTenant("acme").Me(ctx); err != nil {
		t.Fatalf("refreshed access token: %v", err)
	}
	_, err = admin.Refresh(ctx, sess.RefreshToken)
	apiError(t, err, client.CodeUnauthenticated)
	_, err = as(t, srv, next.AccessToken).WithTenant("acme").Me(ctx)
	apiError(t, err, client.CodeUnauthenticated)
	_, err = admin.Refresh(ctx, next.RefreshToken)
	apiError(t, err, client.CodeUnauthenticated)

	// Logout ends the session at once.
	sess, err = admin.Login(ctx, "ana@example.com", anaPassword)
	if err != nil {
		t.Fatal(err)
	}
	asAna = as(t, srv, sess.AccessToken).WithTenant("acme")
	if err := asAna.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	_, err = asAna.Me(ctx)
	apiError(t, err, client.CodeUnauthenticated)
	_, err = admin.Refresh(ctx, sess.RefreshToken)
	apiError(t, err, client.CodeUnauthenticated)
	// An API key has no session to end.
	err = admin.Logout(ctx)
	apiError(t, err, client.CodeInvalidArgument)

	me, err = admin.Me(ctx)
	if err != nil || me.Type != "key" || me.Role != client.RoleInstanceAdmin || me.TenantID != "default" {
		t.Fatalf("admin's me: %+v, %v", me, err)
	}
}

func testAudit(t *testing.T, admin *client.Client, srv *servertest.Server) {
	ctx := context.Background()
	acme := admin.WithTenant("acme")
	page, err := acme.ListAudit(ctx, client.AuditParams{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for i, e := range page.Items {
		actions[e.Action]++
		if e.ID == "" || e.TenantID != "acme" || e.Time.IsZero() || e.Actor.Type == "" || e.Result == "" || len(e.Raw) == 0 {
			t.Fatalf("entry %+v", e)
		}
		if i > 0 && e.Time.After(page.Items[i-1].Time) {
			t.Fatalf("entries not newest first: %v after %v", e.Time, page.Items[i-1].Time)
		}
	}
	for _, want := range []string{"keys.create", "keys.revoke", "users.create", "users.update", "users.delete", "auth.login"} {
		if actions[want] == 0 {
			t.Errorf("acme's audit log has no %s entry: %v", want, actions)
		}
	}

	revokes, err := acme.ListAudit(ctx, client.AuditParams{Action: "keys.revoke"})
	if err != nil || len(revokes.Items) != 2 {
		t.Fatalf("keys.revoke entries: %+v, %v", revokes, err)
	}
	// The second revoke of the same key failed with 409.
	results := []string{revokes.Items[0].Result, revokes.Items[1].Result}
	if !slices.Contains(results, client.AuditOK) || !slices.Contains(results, client.AuditFailed) {
		t.Errorf("keys.revoke results %v", results)
	}
	denied, err := acme.ListAudit(ctx, client.AuditParams{Result: client.AuditDenied, Action: "users."})
	if err != nil || len(denied.Items) == 0 {
		t.Fatalf("denied users.* entries: %+v, %v", denied, err)
	}
	for _, e := range denied.Items {
		if e.Result != client.AuditDenied || !strings.HasPrefix(e.Action, "users.") || e.Status != http.StatusForbidden {
			t.Fatalf("filtered entry %+v", e)
		}
	}

	// Page by two through every entry.
	seen := map[string]bool{}
	p := client.AuditParams{Limit: 2}
	for range 100 {
		pg, err := acme.ListAudit(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range pg.Items {
			if seen[e.ID] {
				t.Fatalf("entry %s listed twice", e.ID)
			}
			seen[e.ID] = true
		}
		if pg.NextCursor == "" {
			break
		}
		p.Cursor = pg.NextCursor
	}
	if len(seen) != len(page.Items) {
		t.Fatalf("paging found %d entries, one page of 100 %d", len(seen), len(page.Items))
	}

	future, err := acme.ListAudit(ctx, client.AuditParams{Since: time.Now().Add(time.Hour)})
	if err != nil || len(future.Items) != 0 {
		t.Fatalf("since an hour from now: %+v, %v", future, err)
	}
	past, err := acme.ListAudit(ctx, client.AuditParams{Until: time.Now().Add(-time.Hour)})
	if err != nil || len(past.Items) != 0 {
		t.Fatalf("until an hour ago: %+v, %v", past, err)
	}
	all, err := admin.ListAudit(ctx, client.AuditParams{AllTenants: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	tenants := map[string]bool{}
	for _, e := range all.Items {
		tenants[e.TenantID] = true
	}
	if !tenants["acme"] || !tenants["default"] {
		t.Fatalf("all tenants' entries cover %v", tenants)
	}

	sess, err := admin.Login(ctx, "ana@example.com", anaPassword)
	if err != nil {
		t.Fatal(err)
	}
	asAna := as(t, srv, sess.AccessToken).WithTenant("acme")
	_, err = asAna.ListAudit(ctx, client.AuditParams{AllTenants: true})
	apiError(t, err, client.CodePermissionDenied)
	_, err = asAna.WithTenant("globex").ListAudit(ctx, client.AuditParams{})
	apiError(t, err, client.CodePermissionDenied)
	logins, err := asAna.ListAudit(ctx, client.AuditParams{Actor: sess.User.ID, Action: "auth.login"})
	if err != nil || len(logins.Items) == 0 || logins.Items[0].Actor.Type != "user" {
		t.Fatalf("ana's logins: %+v, %v", logins, err)
	}
}

func testRateLimit(t *testing.T, admin *client.Client, srv *servertest.Server) {
	ctx := context.Background()
	if _, err := admin.CreateTenant(ctx, client.TenantRequest{ID: "slow"}); err != nil {
		t.Fatal(err)
	}
	// The key is made before the tenant gets its low limit: the server
	// keeps one bucket per caller whatever the tenant, so a request the
	// admin key made in slow would put that bucket 1000 s in debt
	// everywhere.
	_, secret, err := admin.WithTenant("slow").CreateKey(ctx, client.KeyRequest{Name: "slow", Role: client.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UpdateTenant(ctx, "slow", client.TenantUpdate{RateLimit: &client.RateLimit{RequestsPerSecond: 0.001, Burst: 2}}); err != nil {
		t.Fatal(err)
	}
	slow := as(t, srv, secret)
	for range 2 {
		if _, err := slow.ListQueues(ctx); err != nil {
			t.Fatalf("within the burst: %v", err)
		}
	}
	_, err = slow.ListQueues(ctx)
	if e := apiError(t, err, client.CodeRateLimited); e.Status != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %+v", e)
	}
}

func TestAccessJSON(t *testing.T) {
	t.Parallel()
	var s client.Session
	in := `{"access_token":"a.b.c","token_type":"Bearer","expires_in":1800,"refresh_token":"syr_x","refresh_expires_in":604800,` +
		`"user":{"id":"usr_1","email":"a@example.com","instance_admin":false,"created_at":"2026-01-02T03:04:05Z"}}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.ExpiresIn != 30*time.Minute || s.RefreshExpiresIn != 7*24*time.Hour || s.User == nil || s.User.Role != "" || string(s.Raw) != in {
		t.Fatalf("session %+v", s)
	}
	var me client.Me
	if err := json.Unmarshal([]byte(`{"type":"user","user":null,"key":null,"tenant_id":null,"role":""}`), &me); err != nil || me.TenantID != "" {
		t.Fatalf("me with a null tenant: %+v, %v", me, err)
	}
	name := "N"
	for _, tc := range []struct {
		u    client.TenantUpdate
		want string
	}{
		{client.TenantUpdate{Name: &name}, `{"name":"N"}`},
		{client.TenantUpdate{ClearRateLimit: true}, `{"rate_limit":null}`},
		{client.TenantUpdate{RateLimit: &client.RateLimit{RequestsPerSecond: 1.5, Burst: 3}}, `{"rate_limit":{"requests_per_second":1.5,"burst":3}}`},
	} {
		b, err := json.Marshal(tc.u)
		if err != nil || string(b) != tc.want {
			t.Errorf("%+v encodes as %s (%v), want %s", tc.u, b, err, tc.want)
		}
	}
	b, err := json.Marshal(client.KeyRequest{Name: "k", Role: client.RoleViewer})
	if err != nil || string(b) != `{"name":"k","role":"viewer"}` {
		t.Fatalf("key request %s, %v", b, err)
	}
}
