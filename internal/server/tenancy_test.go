package server_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// auditPage is GET /v1/audit's answer.
type auditPage struct {
	Items []switchyard.AuditEntry `json:"items"`
}

// hasAudit reports whether the page holds an entry of action with result.
func (p auditPage) has(action, result string) bool {
	for _, e := range p.Items {
		if e.Action == action && e.Result == result {
			return true
		}
	}
	return false
}

// The walk a new user takes: create a tenant and a viewer key; the key
// reads but cannot cancel; another tenant's job is not found; the audit log
// shows all of it; a burst is answered 429.
func TestTenantWalk(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		admin := &apiClient{t, srv.URL, srv.AdminKey}
		admin.want(201, "POST", "/v1/tenants", `{"id":"acme","name":"Acme","rate_limit":{"requests_per_second":1,"burst":5}}`)
		admin.want(201, "POST", "/v1/tenants", `{"id":"globex"}`)
		if r := admin.do("POST", "/v1/tenants", `{"id":"acme"}`); r.status != 409 {
			t.Fatalf("creating a tenant twice: %d %s", r.status, r.body)
		}
		var acmeJob, globexJob switchyard.JobRow
		admin.do("POST", "/v1/jobs", `{"kind":"noop","delay":3600}`, "Switchyard-Tenant", "acme").decode(t, &acmeJob)
		admin.do("POST", "/v1/jobs", `{"kind":"noop","delay":3600}`, "Switchyard-Tenant", "globex").decode(t, &globexJob)

		var created struct {
			Key    switchyard.APIKey `json:"key"`
			Secret string            `json:"secret"`
		}
		r := admin.do("POST", "/v1/keys", `{"name":"dashboard","role":"viewer"}`, "Switchyard-Tenant", "acme")
		if r.status != 201 {
			t.Fatalf("create key: %d %s", r.status, r.body)
		}
		r.decode(t, &created)
		if created.Key.TenantID != "acme" || created.Key.Role != "viewer" || created.Secret == "" {
			t.Fatalf("created key %+v", created)
		}
		viewer := &apiClient{t, srv.URL, created.Secret}
		if got := viewer.want(200, "GET", "/v1/jobs/"+acmeJob.ID, "").job(t); got.ID != acmeJob.ID {
			t.Fatalf("viewer read %+v", got)
		}
		if r := viewer.do("POST", "/v1/jobs/"+acmeJob.ID+"/cancel", ""); r.status != 403 {
			t.Fatalf("viewer cancel: %d %s", r.status, r.body)
		} else if code, _ := r.errorCode(t); code != "permission_denied" {
			t.Fatalf("viewer cancel: code %s", code)
		}
		unknown := viewer.do("GET", "/v1/jobs/999999999", "")
		other := viewer.do("GET", "/v1/jobs/"+globexJob.ID, "")
		if unknown.status != 404 || other.status != 404 {
			t.Fatalf("unknown id %d, another tenant's id %d; want 404 both", unknown.status, other.status)
		}
		if r := viewer.do("GET", "/v1/jobs", "", "Switchyard-Tenant", "globex"); r.status != 404 {
			t.Fatalf("viewer naming another tenant: %d %s", r.status, r.body)
		}

		// The tenant's limit is 5 at once, then 1 a second: the viewer has
		// used 5 requests above; the next is refused with the headers.
		r = viewer.do("GET", "/v1/jobs", "")
		for i := 0; r.status != 429 && i < 10; i++ {
			r = viewer.do("GET", "/v1/jobs", "")
		}
		if r.status != 429 {
			t.Fatalf("a burst was never refused: %d", r.status)
		}
		if code, _ := r.errorCode(t); code != "rate_limited" {
			t.Errorf("429 code %q", code)
		}
		for _, h := range []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			if r.header.Get(h) == "" {
				t.Errorf("429 without %s", h)
			}
		}
		if r.header.Get("RateLimit-Limit") != "5" || r.header.Get("RateLimit-Remaining") != "0" {
			t.Errorf("RateLimit-Limit %q Remaining %q; want 5 and 0", r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"))
		}
		if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}

		// The audit log of acme shows the tenant's changes and refusals,
		// and nothing of globex.
		var log auditPage
		admin.do("GET", "/v1/audit", "", "Switchyard-Tenant", "acme").decode(t, &log)
		for _, want := range [][2]string{{"keys.create", "ok"}, {"jobs.create", "ok"}, {"jobs.cancel", "denied"}} {
			if !log.has(want[0], want[1]) {
				t.Errorf("acme's audit log lacks %s %s: %+v", want[0], want[1], log.Items)
			}
		}
		for _, e := range log.Items {
			if e.TenantID != "acme" {
				t.Errorf("acme's audit log shows %+v", e)
			}
			if e.RequestID == "" || e.ClientIP == "" || e.Time.IsZero() || e.Actor.Type == "" {
				t.Errorf("entry lacks request id, client ip, time or actor: %+v", e)
			}
		}
		// A viewer may not read it, nor PATCH its way to more.
		if r := viewer.do("GET", "/v1/audit", ""); r.status != 403 && r.status != 429 {
			t.Errorf("viewer reading the audit log: %d", r.status)
		}
	})
}

