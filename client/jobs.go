package client

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// JobState is where a job is in its life.
type JobState string

// The states of a job.
const (
	StateScheduled JobState = "scheduled" // run_at is in the future
	StateAvailable JobState = "available" // waiting for a worker
	StateRunning   JobState = "running"   // leased by a worker
	StateRetryable JobState = "retryable" // failed; runs again at run_at
	StateSucceeded JobState = "succeeded" // final
	StateDead      JobState = "dead"      // final: attempts exhausted or discarded
	StateCancelled JobState = "cancelled" // final
)

// Final reports whether s is a state a job leaves only when asked to (by a
// retry): succeeded, dead or cancelled.
func (s JobState) Final() bool {
	return s == StateSucceeded || s == StateDead || s == StateCancelled
}

// Job is a job as the server shows it.
type Job struct {
	ID          string          `json:"id"` // opaque
	Queue       string          `json:"queue"`
	Kind        string          `json:"kind"`
	Args        json.RawMessage `json:"args"`
	Priority    int             `json:"priority"` // 1 (highest) to 4
	State       JobState        `json:"state"`
	Attempt     int             `json:"attempt"` // attempts started so far
	MaxAttempts int             `json:"max_attempts"`
	RunAt       time.Time       `json:"run_at"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at"`  // latest attempt; nil before the first
	FinishedAt  *time.Time      `json:"finished_at"` // nil until final
	// Timeout bounds each attempt; 0 for none. The wire carries seconds.
	Timeout   time.Duration   `json:"timeout"`
	UniqueKey string          `json:"unique_key"` // "" for none (null on the wire)
	Tags      []string        `json:"tags"`
	Result    json.RawMessage `json:"result"`   // JSON null when none
	Progress  json.RawMessage `json:"progress"` // JSON null when none
	Errors    []AttemptError  `json:"errors"`   // one per failed attempt, oldest first

	// Raw is the job exactly as the server sent it, including fields this
	// version of the client does not know. It is not encoded by MarshalJSON.
	Raw json.RawMessage `json:"-"`
}

