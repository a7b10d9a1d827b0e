package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	switchyard "github.com/switchyard-dev/switchyard"
)

// tenantRequest is the body of POST /v1/tenants.
type tenantRequest struct {
	ID        string                `json:"id"`
	Name      string                `json:"name"`
	RateLimit *switchyard.RateLimit `json:"rate_limit"`
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	var req tenantRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	stateOf(r.Context()).target = req.ID
	t, err := s.c.CreateTenant(r.Context(), switchyard.Tenant{ID: req.ID, Name: req.Name, RateLimit: req.RateLimit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	writeJSON(w, http.StatusCreated, t)
}

// listTenants lists every tenant to instance administrators, and to others
// the tenants they belong to.
func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := s.pageQuery(w, r)
	if !ok {
		return
	}
	c := callerOf(r)
	if c.instanceAdmin() {
		ts, next, err := s.c.Tenants(r.Context(), cursor, limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, newPage(ts, next))
		return
	}
	ids, err := s.memberOf(r, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var ts []*switchyard.Tenant
	for _, id := range ids {
		t, err := s.c.Tenant(r.Context(), id)
		if errors.Is(err, switchyard.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ts = append(ts, t)
	}
	writeJSON(w, http.StatusOK, newPage(ts, ""))
}

// memberOf lists the tenants a caller who is not an instance administrator
// may act in.
func (s *Server) memberOf(r *http.Request, c *caller) ([]string, error) {
	if c.key != nil {
		return []string{c.key.TenantID}, nil
	}
	tenants, err := s.c.UserTenants(r.Context(), c.user.ID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(tenants))
	for id := range tenants {
		ids = append(ids, id)
	}
	return ids, nil
}

// visibleTenant returns a tenant the caller may see; ErrNotFound otherwise.
func (s *Server) visibleTenant(r *http.Request, id string) (*switchyard.Tenant, error) {
	c := callerOf(r)
	notFound := fmt.Errorf("%w: tenant %q not found", switchyard.ErrNotFound, id)
	if !c.instanceAdmin() {
		ids, err := s.memberOf(r, c)
		if err != nil {
			return nil, err
		}
		found := false
		for _, m := range ids {
			found = found || m == id
		}
		if !found {
			return nil, notFound
		}
	}
	t, err := s.c.Tenant(r.Context(), id)
	if errors.Is(err, switchyard.ErrNotFound) {
		return nil, notFound
	}
	return t, err
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := s.visibleTenant(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// tenantUpdate is the body of PATCH /v1/tenants/{id}: absent fields stay,
// "rate_limit": null returns the tenant to the server's default.
type tenantUpdate struct {
	Name      *string         `json:"name"`
	RateLimit json.RawMessage `json:"rate_limit"`
}

func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request) {
	var u tenantUpdate
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &u); err != nil {
		return
	}
	t, err := s.visibleTenant(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if u.Name == nil && u.RateLimit == nil {
		s.fail(w, r, invalidf("nothing to change: give \"name\" and/or \"rate_limit\""))
		return
	}
	if u.Name != nil {
		t.Name = *u.Name
	}
	if u.RateLimit != nil {
		t.RateLimit = nil
		if !bytes.Equal(bytes.TrimSpace(u.RateLimit), []byte("null")) {
			var l switchyard.RateLimit
			dec := json.NewDecoder(bytes.NewReader(u.RateLimit))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil {
				s.fail(w, r, invalidf("field \"rate_limit\": %s", describeJSONError(err, u.RateLimit)))
				return
			}
			t.RateLimit = &l
		}
	}
	t, err = s.c.UpdateTenant(r.Context(), *t)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
