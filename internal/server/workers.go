package server

import "net/http"

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request) {
	for name := range r.URL.Query() {
		s.fail(w, r, invalidf("unknown query parameter %q: workers are listed whole", name))
		return
	}
	ws, err := s.tc(r).Workers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(ws, ""))
}
