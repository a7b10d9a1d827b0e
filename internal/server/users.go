package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	switchyard "github.com/switchyard-dev/switchyard"
)

// userRequest is the body of POST /v1/users.
type userRequest struct {
	Email         string `json:"email"`
	Password      string `json:"password"`
	Role          string `json:"role"`
	InstanceAdmin bool   `json:"instance_admin"`
}

// validTenantRole refuses a missing or unknown member role before any
// permission is weighed, so that a typo is a 400, not a 403.
func validTenantRole(role string) error {
	switch role {
	case switchyard.RoleViewer, switchyard.RoleOperator, switchyard.RoleAdmin, switchyard.RoleOwner:
		return nil
	case "":
		return invalidf("field \"role\" is required: viewer, operator, admin or owner")
	}
	return invalidf("field \"role\": unknown role %q; want viewer, operator, admin or owner", role)
}

// mayGrant reports whether the caller may give (or take away) role: no one
// hands out more than their own.
func mayGrant(c *caller, role string) error {
	if role != "" && !switchyard.RoleAtLeast(c.role, role) {
		return fmt.Errorf("%w: only %s or above may grant or remove the %s role; you have %s",
			switchyard.ErrPermissionDenied, role, role, describeRole(c))
	}
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	c := callerOf(r)
	if err := validTenantRole(req.Role); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := mayGrant(c, req.Role); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.InstanceAdmin && !c.instanceAdmin() {
		s.fail(w, r, fmt.Errorf("%w: only an instance administrator may create instance administrators", switchyard.ErrPermissionDenied))
		return
	}
	u, err := c.client.AddMember(r.Context(), switchyard.NewUser{Email: req.Email, Password: req.Password, Role: req.Role, InstanceAdmin: req.InstanceAdmin})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := stateOf(r.Context())
	st.target, st.detail = u.ID, "role "+u.Role
	w.Header().Set("Location", "/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := s.pageQuery(w, r)
	if !ok {
		return
	}
	us, next, err := s.tc(r).Members(r.Context(), cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(us, next))
}

// self reports whether the request is about the calling user.
func self(c *caller, id string) bool { return c.user != nil && c.user.ID == id }

// member reads a member of the caller's tenant; admins may read anyone,
// others only themselves.
func (s *Server) member(r *http.Request) (*switchyard.User, error) {
	c, id := callerOf(r), r.PathValue("id")
	if !self(c, id) && !switchyard.RoleAtLeast(c.role, admin) {
		return nil, fmt.Errorf("%w: reading other members needs the admin role; you have %s", switchyard.ErrPermissionDenied, describeRole(c))
	}
	u, err := c.client.Member(r.Context(), id)
	if errors.Is(err, switchyard.ErrNotFound) {
		return nil, fmt.Errorf("%w: user %q not found", switchyard.ErrNotFound, id)
	}
	return u, err
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.member(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// userUpdate is the body of PATCH /v1/users/{id}.
type userUpdate struct {
	Role     *string `json:"role"`
	Password *string `json:"password"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	var req userUpdate
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	if req.Role == nil && req.Password == nil {
		s.fail(w, r, invalidf("nothing to change: give \"role\" and/or \"password\""))
		return
	}
	c, id := callerOf(r), r.PathValue("id")
	u, err := s.member(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Check every part before changing any, so a refused request changes
	// nothing.
	if req.Role != nil {
		if !switchyard.RoleAtLeast(c.role, admin) {
			s.fail(w, r, fmt.Errorf("%w: changing roles needs the admin role; you have %s", switchyard.ErrPermissionDenied, describeRole(c)))
			return
		}
		if err := validTenantRole(*req.Role); err != nil {
			s.fail(w, r, err)
			return
		}
		for _, role := range []string{*req.Role, u.Role} {
			if err := mayGrant(c, role); err != nil {
				s.fail(w, r, err)
				return
			}
		}
	}
	if req.Password != nil && !self(c, id) && !c.instanceAdmin() {
		s.fail(w, r, fmt.Errorf("%w: only the user or an instance administrator may set a password", switchyard.ErrPermissionDenied))
		return
	}
	st := stateOf(r.Context())
	var changed []string
	if req.Role != nil {
		before := u.Role
		if u, err = c.client.SetMemberRole(r.Context(), id, *req.Role); err != nil {
			s.fail(w, r, err)
			return
		}
		changed = append(changed, "role "+before+" -> "+u.Role)
	}
	if req.Password != nil {
		if err := c.client.SetPassword(r.Context(), id, *req.Password); err != nil {
			s.fail(w, r, err)
			return
		}
		changed = append(changed, "password")
	}
	st.detail = strings.Join(changed, "; ")
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	u, err := s.member(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := mayGrant(c, u.Role); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := c.client.RemoveMember(r.Context(), u.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).detail = "role " + u.Role
	w.WriteHeader(http.StatusNoContent)
}
