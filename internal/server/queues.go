package server

import (
	"net/http"

	switchyard "github.com/switchyard-dev/switchyard"
)

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	for name := range r.URL.Query() {
		s.fail(w, r, invalidf("unknown query parameter %q: queues are listed whole", name))
		return
	}
	qs, err := s.tc(r).Queues(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(qs, ""))
}

// queueUpdate is the body of PATCH /v1/queues/{name}.
type queueUpdate struct {
	Concurrency *int  `json:"concurrency"`
	Paused      *bool `json:"paused"`
}

func (s *Server) updateQueue(w http.ResponseWriter, r *http.Request) {
	var u queueUpdate
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &u); err != nil {
		return
	}
	name := r.PathValue("name")
	if u.Concurrency == nil && u.Paused == nil {
		s.fail(w, r, invalidf("nothing to change: give \"concurrency\" and/or \"paused\""))
		return
	}
	if u.Concurrency != nil && (*u.Concurrency < 1 || *u.Concurrency > switchyard.MaxQueueConcurrency) {
		s.fail(w, r, invalidf("field \"concurrency\" must be between 1 and %d, got %d", switchyard.MaxQueueConcurrency, *u.Concurrency))
		return
	}
	// Both setters check the name before writing, and the values are
	// checked above: a bad request changes nothing.
	if u.Concurrency != nil {
		if err := s.tc(r).SetQueueConcurrency(r.Context(), name, *u.Concurrency); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if u.Paused != nil {
		if err := s.setPaused(r, name, *u.Paused); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.answerQueue(w, r, name)
}

func (s *Server) pauseQueue(w http.ResponseWriter, r *http.Request) {
	s.pauseOrResume(w, r, true)
}

func (s *Server) resumeQueue(w http.ResponseWriter, r *http.Request) {
	s.pauseOrResume(w, r, false)
}

func (s *Server) pauseOrResume(w http.ResponseWriter, r *http.Request, paused bool) {
	name := r.PathValue("name")
	if err := s.setPaused(r, name, paused); err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerQueue(w, r, name)
}

func (s *Server) setPaused(r *http.Request, name string, paused bool) error {
	if paused {
		return s.tc(r).PauseQueue(r.Context(), name)
	}
	return s.tc(r).ResumeQueue(r.Context(), name)
}

func (s *Server) answerQueue(w http.ResponseWriter, r *http.Request, name string) {
	q, err := s.tc(r).Queue(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}
