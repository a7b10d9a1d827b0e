package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/auth"
)

// tenantHeader chooses the tenant a request acts in.
const tenantHeader = "Switchyard-Tenant"

// caller is who made a request and the tenant it acts in.
type caller struct {
	key    *switchyard.APIKey // set for API keys
	user   *switchyard.User   // set for access tokens
	family string             // the user's session
	tenant string
	// role is the caller's role in tenant: RoleInstanceAdmin for instance
	// administrators, else a tenant role.
	role   string
	client *switchyard.Client // scoped to tenant
}

// actor names the caller in the audit log.
func (c *caller) actor() switchyard.AuditActor {
	switch {
	case c == nil:
		return switchyard.AuditActor{Type: "anonymous"}
	case c.key != nil:
		return switchyard.AuditActor{Type: "key", ID: c.key.ID}
	default:
		return switchyard.AuditActor{Type: "user", ID: c.user.ID}
	}
}

func (c *caller) instanceAdmin() bool { return c.role == switchyard.RoleInstanceAdmin }

// limitKey names the caller's rate-limit bucket.
func (c *caller) limitKey() string {
	if c.key != nil {
		return "key:" + c.key.ID
	}
	return "user:" + c.user.ID
}

// reqState travels with a request through the middleware: the outer
// middleware creates it, the inner ones and the handler fill it in, and the
// access log and the audit entry read it.
type reqState struct {
	caller *caller
	// target and detail describe what a mutating request changed, for the
	// audit log; handlers set target when no path value names it.
	target string
	detail string
}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey).(*reqState)
	if st == nil {
		return &reqState{} // a handler run outside the middleware (tests)
	}
	return st
}

// callerOf is the authenticated caller of a request; nil on public routes.
func callerOf(r *http.Request) *caller { return stateOf(r.Context()).caller }

// tc is the client of the tenant a request acts in.
func (s *Server) tc(r *http.Request) *switchyard.Client {
	if c := callerOf(r); c != nil {
		return c.client
	}
	return s.c
}

// serveRoute runs one route: authentication, tenant, rate limit, role, the
// handler, then the audit entry.
func (s *Server) serveRoute(rt route, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		if rt.action != "" {
			rec := w.(*statusRecorder)
			defer func() { s.audit(r, rt, rec.status) }()
		}
		if rt.public {
			if rt.limitIP && !s.limit(w, r, "ip:"+s.clientIP(r).String(), s.cfg.IPRateLimit) {
				return
			}
			h(w, r)
			return
		}
		c, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st.caller = c
		if !rt.instance {
			if err := s.enterTenant(r, c); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if !s.limitCaller(w, r, c) {
			return
		}
		if !allowed(rt, c) {
			writeError(w, r, http.StatusForbidden, codePermissionDenied,
				fmt.Sprintf("%s %s needs the %s role; you have %s", r.Method, r.URL.Path, needed(rt), describeRole(c)))
			return
		}
		h(w, r)
	})
}

// allowed decides a route for a caller who is in the tenant.
func allowed(rt route, c *caller) bool {
	if rt.instance {
		return rt.minRole == "" || c.instanceAdmin()
	}
	return switchyard.RoleAtLeast(c.role, rt.minRole)
}

func needed(rt route) string {
	if rt.instance {
		return switchyard.RoleInstanceAdmin
	}
	return rt.minRole
}

func describeRole(c *caller) string {
	if c.role == "" {
		return "none here"
	}
	return c.role
}

// authenticate resolves the bearer credential: an API key or an access
// token. The caller's tenant is not decided yet.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, fmt.Errorf("%w: missing credentials: send Authorization: Bearer <API key or access token>", switchyard.ErrUnauthenticated)
	}
	scheme, secret, ok := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, fmt.Errorf("%w: malformed Authorization header: want Bearer <API key or access token>", switchyard.ErrUnauthenticated)
	}
	if auth.LooksLikeJWT(secret) {
		u, family, err := s.c.AuthenticateAccessToken(r.Context(), secret)
		if err != nil {
			return nil, err
		}
		c := &caller{user: u, family: family}
		if u.InstanceAdmin {
			c.role = switchyard.RoleInstanceAdmin
		}
		return c, nil
	}
	k, err := s.c.Authenticate(r.Context(), secret)
	if err != nil {
		return nil, err
	}
	c := &caller{key: k, tenant: k.TenantID}
	if k.Role == switchyard.RoleInstanceAdmin {
		c.role = switchyard.RoleInstanceAdmin
	}
	return c, nil
}

