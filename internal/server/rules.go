package server

import (
	"net/http"

	switchyard "github.com/switchyard-dev/switchyard"
)

// ruleRequest is the body of POST /v1/rules and PUT /v1/rules/{id}: the
// whole rule. Enabled defaults to true.
type ruleRequest struct {
	Name    string                  `json:"name"`
	Types   []string                `json:"types"`
	Filter  string                  `json:"filter"`
	Enabled *bool                   `json:"enabled"`
	Actions []switchyard.RuleAction `json:"actions"`
}

func (s *Server) decodeRule(w http.ResponseWriter, r *http.Request) (string, switchyard.RuleSpec, bool) {
	var req ruleRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return "", switchyard.RuleSpec{}, false
	}
	spec := switchyard.RuleSpec{Types: req.Types, Filter: req.Filter, Enabled: req.Enabled == nil || *req.Enabled, Actions: req.Actions}
	return req.Name, spec, true
}

func (s *Server) createRule(w http.ResponseWriter, r *http.Request) {
	name, spec, ok := s.decodeRule(w, r)
	if !ok {
		return
	}
	rule, err := s.tc(r).CreateRule(r.Context(), name, spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := stateOf(r.Context())
	st.target, st.detail = rule.ID, "name "+rule.Name
	w.Header().Set("Location", "/v1/rules/"+rule.ID)
	writeJSON(w, http.StatusCreated, rule)
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := s.pageQuery(w, r)
	if !ok {
		return
	}
	rs, next, err := s.tc(r).Rules(r.Context(), cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(rs, next))
}

func (s *Server) getRule(w http.ResponseWriter, r *http.Request) {
	rule, err := s.tc(r).Rule(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) updateRule(w http.ResponseWriter, r *http.Request) {
	name, spec, ok := s.decodeRule(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	rule, err := s.tc(r).UpdateRule(r.Context(), id, name, spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).detail = "name " + rule.Name
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	if err := s.tc(r).DeleteRule(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