// AttemptError is one failed attempt of a job.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// UnmarshalJSON decodes the API's job shape, keeping a copy in Raw.
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job // without methods, so no recursion
	*j = Job{}
	w := struct {
		*plain
		Timeout float64 `json:"timeout"` // shadows plain's
	}{plain: (*plain)(j)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	j.Timeout = seconds(w.Timeout)
	j.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// MarshalJSON encodes j in the API's job shape (timeout in seconds,
// unique_key null when empty).
func (j Job) MarshalJSON() ([]byte, error) {
	type plain Job
	w := struct {
		plain
		Timeout   float64 `json:"timeout"`
		UniqueKey *string `json:"unique_key"`
	}{plain: plain(j), Timeout: j.Timeout.Seconds()}
	if j.UniqueKey != "" {
		w.UniqueKey = &j.UniqueKey
	}
	return json.Marshal(w)
}

// JobRequest is a job to enqueue. Only Kind is required; zero values leave
// the server's defaults.
type JobRequest struct {
	Kind  string `json:"kind"`
	Queue string `json:"queue,omitempty"` // default "default"
	// Args is any value that encodes to a JSON object; a json.RawMessage is
	// sent as it is. nil sends {}.
	Args     any `json:"args,omitempty"`
	Priority int `json:"priority,omitempty"` // 1 (highest) to 4; default 2
	// RunAt and Delay postpone the job; give at most one.
	RunAt       time.Time     `json:"run_at,omitzero"`
	Delay       time.Duration `json:"delay,omitempty"` // sent as seconds
	UniqueKey   string        `json:"unique_key,omitempty"`
	MaxAttempts int           `json:"max_attempts,omitempty"` // default: the server's (25)
	Timeout     time.Duration `json:"timeout,omitempty"`      // per attempt, sent as seconds; 0 for none
	Tags        []string      `json:"tags,omitempty"`
}

// MarshalJSON encodes r in the API's request shape, durations in seconds.
func (r JobRequest) MarshalJSON() ([]byte, error) {
	type plain JobRequest
	if raw, ok := r.Args.(json.RawMessage); ok && len(raw) == 0 {
		r.Args = nil
	}
	return json.Marshal(struct {
		plain
		Delay   float64 `json:"delay,omitempty"`
		Timeout float64 `json:"timeout,omitempty"`
	}{plain: plain(r), Delay: r.Delay.Seconds(), Timeout: r.Timeout.Seconds()})
}

// BatchItem is the outcome of one job of EnqueueJobs.
type BatchItem struct {
	Job Job `json:"job"`
	// Existing is true when the request's unique key matched a live job,
	// which Job then is; nothing new was enqueued for this item.
	Existing bool `json:"existing"`
}

// ListJobsParams filters ListJobs; empty fields do not filter.
type ListJobsParams struct {
	Queue  string
	State  JobState
	Kind   string
	Tag    string
	Limit  int    // jobs per page, 1 to 1000; 0 for the server's default (100)
	Cursor string // a previous page's NextCursor; "" for the first page
}

// JobPage is one page of ListJobs.
type JobPage = Page[Job]

// EnqueueJob durably enqueues one job. When req.UniqueKey matches a live job
// (scheduled, available, running or retryable), nothing is enqueued: that
// job is returned and existing is true.
func (c *Client) EnqueueJob(ctx context.Context, req JobRequest) (job *Job, existing bool, err error) {
	job = new(Job)
	status, err := c.do(ctx, http.MethodPost, "/v1/jobs", nil, req, job)
	if err != nil {
		return nil, false, err
	}
	return job, status == http.StatusOK, nil
}

// EnqueueJobs enqueues 1 to 10,000 jobs in one transaction: all of them or,
// on error, none. The items answer the requests in order.
func (c *Client) EnqueueJobs(ctx context.Context, reqs []JobRequest) ([]BatchItem, error) {
	in := struct {
		Jobs []JobRequest `json:"jobs"`
	}{reqs}
	if in.Jobs == nil {
		in.Jobs = []JobRequest{} // let the server explain that none is too few
	}
	var out struct {
		Items []BatchItem `json:"items"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/jobs/batch", nil, in, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// GetJob returns the job with the given id.
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	return c.jobCall(ctx, http.MethodGet, id, "")
}

// ListJobs returns one page of jobs, newest first. Pass the page's
// NextCursor as p.Cursor (with the same filters) for the next one.
func (c *Client) ListJobs(ctx context.Context, p ListJobsParams) (*JobPage, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("queue", p.Queue)
	set("state", string(p.State))
	set("kind", p.Kind)
	set("tag", p.Tag)
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	set("cursor", p.Cursor)
	return listPage[Job](ctx, c, "/v1/jobs", q)
}

// CancelJob cancels a job that has not reached a final state and returns
// it; the server answers an *Error with code "conflict" when the job's state
// does not allow it.
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error) {
	return c.jobCall(ctx, http.MethodPost, id, "/cancel")
}

// RetryJob makes a job due to run again now and returns it; the server
// answers an *Error with code "conflict" when the job's state does not allow
// it.
func (c *Client) RetryJob(ctx context.Context, id string) (*Job, error) {
	return c.jobCall(ctx, http.MethodPost, id, "/retry")
}

// DeleteJob deletes a job that is not running; a running job answers an
// *Error with code "conflict" (cancel it first).
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	if id == "" {
		return errEmpty("job id")
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, nil, nil)
	return err
}

func (c *Client) jobCall(ctx context.Context, method, id, action string) (*Job, error) {
	if id == "" {
		return nil, errEmpty("job id")
	}
	job := new(Job)
	if _, err := c.do(ctx, method, "/v1/jobs/"+url.PathEscape(id)+action, nil, nil, job); err != nil {
		return nil, err
	}
	return job, nil
}

// seconds converts the API's float seconds to a Duration, rounding to the
// nearest nanosecond and saturating instead of overflowing.
func seconds(s float64) time.Duration {
	ns := math.Round(s * float64(time.Second))
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(ns)
}
