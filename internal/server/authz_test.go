package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/auth"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// policy is the access policy, stated here on its own terms rather than
// read from the router: the weakest role that may call a route, "public"
// for routes that need no credentials, "any" for routes any caller may
// call (what they show depends on who asks).
func policy(method, pattern string) string {
	switch {
	case pattern == "/healthz" || pattern == "/readyz" || pattern == "/metrics" || pattern == "/v1/openapi.json",
		pattern == "/v1/auth/login" || pattern == "/v1/auth/refresh", pattern == "/v1/client.js",
		strings.HasPrefix(pattern, "/hooks/"): // inbound webhooks: the source's signature is the credential
		return "public"
	case pattern == "/v1/me" || pattern == "/v1/auth/logout":
		return "any"
	case strings.HasPrefix(pattern, "/v1/tenants"):
		if method == "GET" {
			return "any"
		}
		return switchyard.RoleInstanceAdmin // creating and changing tenants
	case strings.HasPrefix(pattern, "/v1/users"), strings.HasPrefix(pattern, "/v1/keys"), pattern == "/v1/audit":
		return switchyard.RoleAdmin // members, keys and the audit log (other users than oneself)
	case strings.HasPrefix(pattern, "/v1/rules") && method != "GET":
		return switchyard.RoleAdmin // rules change what every event does, as queue settings do
	case method == "POST" && pattern == "/v1/endpoints/{id}/redeliver":
		return switchyard.RoleOperator // sending a recorded event again, as retrying a job
	case (strings.HasPrefix(pattern, "/v1/sources") || strings.HasPrefix(pattern, "/v1/endpoints")) && method != "GET":
		return switchyard.RoleAdmin // sources and endpoints hold signing secrets (rotating them too)
	case method == "GET":
		return switchyard.RoleViewer // reading jobs, queues, events and rules
	case method == "POST" && pattern == "/v1/events":
		return switchyard.RoleOperator // sending events, which may enqueue jobs
	case method == "DELETE" && pattern == "/v1/jobs/{id}", method == "PATCH" && pattern == "/v1/queues/{name}":
		return switchyard.RoleAdmin // deleting jobs, queue settings
	case method == "POST" && (strings.HasPrefix(pattern, "/v1/jobs") || strings.HasPrefix(pattern, "/v1/queues/")):
		return switchyard.RoleOperator // running, cancelling, retrying jobs; pausing queues
	case method == "POST" && pattern == "/v1/topics/{topic}/publish":
		return switchyard.RoleOperator // publishing to user topics
	case method == "POST" && pattern == "/v1/tokens":
		return switchyard.RoleViewer // subscription tokens read no more than their issuer may
	}
	return "" // unknown: the test fails and asks for a rule
}

// side is where a cell's request points.
type side int

const (
	own         side = iota // the caller's tenant and its objects
	otherIDs                // the caller's tenant, another tenant's object ids
	otherTenant             // Switchyard-Tenant: another tenant, own object ids
)

func (s side) String() string { return [...]string{"own", "other-ids", "other-tenant"}[s] }

// credential is one way of calling.
type credential struct {
	name    string
	bearer  string // "" for none
	role    string // the role in acme; "" for a credential that must fail
	user    string // the user's email, for user credentials
	invalid bool
}

// TestAuthorizationMatrix calls every route of the router with every role
// (as an API key and as a user's access token), in its own tenant and
// against another tenant, and with every kind of bad credential, and checks
// each answer against the policy above.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		off := switchyard.RateLimit{RequestsPerSecond: -1}
		srv := servertest.Start(t, db, servertest.Options{
			NotStarted: true, // jobs stay where the fixtures put them
			Server:     server.Config{IPRateLimit: off, LoginLimit: off},
		})
		m := newMatrix(t, srv)
		cells := 0
		for _, rt := range server.Routes() {
			min := policy(rt.Method, rt.Pattern)
			if min == "" {
				t.Errorf("%s %s: no rule in policy says who may call it", rt.Method, rt.Pattern)
				continue
			}
			for _, cred := range m.creds {
				for _, sd := range []side{own, otherIDs, otherTenant} {
					want := expected(rt, min, cred, sd)
					if want == 0 {
						continue // the side does not apply to this route
					}
					got, body := m.call(rt, cred, sd)
					cells++
					if got != want {
						t.Errorf("%s %s as %s, %s: status %d, want %d: %s", rt.Method, rt.Pattern, cred.name, sd, got, want, body)
					}
				}
			}
		}
		t.Logf("%d cells", cells)
	})
}

