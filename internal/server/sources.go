package server

import (
	"net/http"

	switchyard "github.com/switchyard-dev/switchyard"
)

// Sources and endpoints carry signing secrets. Admins (who may change
// them) read them whole; viewers and operators see each secret's first
// characters only, enough to tell them apart.

// secretShown is how much of a secret lower roles see.
const secretShown = 10

func redact(secret string) string {
	if len(secret) <= secretShown {
		return "…"
	}
	return secret[:secretShown] + "…"
}

// seesSecrets reports whether the caller may read secrets whole.
func seesSecrets(r *http.Request) bool {
	c := callerOf(r)
	return c == nil || switchyard.RoleAtLeast(c.role, switchyard.RoleAdmin)
}

// sourceRequest is the body of POST /v1/sources and PUT /v1/sources/{id}.
type sourceRequest struct {
	Name string `json:"name"`
	switchyard.SourceSpec
}

func (s *Server) shownSource(r *http.Request, src *switchyard.Source) *switchyard.Source {
	if seesSecrets(r) {
		return src
	}
	out := *src
	out.Secrets = make([]string, len(src.Secrets))
	for i, sec := range src.Secrets {
		out.Secrets[i] = redact(sec)
	}
	if out.VerifyToken != "" {
		out.VerifyToken = redact(out.VerifyToken)
	}
	return &out
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request) {
	var req sourceRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	src, err := s.tc(r).CreateSource(r.Context(), req.Name, req.SourceSpec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := stateOf(r.Context())
	st.target, st.detail = src.ID, "name "+src.Name+", scheme "+src.Scheme
	w.Header().Set("Location", "/v1/sources/"+src.ID)
	writeJSON(w, http.StatusCreated, src)
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := s.pageQuery(w, r)
	if !ok {
		return
	}
	srcs, next, err := s.tc(r).Sources(r.Context(), cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range srcs {
		srcs[i] = s.shownSource(r, srcs[i])
	}
	writeJSON(w, http.StatusOK, newPage(srcs, next))
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.tc(r).Source(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.shownSource(r, src))
}

func (s *Server) updateSource(w http.ResponseWriter, r *http.Request) {
	var req sourceRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	src, err := s.tc(r).UpdateSource(r.Context(), id, req.Name, req.SourceSpec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).detail = "name " + src.Name + ", scheme " + src.Scheme
	writeJSON(w, http.StatusOK, src)
}

func (s *Server) deleteSource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	if err := s.tc(r).DeleteSource(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// endpointRequest is the body of POST /v1/endpoints and PUT
// /v1/endpoints/{id}.
type endpointRequest struct {
	Name string `json:"name"`
	switchyard.EndpointSpec
}

func (s *Server) shownEndpoint(r *http.Request, ep *switchyard.Endpoint) *switchyard.Endpoint {
	if seesSecrets(r) {
		return ep
	}
	out := *ep
	out.Secrets = make([]switchyard.EndpointSecret, len(ep.Secrets))
	for i, sec := range ep.Secrets {
		sec.Secret = redact(sec.Secret)
		out.Secrets[i] = sec
	}
	return &out
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req endpointRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	ep, err := s.tc(r).CreateEndpoint(r.Context(), req.Name, req.EndpointSpec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := stateOf(r.Context())
	st.target, st.detail = ep.ID, "name "+ep.Name+", url "+ep.URL
	w.Header().Set("Location", "/v1/endpoints/"+ep.ID)
	writeJSON(w, http.StatusCreated, ep)
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	cursor, limit, ok := s.pageQuery(w, r)
	if !ok {
		return
	}
	eps, next, err := s.tc(r).Endpoints(r.Context(), cursor, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range eps {
		eps[i] = s.shownEndpoint(r, eps[i])
	}
	writeJSON(w, http.StatusOK, newPage(eps, next))
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) {
	ep, err := s.tc(r).Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.shownEndpoint(r, ep))
}

func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var req endpointRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	ep, err := s.tc(r).UpdateEndpoint(r.Context(), id, req.Name, req.EndpointSpec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).detail = "name " + ep.Name + ", url " + ep.URL
	writeJSON(w, http.StatusOK, ep)
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	if err := s.tc(r).DeleteEndpoint(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rotateEndpointSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stateOf(r.Context()).target = id
	ep, err := s.tc(r).RotateEndpointSecret(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (s *Server) listDeliveryAttempts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, "limit", "cursor", "event_id"); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	as, next, err := s.tc(r).DeliveryAttempts(r.Context(), r.PathValue("id"), q.Get("event_id"), q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(as, next))
}

// redeliverRequest is the body of POST /v1/endpoints/{id}/redeliver.
type redeliverRequest struct {
	EventID string `json:"event_id"`
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	var req redeliverRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	id := r.PathValue("id")
	st := stateOf(r.Context())
	st.target, st.detail = id, "event "+req.EventID
	job, err := s.tc(r).Redeliver(r.Context(), id, req.EventID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, job)
}
