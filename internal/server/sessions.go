package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	switchyard "github.com/switchyard-dev/switchyard"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login checks an email and password. Each client IP (limitIP on the
// route) and each account (LoginLimit) has a budget of attempts, so
// guessing is slow from anywhere.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	email := strings.ToLower(strings.TrimSpace(req.Email))
	attempt := switchyard.AuditEntry{Actor: switchyard.AuditActor{Type: "anonymous", ID: email}, Action: "auth.login_failed"}
	// A failed attempt on a known account goes to its tenants' logs,
	// where its administrators look.
	failed := func(status int, detail string) {
		attempt.Result, attempt.Status, attempt.Detail = switchyard.AuditDenied, status, detail
		userID := ""
		if u, err := s.c.UserByEmail(r.Context(), email); err == nil {
			userID = u.ID
		}
		s.authEvent(r, attempt, userID)
	}
	if !s.limit(w, r, "login:"+email, s.cfg.LoginLimit) {
		failed(http.StatusTooManyRequests, "too many attempts for this account")
		return
	}
	sess, err := s.c.Login(r.Context(), req.Email, req.Password)
	if err != nil {
		if errors.Is(err, switchyard.ErrUnauthenticated) {
			failed(http.StatusUnauthorized, "wrong email or password")
		}
		s.fail(w, r, err)
		return
	}
	s.authEvent(r, switchyard.AuditEntry{
		Actor: switchyard.AuditActor{Type: "user", ID: sess.User.ID}, Action: "auth.login",
		Result: switchyard.AuditOK, Status: http.StatusOK, Detail: email,
	}, sess.User.ID)
	writeJSON(w, http.StatusOK, sess)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	sess, err := s.c.Refresh(r.Context(), req.RefreshToken)
	switch {
	case errors.Is(err, switchyard.ErrTokenReused):
		s.authEvent(r, switchyard.AuditEntry{
			Actor: switchyard.AuditActor{Type: "user", ID: sess.User.ID}, Action: "auth.refresh_reused",
			Result: switchyard.AuditDenied, Status: http.StatusUnauthorized,
			Detail: "a refresh token was used twice; the session is revoked",
		}, sess.User.ID)
		s.fail(w, r, err)
		return
	case errors.Is(err, switchyard.ErrUnauthenticated):
		s.authEvent(r, switchyard.AuditEntry{
			Actor: switchyard.AuditActor{Type: "anonymous"}, Action: "auth.refresh_failed",
			Result: switchyard.AuditDenied, Status: http.StatusUnauthorized, Detail: clientMessage(err, switchyard.ErrUnauthenticated),
		}, "")
		s.fail(w, r, err)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.authEvent(r, switchyard.AuditEntry{
		Actor: switchyard.AuditActor{Type: "user", ID: sess.User.ID}, Action: "auth.refresh",
		Result: switchyard.AuditOK, Status: http.StatusOK,
	}, sess.User.ID)
	writeJSON(w, http.StatusOK, sess)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if c.user == nil {
		s.fail(w, r, invalidf("logout ends a user's session; an API key is revoked with DELETE /v1/keys/{id}"))
		return
	}
	if err := s.c.Logout(r.Context(), c.family); err != nil {
		s.fail(w, r, err)
		return
	}
	s.authEvent(r, switchyard.AuditEntry{
		Actor: c.actor(), Action: "auth.logout", Result: switchyard.AuditOK, Status: http.StatusNoContent,
	}, c.user.ID)
	w.WriteHeader(http.StatusNoContent)
}

// authEvent records an authentication event in the audit log of every
// tenant the user belongs to, so each tenant's administrators see what
// concerns their members; events without a known user go to the default
// tenant, the instance's own.
func (s *Server) authEvent(r *http.Request, e switchyard.AuditEntry, userID string) {
	e.ClientIP, e.RequestID = s.clientIP(r).String(), requestID(r.Context())
	tenants := map[string]string{}
	if userID != "" {
		var err error
		if tenants, err = s.c.UserTenants(r.Context(), userID); err != nil {
			s.log.Error("server: audit: tenants of user", "user", userID, "err", err)
		}
	}
	if len(tenants) == 0 {
		tenants = map[string]string{switchyard.DefaultTenant: ""}
	}
	for id := range tenants {
		e.TenantID = id
		s.record(r, e)
	}
}

// meResponse is GET /v1/me.
type meResponse struct {
	Type     string             `json:"type"` // "user" or "key"
	User     *switchyard.User   `json:"user"`
	Key      *switchyard.APIKey `json:"key"`
	TenantID *string            `json:"tenant_id"` // nil when no tenant is chosen
	Role     string             `json:"role"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	out := meResponse{Type: "key", Key: c.key, User: c.user, Role: c.role}
	if c.user != nil {
		out.Type = "user"
	}
	switch err := s.enterTenant(r, c); {
	case err == nil:
		out.TenantID, out.Role = &c.tenant, c.role
	case errors.Is(err, switchyard.ErrInvalidArgument) || errors.Is(err, switchyard.ErrNotFound):
		if r.Header.Get(tenantHeader) != "" {
			s.fail(w, r, err)
			return
		}
	default:
		s.fail(w, r, fmt.Errorf("me: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