// Bodies cannot carry what the caller may not set: tenant ids and
// ownership fields are unknown fields, roles above the caller's are
// refused, and nothing is written.
func TestMassAssignment(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		admin := &apiClient{t, srv.URL, srv.AdminKey}
		admin.want(201, "POST", "/v1/tenants", `{"id":"acme"}`)
		admin.want(201, "POST", "/v1/tenants", `{"id":"globex"}`)
		var k struct{ Secret string }
		admin.do("POST", "/v1/keys", `{"name":"a","role":"admin"}`, "Switchyard-Tenant", "acme").decode(t, &k)
		acmeAdmin := &apiClient{t, srv.URL, k.Secret}
		cases := []struct{ method, path, body, code string }{
			{"POST", "/v1/jobs", `{"kind":"noop","tenant_id":"globex"}`, "invalid_argument"},
			{"POST", "/v1/keys", `{"name":"x","role":"viewer","tenant_id":"globex"}`, "invalid_argument"},
			{"POST", "/v1/keys", `{"name":"x","role":"owner"}`, "permission_denied"},
			{"POST", "/v1/keys", `{"name":"x","role":"instance_admin"}`, "permission_denied"},
			{"POST", "/v1/users", `{"email":"e@x.test","password":"a long enough password","role":"owner"}`, "permission_denied"},
			{"POST", "/v1/users", `{"email":"e@x.test","password":"a long enough password","role":"viewer","instance_admin":true}`, "permission_denied"},
			{"POST", "/v1/users", `{"email":"e@x.test","password":"a long enough password","role":"viewer","tenant_id":"globex"}`, "invalid_argument"},
			{"POST", "/v1/tenants", `{"id":"mine"}`, "permission_denied"},
			{"PATCH", "/v1/tenants/acme", `{"rate_limit":null}`, "permission_denied"},
		}
		for _, c := range cases {
			r := acmeAdmin.do(c.method, c.path, c.body)
			if r.status < 400 {
				t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, r.status, r.body)
				continue
			}
			if code, _ := r.errorCode(t); code != c.code {
				t.Errorf("%s %s %s: code %s, want %s", c.method, c.path, c.body, code, c.code)
			}
		}
		// Nothing was written: globex has no jobs or keys, acme has only
		// the admin key and no users.
		var jobs, keys, users struct{ Items []any }
		admin.do("GET", "/v1/jobs", "", "Switchyard-Tenant", "globex").decode(t, &jobs)
		admin.do("GET", "/v1/keys", "", "Switchyard-Tenant", "globex").decode(t, &keys)
		admin.do("GET", "/v1/users", "", "Switchyard-Tenant", "acme").decode(t, &users)
		if len(jobs.Items) != 0 || len(keys.Items) != 0 || len(users.Items) != 0 {
			t.Errorf("refused requests wrote: %d jobs, %d keys in globex, %d users in acme", len(jobs.Items), len(keys.Items), len(users.Items))
		}
		if r := admin.want(200, "GET", "/v1/tenants", ""); len(r.body) == 0 {
			t.Fatal("no tenants")
		}
	})
}

