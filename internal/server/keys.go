package server

import (
	"net/http"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
)

// keyRequest is the body of POST /v1/keys.
type keyRequest struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// newKeyResponse shows a key's secret, once.
type newKeyResponse struct {
	Key    *switchyard.APIKey `json:"key"`
	Secret string             `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	c := callerOf(r)
	if req.Role == "" {
		s.fail(w, r, invalidf("field \"role\" is required: viewer, operator, admin, owner or instance_admin"))
		return
	}
	if switchyard.RoleRank(req.Role) == 0 {
		s.fail(w, r, invalidf("field \"role\": unknown role %q; want viewer, operator, admin, owner or instance_admin", req.Role))
		return
	}
	if err := mayGrant(c, req.Role); err != nil {
		s.fail(w, r, err)
		return
	}
	k := switchyard.NewAPIKey{Name: req.Name, Role: req.Role}
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(time.Now()) {
			s.fail(w, r, invalidf("field \"expires_at\" must be in the future"))
			return
		}
		k.ExpiresAt = *req.ExpiresAt
	}
	secret, key, err := c.client.CreateAPIKey(r.Context(), k)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := stateOf(r.Context())
	st.target, st.detail = key.ID, "role "+key.Role
	w.Header().Set("Location", "/v1/keys/"+key.ID)
	writeJSON(w, http.StatusCreated, newKeyResponse{Key: key, Secret: secret})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := s.pageQuery(w, r)
	if !ok {
		return
	}
	ks, next, err := s.tc(r).APIKeys(r.Context(), cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(ks, next))
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.tc(r).APIKey(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	k, err := c.client.APIKey(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Revoking a key takes its powers away: as granting, no one may do it
	// to a key above their own role.
	if err := mayGrant(c, k.Role); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := c.client.RevokeAPIKey(r.Context(), k.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
