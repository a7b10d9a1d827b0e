package server

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
)

// timeRange reads the query parameters since and until (RFC 3339; zero
// when absent).
func timeRange(q url.Values) (since, until time.Time, err error) {
	for name, t := range map[string]*time.Time{"since": &since, "until": &until} {
		if v := q.Get(name); v != "" {
			if *t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return since, until, invalidf("query parameter %q: want an RFC 3339 time like 2026-11-28T12:00:00Z, got %q", name, v)
			}
		}
	}
	return since, until, nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, "actor", "action", "target", "result", "since", "until", "all_tenants", "limit", "cursor"); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	aq := switchyard.AuditQuery{
		ActorID: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Result: q.Get("result"),
		Cursor: q.Get("cursor"), Limit: limit,
	}
	if aq.Since, aq.Until, err = timeRange(q); err != nil {
		s.fail(w, r, err)
		return
	}
	switch v := q.Get("all_tenants"); v {
	case "", "false":
	case "true":
		if !callerOf(r).instanceAdmin() {
			s.fail(w, r, fmt.Errorf("%w: all_tenants is for instance administrators", switchyard.ErrPermissionDenied))
			return
		}
		aq.AllTenants = true
	default:
		s.fail(w, r, invalidf("query parameter \"all_tenants\": want true or false, got %q", v))
		return
	}
	es, next, err := s.tc(r).AuditLog(r.Context(), aq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(es, next))
}