// Users log in, refresh (rotating the refresh token), and a reused refresh
// token ends the whole session; logout ends access tokens too; role
// changes apply at once.
func TestSessions(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		admin := &apiClient{t, srv.URL, srv.AdminKey}
		admin.want(201, "POST", "/v1/tenants", `{"id":"acme"}`)
		var u switchyard.User
		admin.do("POST", "/v1/users", `{"email":"Ana@Example.test","password":"a long enough password","role":"operator"}`, "Switchyard-Tenant", "acme").decode(t, &u)
		if u.Email != "ana@example.test" || u.Role != "operator" {
			t.Fatalf("user %+v", u)
		}
		anon := &apiClient{t, srv.URL, ""}
		if r := anon.do("POST", "/v1/auth/login", `{"email":"ana@example.test","password":"wrong password!!"}`); r.status != 401 {
			t.Fatalf("wrong password: %d %s", r.status, r.body)
		}
		if r := anon.do("POST", "/v1/auth/login", `{"email":"nobody@example.test","password":"wrong password!!"}`); r.status != 401 {
			t.Fatalf("unknown user: %d %s", r.status, r.body)
		}
		var s1 switchyard.Session
		anon.want(200, "POST", "/v1/auth/login", `{"email":"ana@example.test","password":"a long enough password"}`).decode(t, &s1)
		if s1.TokenType != "Bearer" || s1.ExpiresIn != 1800 || s1.RefreshExpiresIn != 7*24*3600 || s1.User.ID != u.ID {
			t.Fatalf("session %+v", s1)
		}
		ana := &apiClient{t, srv.URL, s1.AccessToken}
		ana.want(201, "POST", "/v1/jobs", `{"kind":"noop","delay":3600}`)

		var s2 switchyard.Session
		anon.want(200, "POST", "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, s1.RefreshToken)).decode(t, &s2)
		if s2.RefreshToken == s1.RefreshToken || s2.AccessToken == "" {
			t.Fatal("refresh did not rotate the token")
		}
		(&apiClient{t, srv.URL, s2.AccessToken}).want(200, "GET", "/v1/me", "")
		// The old refresh token again: taken for stolen, the family ends.
		if r := anon.do("POST", "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, s1.RefreshToken)); r.status != 401 {
			t.Fatalf("reused refresh token: %d %s", r.status, r.body)
		}
		if r := anon.do("POST", "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, s2.RefreshToken)); r.status != 401 {
			t.Fatalf("the family's newest refresh token after a reuse: %d %s", r.status, r.body)
		}
		if r := (&apiClient{t, srv.URL, s2.AccessToken}).do("GET", "/v1/me", ""); r.status != 401 {
			t.Fatalf("an access token of the revoked family: %d %s", r.status, r.body)
		}

		// A new session; a role change applies to it at once.
		var s3 switchyard.Session
		anon.want(200, "POST", "/v1/auth/login", `{"email":"ana@example.test","password":"a long enough password"}`).decode(t, &s3)
		ana = &apiClient{t, srv.URL, s3.AccessToken}
		admin.do("PATCH", "/v1/users/"+u.ID, `{"role":"viewer"}`, "Switchyard-Tenant", "acme")
		if r := ana.do("POST", "/v1/jobs", `{"kind":"noop"}`); r.status != 403 {
			t.Fatalf("after demotion to viewer: %d %s", r.status, r.body)
		}
		ana.want(204, "POST", "/v1/auth/logout", "")
		if r := ana.do("GET", "/v1/me", ""); r.status != 401 {
			t.Fatalf("after logout: %d %s", r.status, r.body)
		}

		var log auditPage
		admin.do("GET", "/v1/audit?action=auth.", "", "Switchyard-Tenant", "acme").decode(t, &log)
		for _, want := range [][2]string{{"auth.login", "ok"}, {"auth.login_failed", "denied"}, {"auth.refresh", "ok"}, {"auth.refresh_reused", "denied"}, {"auth.logout", "ok"}} {
			if !log.has(want[0], want[1]) {
				t.Errorf("audit log lacks %s %s: %+v", want[0], want[1], log.Items)
			}
		}
		var roles auditPage
		admin.do("GET", "/v1/audit?action=users.update", "", "Switchyard-Tenant", "acme").decode(t, &roles)
		if len(roles.Items) != 1 || roles.Items[0].Detail != "role operator -> viewer" || roles.Items[0].Target != u.ID {
			t.Errorf("role change entries: %+v", roles.Items)
		}
	})
}

// Login attempts are limited per account and per client IP.
func TestLoginSlowDown(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + testdb.SQLitePath(t)
	srv := servertest.Start(t, db, servertest.Options{NotStarted: true, Server: server.Config{
		LoginLimit:  switchyard.RateLimit{RequestsPerSecond: 0.001, Burst: 3},
		IPRateLimit: switchyard.RateLimit{RequestsPerSecond: 0.001, Burst: 6},
	}})
	anon := &apiClient{t, srv.URL, ""}
	try := func(email string) int {
		return anon.do("POST", "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":"wrong password!!"}`, email)).status
	}
	for i := range 3 {
		if got := try("a@example.test"); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, got)
		}
	}
	if got := try("a@example.test"); got != http.StatusTooManyRequests {
		t.Fatalf("4th attempt on one account: %d, want 429", got)
	}
	// Another account from the same IP still has attempts, until the IP's
	// budget (6, of which 4 are spent) runs out.
	if got := try("b@example.test"); got != http.StatusUnauthorized {
		t.Fatalf("another account: %d", got)
	}
	try("b@example.test")
	if got := try("c@example.test"); got != http.StatusTooManyRequests {
		t.Fatalf("7th attempt from one IP: %d, want 429", got)
	}
}
