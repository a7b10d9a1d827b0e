package switchyard

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/store"
)

// Job states; see DESIGN.md § Job states.
const (
	StateScheduled = store.StateScheduled
	StateAvailable = store.StateAvailable
	StateRunning   = store.StateRunning
	StateRetryable = store.StateRetryable
	StateSucceeded = store.StateSucceeded
	StateDead      = store.StateDead
	StateCancelled = store.StateCancelled
)

// JobRow is a job as the API shows it. Field names are part of the HTTP API.
type JobRow struct {
	ID          string          `json:"id"`
	Queue       string          `json:"queue"`
	Kind        string          `json:"kind"`
	Args        json.RawMessage `json:"args"`
	Priority    int             `json:"priority"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	RunAt       time.Time       `json:"run_at"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at"`
	FinishedAt  *time.Time      `json:"finished_at"`
	// Timeout is the per-job timeout in seconds; 0 for none.
	Timeout   float64         `json:"timeout"`
	UniqueKey *string         `json:"unique_key"`
	Tags      []string        `json:"tags"`
	Result    json.RawMessage `json:"result"`
	Progress  json.RawMessage `json:"progress"`
	Errors    []AttemptError  `json:"errors"`
	// LeaseToken fences the attempt a worker leased; it is set only on jobs
	// returned by LeaseJobs, and the worker passes it to CompleteJob, FailJob,
	// SnoozeJob and HeartbeatJob.
	LeaseToken string `json:"lease_token,omitempty"`
}

// AttemptError records one failed attempt.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// Job is a typed job handed to a handler registered with Handle.
type Job[T JobArgs] struct {
	*JobRow
	// Args are the job's arguments, decoded.
	Args T

	exec *queue.Execution
}

// SetResult records v (marshalled to JSON) as the job's result when the
// handler returns nil.
func (j *Job[T]) SetResult(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("switchyard: encode result: %w", err)
	}
	j.exec.Result = b
	j.Result = b
	return nil
}

// SetProgress stores v (marshalled to JSON) on the job at once, so others
// can watch the attempt advance. It fails with ErrStaleLease if the attempt
// no longer holds the job.
func (j *Job[T]) SetProgress(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("switchyard: encode progress: %w", err)
	}
	if err := j.exec.SetProgress(ctx, b); err != nil {
		return fmt.Errorf("switchyard: set progress: %w", err)
	}
	j.Progress = b
	return nil
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

// parseID turns an opaque id into the store's; malformed ids are unknown ids.
func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("switchyard: job %q: %w", id, ErrNotFound)
	}
	return n, nil
}

func formatToken(l store.Lease) string {
	return strconv.Itoa(l.Attempt) + "." + strconv.FormatUint(uint64(l.Token), 36)
}

// parseLease rebuilds a fencing lease from a job id and token; a malformed
// token can match no lease, so it is stale.
func parseLease(id, token string) (store.Lease, error) {
	jobID, err := parseID(id)
	if err != nil {
		return store.Lease{}, err
	}
	for i := 0; i < len(token); i++ {
		if token[i] == '.' {
			attempt, err1 := strconv.Atoi(token[:i])
			tok, err2 := strconv.ParseUint(token[i+1:], 36, 64)
			if err1 == nil && err2 == nil {
				return store.Lease{JobID: jobID, Attempt: attempt, Token: int64(tok)}, nil
			}
			break
		}
	}
	return store.Lease{}, fmt.Errorf("switchyard: job %s: malformed lease token: %w", id, ErrStaleLease)
}

func rowFromStore(j *store.Job) *JobRow {
	r := &JobRow{
		ID:          formatID(j.ID),
		Queue:       j.Queue,
		Kind:        j.Kind,
		Args:        json.RawMessage(j.Args),
		Priority:    j.Priority,
		State:       j.State,
		Attempt:     j.Attempt,
		MaxAttempts: j.MaxAttempts,
		RunAt:       j.RunAt,
		CreatedAt:   j.CreatedAt,
		Timeout:     j.Timeout.Seconds(),
		Tags:        j.Tags,
		Errors:      []AttemptError{},
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	if !j.StartedAt.IsZero() {
		t := j.StartedAt
		r.StartedAt = &t
	}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt
		r.FinishedAt = &t
	}
	if j.UniqueKey != "" {
		k := j.UniqueKey
		r.UniqueKey = &k
	}
	if len(j.Result) > 0 {
		r.Result = json.RawMessage(j.Result)
	}
	if len(j.Progress) > 0 {
		r.Progress = json.RawMessage(j.Progress)
	}
	if len(j.Errors) > 2 {
		_ = json.Unmarshal(j.Errors, &r.Errors) // written by the drivers; shape tested there
	}
	return r
}
