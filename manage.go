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

// GetJob returns a job of this client's tenant; ErrNotFound for an unknown
// id or another tenant's.
func (c *Client) GetJob(ctx context.Context, id string) (*JobRow, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	j, err := c.store.Get(ctx, c.cfg.TenantID, n)
	if err != nil {
		return nil, fmt.Errorf("switchyard: get job %s: %w", id, err)
	}
	return rowFromStore(j), nil
}

// ListParams filters ListJobs; empty fields match anything.
type ListParams struct {
	Queue  string
	State  string
	Kind   string
	Tag    string
	Cursor string // from a previous page's next cursor
	Limit  int    // default 100, at most 1000
}

// ListJobs returns a page of jobs, newest first, and the cursor of the next
// page ("" when this is the last).
func (c *Client) ListJobs(ctx context.Context, p ListParams) ([]*JobRow, string, error) {
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, "", invalid("limit must be between 1 and 1000, got %d", p.Limit)
	}
	if p.State != "" && !isState(p.State) {
		return nil, "", invalid("unknown state %q", p.State)
	}
	var before int64
	if p.Cursor != "" {
		n, err := strconv.ParseInt(p.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", invalid("malformed cursor %q", p.Cursor)
		}
		before = n
	}
	jobs, err := c.store.List(ctx, store.ListParams{
		TenantID: c.cfg.TenantID, Queue: p.Queue, State: p.State, Kind: p.Kind, Tag: p.Tag,
		Before: before, Limit: p.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list jobs: %w", err)
	}
	next := ""
	if len(jobs) > p.Limit {
		jobs = jobs[:p.Limit]
		next = formatID(jobs[len(jobs)-1].ID)
	}
	rows := make([]*JobRow, len(jobs))
	for i, j := range jobs {
		rows[i] = rowFromStore(j)
	}
	return rows, next, nil
}

func isState(s string) bool {
	for _, st := range store.AllStates {
		if s == st {
			return true
		}
	}
	return false
}

// CancelJob cancels a live job. A running job's context is cancelled (cause
// ErrJobCancelled) wherever it runs, and its outcome is ignored. Cancelling a
// finished job fails with ErrConflict.
func (c *Client) CancelJob(ctx context.Context, id string) (*JobRow, error) {
	return c.changeJob(ctx, id, "cancel", EventJobCancelled, c.store.Cancel)
}

// DiscardJob moves a live job to dead, like CancelJob otherwise.
func (c *Client) DiscardJob(ctx context.Context, id string) (*JobRow, error) {
	return c.changeJob(ctx, id, "discard", EventJobDead, c.store.Discard)
}

// RetryJob makes a dead or cancelled job available at once, granting one
// more attempt if its attempts were used up. Other states fail with
// ErrConflict. The job is announced as enqueued again (job.enqueued).
func (c *Client) RetryJob(ctx context.Context, id string) (*JobRow, error) {
	return c.changeJob(ctx, id, "retry", EventJobEnqueued, c.store.Retry)
}

// DeleteJob removes a job that is not running (cancel a running job first:
// ErrConflict) and returns it as it was.
func (c *Client) DeleteJob(ctx context.Context, id string) (*JobRow, error) {
	return c.changeJob(ctx, id, "delete", EventJobDeleted, c.store.Delete)
}

// changeJob applies op to a job and announces the change as event.
func (c *Client) changeJob(ctx context.Context, id, verb, event string, op func(context.Context, string, int64) (*store.Job, error)) (*JobRow, error) {
	n, err := parseID(id)
	if err != nil {
		return nil, err
	}
	release := c.events.Hold()
	j, err := op(ctx, c.cfg.TenantID, n)
	if err != nil {
		release(nil)
		err = fmt.Errorf("switchyard: %s job %s: %w", verb, id, err)
		if j != nil {
			return rowFromStore(j), err
		}
		return nil, err
	}
	release([]queue.Event{queue.JobEvent(event, j)})
	return rowFromStore(j), nil
}

// QueueInfo is a queue's state and job counts.
type QueueInfo struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	// Concurrency is how many of the queue's jobs run at once on each node
	// that works it: the queue's stored setting, or else this client's
	// configured concurrency for it.
	Concurrency int              `json:"concurrency"`
	Counts      map[string]int64 `json:"counts"`
}

// Queues lists this tenant's queues with their job counts per state.
func (c *Client) Queues(ctx context.Context) ([]QueueInfo, error) {
	qs, err := c.store.Queues(ctx, c.cfg.TenantID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: list queues: %w", err)
	}
	out := make([]QueueInfo, len(qs))
	for i, q := range qs {
		out[i] = QueueInfo{Name: q.Name, Paused: q.Paused, Concurrency: c.concurrency(q.Name, q.Concurrency), Counts: q.Counts}
	}
	return out, nil
}

