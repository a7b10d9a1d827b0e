package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
)

// jobRequest is the body of POST /v1/jobs and one item of a batch.
type jobRequest struct {
	Kind        string          `json:"kind"`
	Queue       *string         `json:"queue"`
	Args        json.RawMessage `json:"args"`
	Priority    *int            `json:"priority"`
	RunAt       *time.Time      `json:"run_at"`
	Delay       *float64        `json:"delay"`   // seconds
	Timeout     *float64        `json:"timeout"` // seconds
	UniqueKey   string          `json:"unique_key"`
	MaxAttempts *int            `json:"max_attempts"`
	Tags        []string        `json:"tags"`
}

// maxBatch is how many jobs one POST /v1/jobs/batch may carry.
const maxBatch = 10000

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", switchyard.ErrInvalidArgument, fmt.Sprintf(format, a...))
}

// params turns a request into enqueue parameters; the client validates the
// rest (kind known, names, ranges, args an object).
func (j *jobRequest) params() (switchyard.EnqueueParams, error) {
	if j.Kind == "" {
		return switchyard.EnqueueParams{}, invalidf("field \"kind\" is required")
	}
	args := j.Args
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	opts := &switchyard.EnqueueOpts{UniqueKey: j.UniqueKey, Tags: j.Tags}
	if j.Queue != nil {
		if *j.Queue == "" {
			return switchyard.EnqueueParams{}, invalidf("field \"queue\" must not be empty (leave it out for \"default\")")
		}
		opts.Queue = *j.Queue
	}
	// The client reads 0 as "the default"; given explicitly, 0 is out of
	// range.
	if j.Priority != nil {
		if *j.Priority < 1 || *j.Priority > 4 {
			return switchyard.EnqueueParams{}, invalidf("field \"priority\" must be between 1 (highest) and 4, got %d", *j.Priority)
		}
		opts.Priority = *j.Priority
	}
	if j.MaxAttempts != nil {
		if *j.MaxAttempts < 1 {
			return switchyard.EnqueueParams{}, invalidf("field \"max_attempts\" must be at least 1, got %d", *j.MaxAttempts)
		}
		opts.MaxAttempts = *j.MaxAttempts
	}
	if j.RunAt != nil {
		opts.RunAt = *j.RunAt
	}
	var err error
	if opts.Delay, err = seconds("delay", j.Delay); err != nil {
		return switchyard.EnqueueParams{}, err
	}
	if opts.Timeout, err = seconds("timeout", j.Timeout); err != nil {
		return switchyard.EnqueueParams{}, err
	}
	if j.RunAt != nil && j.Delay != nil {
		return switchyard.EnqueueParams{}, invalidf("give run_at or delay, not both")
	}
	return switchyard.EnqueueParams{Args: switchyard.RawArgs{KindName: j.Kind, JSON: args}, Opts: opts}, nil
}

// seconds converts a duration given in seconds; at most ten years.
func seconds(field string, v *float64) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 || math.IsNaN(*v) || *v > 10*365*24*3600 {
		return 0, invalidf("field %q must be a number of seconds from 0 to 315360000, got %v", field, *v)
	}
	return time.Duration(*v * float64(time.Second)), nil
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	var req jobRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	p, err := req.params()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.tc(r).EnqueueMany(r.Context(), []switchyard.EnqueueParams{p})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).target = res[0].Job.ID
	status := http.StatusCreated
	if res[0].Existing {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/jobs/"+res[0].Job.ID)
	writeJSON(w, status, res[0].Job)
}

type batchRequest struct {
	Jobs []jobRequest `json:"jobs"`
}

type batchItem struct {
	Job      *switchyard.JobRow `json:"job"`
	Existing bool               `json:"existing"`
}

func (s *Server) createJobs(w http.ResponseWriter, r *http.Request) {
	var req batchRequest
	if err := s.decode(w, r, s.cfg.MaxBatchBodyBytes, &req); err != nil {
		return
	}
	if len(req.Jobs) == 0 || len(req.Jobs) > maxBatch {
		s.fail(w, r, invalidf("field \"jobs\" must hold 1 to %d jobs, got %d", maxBatch, len(req.Jobs)))
		return
	}
	params := make([]switchyard.EnqueueParams, len(req.Jobs))
	for i := range req.Jobs {
		p, err := req.Jobs[i].params()
		if err != nil {
			s.fail(w, r, fmt.Errorf("jobs[%d]: %w", i, err))
			return
		}
		params[i] = p
	}
	res, err := s.tc(r).EnqueueMany(r.Context(), params)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).detail = fmt.Sprintf("%d jobs, ids %s to %s", len(res), res[0].Job.ID, res[len(res)-1].Job.ID)
	items := make([]batchItem, len(res))
	for i, r := range res {
		items[i] = batchItem{Job: r.Job, Existing: r.Existing}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"items": items})
}

// page is a list answer: {"items":[…],"next_cursor":"…"|null}.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newPage[T any](items []T, next string) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if next != "" {
		p.NextCursor = &next
	}
	return p
}

var listJobParams = map[string]bool{"queue": true, "state": true, "kind": true, "tag": true, "limit": true, "cursor": true}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		if !listJobParams[name] {
			s.fail(w, r, invalidf("unknown query parameter %q (filters: queue, state, kind, tag; paging: limit, cursor)", name))
			return
		}
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	jobs, next, err := s.tc(r).ListJobs(r.Context(), switchyard.ListParams{
		Queue: q.Get("queue"), State: q.Get("state"), Kind: q.Get("kind"), Tag: q.Get("tag"),
		Cursor: q.Get("cursor"), Limit: limit,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(jobs, next))
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.tc(r).GetJob(r.Context(), r.PathValue("id"))
	s.answerJob(w, r, job, err)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.tc(r).CancelJob(r.Context(), r.PathValue("id"))
	s.answerJob(w, r, job, err)
}

func (s *Server) retryJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.tc(r).RetryJob(r.Context(), r.PathValue("id"))
	s.answerJob(w, r, job, err)
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	if _, err := s.tc(r).DeleteJob(r.Context(), r.PathValue("id")); err != nil {
		s.answerJob(w, r, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) answerJob(w http.ResponseWriter, r *http.Request, job *switchyard.JobRow, err error) {
	if errors.Is(err, switchyard.ErrNotFound) {
		// Unknown and another tenant's ids answer alike.
		writeError(w, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("job %q not found", r.PathValue("id")))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// decode reads a strict JSON body, answering the error itself if it fails.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	err := decodeBody(w, r, limit, v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errUnsupportedMedia):
		writeError(w, r, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "Content-Type must be application/json")
	default:
		s.fail(w, r, err)
	}
	return err
}