// enterTenant decides the tenant a request acts in and the caller's role
// there. A tenant the caller may not enter answers ErrNotFound, exactly as
// one that does not exist.
func (s *Server) enterTenant(r *http.Request, c *caller) error {
	ctx := r.Context()
	want := r.Header.Get(tenantHeader)
	notFound := func(id string) error {
		return fmt.Errorf("%w: tenant %q not found", switchyard.ErrNotFound, id)
	}
	switch {
	case c.instanceAdmin():
		if want == "" {
			want = switchyard.DefaultTenant
			if c.key != nil {
				want = c.key.TenantID
			}
		}
		if _, err := s.c.Tenant(ctx, want); err != nil {
			if errors.Is(err, switchyard.ErrNotFound) {
				return notFound(want)
			}
			return err
		}
	case c.key != nil:
		if want == "" {
			want = c.key.TenantID
		}
		if want != c.key.TenantID {
			return notFound(want)
		}
		c.role = c.key.Role
	default:
		if want == "" {
			tenants, err := s.c.UserTenants(ctx, c.user.ID)
			if err != nil {
				return err
			}
			switch len(tenants) {
			case 0:
				return fmt.Errorf("%w: you are not a member of any tenant", switchyard.ErrNotFound)
			case 1:
				for id := range tenants {
					want = id
				}
			default:
				ids := make([]string, 0, len(tenants))
				for id := range tenants {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				return fmt.Errorf("%w: you belong to several tenants (%s): choose one with the %s header", switchyard.ErrInvalidArgument, strings.Join(ids, ", "), tenantHeader)
			}
		}
		role, err := s.c.UserRole(ctx, want, c.user.ID)
		if err != nil {
			return err
		}
		if role == "" {
			return notFound(want)
		}
		c.role = role
	}
	c.tenant = want
	c.client = s.c.ForTenant(want)
	return nil
}

// limitCaller applies the caller's rate limit: the tenant's, else the
// server's default.
func (s *Server) limitCaller(w http.ResponseWriter, r *http.Request, c *caller) bool {
	l := s.cfg.RateLimit
	tenant := c.tenant
	if tenant == "" && c.key != nil {
		tenant = c.key.TenantID
	}
	if tenant != "" {
		t, err := s.c.Tenant(r.Context(), tenant)
		if err == nil && t.RateLimit != nil {
			l = *t.RateLimit
		}
	}
	// One bucket per caller and tenant: an instance administrator or a
	// member of several tenants spends each tenant's limit separately.
	return s.limit(w, r, c.limitKey()+"@"+tenant, l)
}

// limit takes a token from bucket, setting the RateLimit headers; over the
// limit it answers 429 and returns false. A zero limit is no limit.
func (s *Server) limit(w http.ResponseWriter, r *http.Request, bucket string, l switchyard.RateLimit) bool {
	if l.RequestsPerSecond <= 0 {
		return true
	}
	d, err := s.c.RateLimit(r.Context(), bucket, l)
	if err != nil {
		// The limiter fails open and logs; an error here is a bug.
		s.log.Error("server: rate limit", "bucket", bucket, "err", err)
		return true
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.Reset)))
	if d.Allowed {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds(d.RetryAfter))))
	writeError(w, r, http.StatusTooManyRequests, codeRateLimited,
		fmt.Sprintf("rate limit of %g requests/s (burst %d) exceeded; retry in %ds", l.RequestsPerSecond, l.Burst, max(1, ceilSeconds(d.RetryAfter))))
	return false
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// audit records a mutating request's entry.
func (s *Server) audit(r *http.Request, rt route, status int) {
	st := stateOf(r.Context())
	c := st.caller
	result := switchyard.AuditOK
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		result = switchyard.AuditDenied
	case status >= 500:
		result = switchyard.AuditError
	case status >= 400:
		result = switchyard.AuditFailed
	}
	target := st.target
	if target == "" {
		target = r.PathValue("id") + r.PathValue("name")
	}
	tenant := ""
	if c != nil {
		tenant = c.tenant
		if tenant == "" && c.key != nil {
			tenant = c.key.TenantID
		}
	}
	e := switchyard.AuditEntry{
		TenantID: tenant, Actor: c.actor(), Action: rt.action, Target: target, Result: result,
		Status: status, ClientIP: s.clientIP(r).String(), RequestID: requestID(r.Context()), Detail: st.detail,
	}
	if tenant == "" {
		e.TenantID = switchyard.DefaultTenant
	}
	s.record(r, e)
}

// record writes an audit entry; the request's own context may already be
// ending, so a short one of its own bounds the wait.
func (s *Server) record(r *http.Request, e switchyard.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.c.RecordAudit(ctx, e); err != nil {
		s.log.Error("server: audit", "action", e.Action, "request_id", e.RequestID, "err", err)
	}
}