// Queue returns one queue; a queue that has neither jobs nor settings is
// shown empty, not ErrNotFound (any valid name is a queue).
func (c *Client) Queue(ctx context.Context, name string) (*QueueInfo, error) {
	if err := validName("queue", name); err != nil {
		return nil, err
	}
	qs, err := c.Queues(ctx)
	if err != nil {
		return nil, err
	}
	for i := range qs {
		if qs[i].Name == name {
			return &qs[i], nil
		}
	}
	counts := make(map[string]int64, len(store.AllStates))
	for _, s := range store.AllStates {
		counts[s] = 0
	}
	return &QueueInfo{Name: name, Concurrency: c.concurrency(name, 0), Counts: counts}, nil
}

// concurrency is the effective per-node concurrency of a queue whose stored
// setting is stored (0: none).
func (c *Client) concurrency(name string, stored int) int {
	if stored > 0 {
		return stored
	}
	if q, ok := c.cfg.Queues[name]; ok && q.Concurrency > 0 {
		return q.Concurrency
	}
	return c.cfg.DefaultConcurrency
}

// MaxQueueConcurrency bounds SetQueueConcurrency.
const MaxQueueConcurrency = 10000

// SetQueueConcurrency sets how many of the queue's jobs run at once on each
// node (1..MaxQueueConcurrency), overriding every node's configuration; 0
// restores each node's own. Nodes apply it at once.
func (c *Client) SetQueueConcurrency(ctx context.Context, name string, n int) error {
	if err := validName("queue", name); err != nil {
		return err
	}
	if n < 0 || n > MaxQueueConcurrency {
		return invalid("concurrency must be between 1 and %d (0 restores the default), got %d", MaxQueueConcurrency, n)
	}
	if err := c.store.SetQueueConcurrency(ctx, c.cfg.TenantID, name, n); err != nil {
		return fmt.Errorf("switchyard: set queue %s concurrency: %w", name, err)
	}
	return nil
}

// PauseQueue stops every process from fetching the queue's jobs; running
// jobs finish.
func (c *Client) PauseQueue(ctx context.Context, name string) error {
	return c.setPaused(ctx, name, true)
}

// ResumeQueue lets the queue's jobs be fetched again.
func (c *Client) ResumeQueue(ctx context.Context, name string) error {
	return c.setPaused(ctx, name, false)
}

func (c *Client) setPaused(ctx context.Context, name string, paused bool) error {
	if err := validName("queue", name); err != nil {
		return err
	}
	if err := c.store.SetQueuePaused(ctx, c.cfg.TenantID, name, paused); err != nil {
		return fmt.Errorf("switchyard: pause queue %s: %w", name, err)
	}
	typ := EventQueueResumed
	if paused {
		typ = EventQueuePaused
	}
	c.events.Add(queue.Event{Type: typ, TenantID: c.cfg.TenantID, Queue: name})
	return nil
}

// PurgeQueue deletes every job of the queue that is not running.
func (c *Client) PurgeQueue(ctx context.Context, name string) (int, error) {
	if err := validName("queue", name); err != nil {
		return 0, err
	}
	n, err := c.store.PurgeQueue(ctx, c.cfg.TenantID, name)
	if err != nil {
		return 0, fmt.Errorf("switchyard: purge queue %s: %w", name, err)
	}
	return n, nil
}

// LeaseJobs leases up to limit available jobs of a queue for a worker that
// runs them itself (a remote worker). Each returned job carries LeaseToken;
// the worker must heartbeat within the lease duration and finish each job
// with CompleteJob, FailJob or SnoozeJob.
func (c *Client) LeaseJobs(ctx context.Context, queueName string, limit int, lease time.Duration) ([]*JobRow, error) {
	if err := validName("queue", queueName); err != nil {
		return nil, err
	}
	if limit < 1 || limit > 1000 {
		return nil, invalid("limit must be between 1 and 1000, got %d", limit)
	}
	if lease <= 0 {
		lease = 30 * time.Second
	}
	jobs, err := c.store.Lease(ctx, store.LeaseParams{TenantID: c.cfg.TenantID, Queue: queueName, Limit: limit, LeasedBy: c.cfg.NodeID, Duration: lease})
	if err != nil {
		return nil, fmt.Errorf("switchyard: lease jobs: %w", err)
	}
	rows := make([]*JobRow, len(jobs))
	evs := make([]queue.Event, len(jobs))
	for i, j := range jobs {
		rows[i] = rowFromStore(j)
		rows[i].LeaseToken = formatToken(store.Lease{JobID: j.ID, Attempt: j.Attempt, Token: j.LeaseToken})
		evs[i] = queue.JobEvent(EventJobStarted, j)
	}
	c.events.Add(evs...)
	return rows, nil
}