// expected states the answer of one cell; 0 skips a side that does not
// apply.
func expected(rt server.Route, min string, cred credential, sd side) int {
	hasID := strings.Contains(rt.Pattern, "{id}")
	tenantScoped := min != "public" && min != "any" && !strings.HasPrefix(rt.Pattern, "/v1/tenants")
	switch {
	case sd == otherIDs && !hasID:
		return 0 // no object id to point elsewhere (queue names are per tenant)
	case sd == otherTenant && !tenantScoped && rt.Pattern != "/v1/me":
		return 0 // the route does not act in a tenant
	}
	if min == "public" {
		return success(rt, cred)
	}
	if cred.invalid {
		return http.StatusUnauthorized
	}
	instanceAdmin := cred.role == switchyard.RoleInstanceAdmin
	// Another tenant is invisible: naming it answers 404 before any role
	// is looked at, exactly as for a tenant that does not exist.
	if sd == otherTenant && !instanceAdmin {
		return http.StatusNotFound
	}
	allowed := min == "any" || switchyard.RoleAtLeast(cred.role, min)
	if !allowed {
		return http.StatusForbidden
	}
	switch {
	case rt.Pattern == "/v1/tenants/{id}" && instanceAdmin:
		return success(rt, cred) // instance administrators see every tenant
	case hasID && sd != own:
		return http.StatusNotFound // another tenant's object, as an unknown id
	}
	return success(rt, cred)
}

// success is the status of a call that is allowed.
func success(rt server.Route, cred credential) int {
	switch {
	case rt.Pattern == "/v1/auth/logout" && cred.user == "":
		return http.StatusBadRequest // API keys are revoked, not logged out
	case rt.Method == "DELETE", rt.Pattern == "/v1/auth/logout":
		return http.StatusNoContent
	case rt.Pattern == "/v1/ws":
		return http.StatusBadRequest // allowed, but a plain GET is not a WebSocket handshake
	case rt.Pattern == "/v1/topics/{topic}/publish", rt.Pattern == "/v1/endpoints/{id}/redeliver":
		return http.StatusAccepted
	case rt.Method == "POST" && (rt.Pattern == "/v1/jobs" || rt.Pattern == "/v1/jobs/batch" ||
		rt.Pattern == "/v1/tenants" || rt.Pattern == "/v1/users" || rt.Pattern == "/v1/keys" ||
		rt.Pattern == "/v1/events" || rt.Pattern == "/v1/rules" || rt.Pattern == "/v1/sources" ||
		rt.Pattern == "/v1/endpoints" || rt.Pattern == "/hooks/{source}"):
		return http.StatusCreated
	}
	return http.StatusOK
}

const matrixPassword = "a long enough password"

// matrix holds the tenants, credentials and fixture makers of the test.
type matrix struct {
	t     *testing.T
	srv   *servertest.Server
	admin *apiClient
	creds []credential
	seq   int
	// header is what the last fixture adds to its request's headers
	// (name, value, …): a webhook's signature.
	header []string
}