// CompleteJob records the success of a leased attempt with its result.
// ErrStaleLease if token is not the job's current lease.
func (c *Client) CompleteJob(ctx context.Context, id, token string, result any) error {
	var b []byte
	if result != nil {
		var err error
		if b, err = json.Marshal(result); err != nil {
			return invalid("result: %v", err)
		}
	}
	return c.finish(ctx, id, token, "complete", store.Completion{Outcome: store.OutcomeSucceeded, Result: b})
}

// FailJob records the failure of a leased attempt; the job is retried after
// the client's backoff while attempts remain, else it is dead.
func (c *Client) FailJob(ctx context.Context, id, token, message string) error {
	l, err := parseLease(id, token)
	if err != nil {
		return err
	}
	if message == "" {
		return invalid("a failure needs an error message")
	}
	retry := c.cfg.Retry
	if retry == nil {
		retry = ExponentialBackoff{}
	}
	return c.finish(ctx, id, token, "fail", store.Completion{Outcome: store.OutcomeFailed, Error: message, RetryIn: retry.NextRetry(l.Attempt)})
}

// SnoozeJob reschedules a leased job delay from now without using an attempt.
func (c *Client) SnoozeJob(ctx context.Context, id, token string, delay time.Duration) error {
	if delay < 0 {
		return invalid("snooze delay must not be negative, got %s", delay)
	}
	return c.finish(ctx, id, token, "snooze", store.Completion{Outcome: store.OutcomeSnoozed, Delay: delay})
}

func (c *Client) finish(ctx context.Context, id, token, verb string, comp store.Completion) error {
	comp.Error, comp.Result = store.CleanText(comp.Error), store.CleanJSON(comp.Result)
	l, err := parseLease(id, token)
	if err != nil {
		return err
	}
	j, err := c.owned(ctx, l.JobID)
	if err != nil {
		return err
	}
	comp.Lease = l
	release := c.events.Hold()
	res, err := c.store.Complete(ctx, []store.Completion{comp})
	if err != nil {
		release(nil)
		return fmt.Errorf("switchyard: %s job %s: %w", verb, id, err)
	}
	if res[0] != nil {
		release(nil)
		return fmt.Errorf("switchyard: %s job %s: %w", verb, id, res[0])
	}
	var evs []queue.Event
	if ev, ok := queue.CompletionEvent(j, comp); ok && j.Attempt == l.Attempt {
		evs = append(evs, ev)
	}
	release(evs)
	return nil
}

// owned checks the job belongs to this client's tenant, so a token guessed
// for another tenant's job answers not found rather than stale. It returns
// the job as it is.
func (c *Client) owned(ctx context.Context, id int64) (*store.Job, error) {
	j, err := c.store.Get(ctx, c.cfg.TenantID, id)
	if err != nil {
		return nil, fmt.Errorf("switchyard: job %d: %w", id, err)
	}
	return j, nil
}

// HeartbeatJob extends a leased job's lease by d (default 30s).
// ErrStaleLease if the lease is no longer current.
func (c *Client) HeartbeatJob(ctx context.Context, id, token string, d time.Duration) error {
	l, err := parseLease(id, token)
	if err != nil {
		return err
	}
	if _, err := c.owned(ctx, l.JobID); err != nil {
		return err
	}
	if d <= 0 {
		d = 30 * time.Second
	}
	stale, err := c.store.Heartbeat(ctx, []store.Lease{l}, d)
	if err != nil {
		return fmt.Errorf("switchyard: heartbeat job %s: %w", id, err)
	}
	if len(stale) > 0 {
		return fmt.Errorf("switchyard: heartbeat job %s: %w", id, ErrStaleLease)
	}
	return nil
}

// Ready reports whether the client can serve: its database answers and has
// every migration this build needs.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.store.Ping(ctx); err != nil {
		return fmt.Errorf("switchyard: not ready: %w", err)
	}
	n, err := c.store.PendingMigrations(ctx)
	if err != nil {
		return fmt.Errorf("switchyard: not ready: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("switchyard: not ready: %d migrations are not applied (run switchyard migrate)", n)
	}
	return nil
}