func newMatrix(t *testing.T, srv *servertest.Server) *matrix {
	m := &matrix{t: t, srv: srv, admin: &apiClient{t, srv.URL, srv.AdminKey}}
	for _, id := range []string{"acme", "globex"} {
		m.admin.want(201, "POST", "/v1/tenants", `{"id":"`+id+`"}`)
	}
	m.creds = append(m.creds, credential{name: "instance admin key", bearer: srv.AdminKey, role: switchyard.RoleInstanceAdmin})
	var owner string
	for _, role := range []string{switchyard.RoleViewer, switchyard.RoleOperator, switchyard.RoleAdmin, switchyard.RoleOwner} {
		var k struct{ Secret string }
		m.as("acme").want(201, "POST", "/v1/keys", `{"name":"`+role+`","role":"`+role+`"}`).decode(t, &k)
		m.creds = append(m.creds, credential{name: role + " key", bearer: k.Secret, role: role})
		email := role + "@acme.test"
		m.as("acme").want(201, "POST", "/v1/users", fmt.Sprintf(`{"email":%q,"password":%q,"role":%q}`, email, matrixPassword, role))
		m.creds = append(m.creds, credential{name: role + " user", bearer: m.login(email).AccessToken, role: role, user: email})
		owner = email
	}
	ownerSession := m.login(owner)
	var me struct{ User struct{ ID string } }
	(&apiClient{t, srv.URL, ownerSession.AccessToken}).want(200, "GET", "/v1/me", "").decode(t, &me)
	secret := signingKey(t, srv)
	now := time.Now()
	expired, err := auth.SignAccess(secret, me.User.ID, ownerSession.familyID(t), now.Add(-time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := auth.SignAccess([]byte("not the server's key, but 32 b.."), me.User.ID, ownerSession.familyID(t), now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		b64(fmt.Appendf(nil, `{"iss":"switchyard","sub":%q,"sid":%q,"exp":%d}`, me.User.ID, ownerSession.familyID(t), now.Add(time.Hour).Unix())) + "."
	m.creds = append(m.creds,
		credential{name: "no credentials", invalid: true},
		credential{name: "expired token", bearer: expired, invalid: true},
		credential{name: "malformed token", bearer: "abc.def.ghi", invalid: true},
		credential{name: "alg=none token", bearer: none, invalid: true},
		credential{name: "token signed with the wrong key", bearer: wrongKey, invalid: true},
		credential{name: "unknown API key", bearer: "sy_" + rand.Text(), invalid: true},
	)
	return m
}

// as is the instance administrator acting in a tenant.
func (m *matrix) as(tenant string) *tenantClient {
	return &tenantClient{m.admin, tenant}
}

type tenantClient struct {
	c      *apiClient
	tenant string
}

func (tc *tenantClient) want(status int, method, path, body string) response {
	tc.c.t.Helper()
	r := tc.c.do(method, path, body, "Switchyard-Tenant", tc.tenant)
	if r.status != status {
		tc.c.t.Fatalf("fixture: %s %s %s in %s: status %d, want %d: %s", method, path, body, tc.tenant, r.status, status, r.body)
	}
	return r
}

type session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// familyID reads the session's id from its access token's claims.
func (s session) familyID(t *testing.T) string {
	parts := strings.Split(s.AccessToken, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sid string }
	if err := json.Unmarshal(b, &c); err != nil || c.Sid == "" {
		t.Fatalf("claims %s: %v", b, err)
	}
	return c.Sid
}

func (m *matrix) login(email string) session {
	var s session
	(&apiClient{m.t, m.srv.URL, ""}).want(200, "POST", "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, matrixPassword)).decode(m.t, &s)
	return s
}

func (m *matrix) unique(prefix string) string {
	m.seq++
	return fmt.Sprintf("%s%d", prefix, m.seq)
}

// fixture makes what a call to rt needs in tenant: a fresh object where
// the call changes it. It returns the path and the body.
func (m *matrix) fixture(rt server.Route, tenant string, cred credential) (path, body string) {
	in := m.as(tenant)
	id := func(r response) string {
		var v struct{ ID string }
		r.decode(m.t, &v)
		return v.ID
	}
	job := func() string { return id(in.want(201, "POST", "/v1/jobs", `{"kind":"noop","delay":3600}`)) }
	viewerUser := func() string {
		return id(in.want(201, "POST", "/v1/users", fmt.Sprintf(`{"email":%q,"password":%q,"role":"viewer"}`, m.unique("member")+"@"+tenant+".test", matrixPassword)))
	}
	viewerKey := func() string {
		var k struct{ Key struct{ ID string } }
		in.want(201, "POST", "/v1/keys", `{"name":"fixture","role":"viewer"}`).decode(m.t, &k)
		return k.Key.ID
	}
	event := func() string {
		return id(in.want(201, "POST", "/v1/events", `{"specversion":"1.0","id":"`+m.unique("e")+`","source":"/matrix","type":"matrix.test"}`))
	}
	rule := func() string {
		return id(in.want(201, "POST", "/v1/rules", `{"name":"`+m.unique("rule")+`","types":["matrix.*"],"actions":[{"type":"publish","topic":"matrix"}]}`))
	}
	source := func(spec string) string {
		return id(in.want(201, "POST", "/v1/sources", `{"name":"`+m.unique("source")+`",`+spec+`}`))
	}
	endpoint := func() string {
		return id(in.want(201, "POST", "/v1/endpoints", `{"name":"`+m.unique("endpoint")+`","url":"https://hooks.example.com/in","types":["matrix.*"]}`))
	}
	m.header = nil
	switch rt.Method + " " + rt.Pattern {
	case "POST /v1/sources":
		return rt.Pattern, `{"name":"` + m.unique("source") + `","scheme":"github"}`
	case "GET /v1/sources/{id}", "DELETE /v1/sources/{id}":
		return "/v1/sources/" + source(`"scheme":"github"`), ""
	case "PUT /v1/sources/{id}":
		return "/v1/sources/" + source(`"scheme":"github"`), `{"name":"` + m.unique("renamed") + `","scheme":"stripe"}`
	case "POST /v1/endpoints":
		return rt.Pattern, `{"name":"` + m.unique("endpoint") + `","url":"https://hooks.example.com/in","types":["matrix.*"]}`
	case "GET /v1/endpoints/{id}", "DELETE /v1/endpoints/{id}", "POST /v1/endpoints/{id}/rotate-secret", "GET /v1/endpoints/{id}/attempts":
		return strings.Replace(rt.Pattern, "{id}", endpoint(), 1), ""
	case "PUT /v1/endpoints/{id}":
		return "/v1/endpoints/" + endpoint(), `{"name":"` + m.unique("renamed") + `","url":"https://hooks.example.com/other","types":["matrix.*"],"disabled":true}`
	case "POST /v1/endpoints/{id}/redeliver":
		return "/v1/endpoints/" + endpoint() + "/redeliver", `{"event_id":"` + event() + `"}`
	case "POST /hooks/{source}":
		// Signed by GitHub's scheme with the source's secret; every call
		// is a new delivery.
		body := `{"zen":"matrix"}`
		m.header = []string{"X-Hub-Signature-256", githubSignature("matrix secret", body),
			"X-GitHub-Event", "push", "X-GitHub-Delivery", m.unique("delivery")}
		return "/hooks/" + source(`"scheme":"github","secrets":["matrix secret"]`), body
	case "GET /hooks/{source}":
		src := source(`"scheme":"meta","secrets":["matrix secret"],"verify_token":"matrix token"`)
		return "/hooks/" + src + "?hub.mode=subscribe&hub.verify_token=matrix+token&hub.challenge=1234", ""
	case "POST /v1/events":
		return rt.Pattern, `{"specversion":"1.0","id":"` + m.unique("e") + `","source":"/matrix","type":"matrix.test"}`
	case "GET /v1/events/{id}":
		return "/v1/events/" + event(), ""
	case "POST /v1/rules":
		return rt.Pattern, `{"name":"` + m.unique("rule") + `","types":["matrix.*"],"actions":[{"type":"publish","topic":"matrix"}]}`
	case "GET /v1/rules/{id}", "DELETE /v1/rules/{id}":
		return "/v1/rules/" + rule(), ""
	case "PUT /v1/rules/{id}":
		return "/v1/rules/" + rule(), `{"name":"` + m.unique("renamed") + `","types":["matrix.*"],"enabled":false,"actions":[{"type":"publish","topic":"matrix"}]}`
	case "POST /v1/auth/login":
		return rt.Pattern, fmt.Sprintf(`{"email":"owner@acme.test","password":%q}`, matrixPassword)
	case "POST /v1/auth/refresh":
		return rt.Pattern, fmt.Sprintf(`{"refresh_token":%q}`, m.login("owner@acme.test").RefreshToken)
	case "POST /v1/tenants":
		return rt.Pattern, `{"id":"` + m.unique("t") + `"}`
	case "GET /v1/tenants/{id}":
		return "/v1/tenants/" + tenant, ""
	case "PATCH /v1/tenants/{id}":
		return "/v1/tenants/" + tenant, `{"name":"renamed"}`
	case "POST /v1/users":
		return rt.Pattern, fmt.Sprintf(`{"email":%q,"password":%q,"role":"viewer"}`, m.unique("new")+"@acme.test", matrixPassword)
	case "GET /v1/users/{id}", "DELETE /v1/users/{id}":
		return "/v1/users/" + viewerUser(), ""
	case "PATCH /v1/users/{id}":
		return "/v1/users/" + viewerUser(), `{"role":"operator"}`
	case "POST /v1/keys":
		return rt.Pattern, `{"name":"new","role":"viewer"}`
	case "GET /v1/keys/{id}", "DELETE /v1/keys/{id}":
		return "/v1/keys/" + viewerKey(), ""
	case "POST /v1/jobs":
		return rt.Pattern, `{"kind":"noop","delay":3600}`
	case "POST /v1/jobs/batch":
		return rt.Pattern, `{"jobs":[{"kind":"noop","delay":3600}]}`
	case "GET /v1/jobs/{id}", "DELETE /v1/jobs/{id}", "POST /v1/jobs/{id}/cancel":
		return strings.Replace(rt.Pattern, "{id}", job(), 1), ""
	case "POST /v1/jobs/{id}/retry":
		j := job()
		in.want(200, "POST", "/v1/jobs/"+j+"/cancel", "")
		return "/v1/jobs/" + j + "/retry", ""
	case "PATCH /v1/queues/{name}":
		return "/v1/queues/matrix", `{"concurrency":5}`
	case "POST /v1/queues/{name}/pause", "POST /v1/queues/{name}/resume":
		return strings.Replace(rt.Pattern, "{name}", "matrix", 1), ""
	case "GET /v1/stream":
		return "/v1/stream?topics=matrix,job.1", ""
	case "POST /v1/topics/{topic}/publish":
		return "/v1/topics/matrix.chat/publish", `{"event":"message","data":{"n":1}}`
	case "POST /v1/tokens":
		return rt.Pattern, `{"topics":["matrix.chat","workflow.*"],"ttl_seconds":60}`
	}
	if strings.Contains(rt.Pattern, "{") || rt.Method != "GET" && rt.Method != "POST" {
		m.t.Fatalf("no fixture for %s %s", rt.Method, rt.Pattern)
	}
	if rt.Method == "POST" && rt.Pattern != "/v1/auth/logout" {
		m.t.Fatalf("no fixture body for %s %s", rt.Method, rt.Pattern)
	}
	return rt.Pattern, ""
}

// call makes one cell's request and returns its status and body.
func (m *matrix) call(rt server.Route, cred credential, sd side) (int, string) {
	objects, acting := "acme", ""
	switch sd {
	case otherIDs:
		objects = "globex"
	case otherTenant:
		acting = "globex"
	}
	if acting == "" && cred.role == switchyard.RoleInstanceAdmin {
		acting = "acme" // its own tenant is default; here it works in acme
	}
	path, body := m.fixture(rt, objects, cred)
	bearer := cred.bearer
	if rt.Pattern == "/v1/auth/logout" && cred.user != "" {
		bearer = m.login(cred.user).AccessToken // logging out ends the session; keep the shared one
	}
	c := &apiClient{m.t, m.srv.URL, bearer}
	header := m.header
	if acting != "" {
		header = append(header, "Switchyard-Tenant", acting)
	}
	var r response
	if rt.Pattern == "/v1/stream" {
		r = c.status(rt.Method, path, header...) // the stream does not end by itself
	} else {
		r = c.do(rt.Method, path, body, header...)
	}
	if r.status >= 400 {
		r.errorCode(m.t) // every refusal is in the error shape
	}
	return r.status, string(r.body)
}

// signingKey reads the server's access-token key from its database, to
// forge an expired token.
func signingKey(t *testing.T, srv *servertest.Server) []byte {
	t.Helper()
	k, err := srv.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return k
}
