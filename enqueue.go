package switchyard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
)

// JobArgs are a job's arguments. Kind names the handler that runs them; it
// must work on the zero value. Args are stored as JSON.
type JobArgs interface {
	Kind() string
}

// RawArgs are arguments already encoded, for callers that pick the kind at
// run time (the HTTP API, the CLI). JSON must be a JSON object.
type RawArgs struct {
	KindName string
	JSON     json.RawMessage
}

// Kind implements JobArgs.
func (a RawArgs) Kind() string { return a.KindName }

// MarshalJSON returns the raw JSON.
func (a RawArgs) MarshalJSON() ([]byte, error) {
	if len(a.JSON) == 0 {
		return []byte("{}"), nil
	}
	return a.JSON, nil
}

// EnqueueOpts are a job's options; the zero value takes every default.
type EnqueueOpts struct {
	// Queue; default "default".
	Queue string
	// Priority 1 (highest) to 4; default 2.
	Priority int
	// RunAt schedules the job; mutually exclusive with Delay.
	RunAt time.Time
	// Delay schedules the job this long after the database's now.
	Delay time.Duration
	// MaxAttempts; default Config.DefaultMaxAttempts (25).
	MaxAttempts int
	// Timeout bounds each attempt; 0 for none.
	Timeout time.Duration
	// UniqueKey: while a job of this tenant with the same key is live
	// (scheduled, available, running, retryable), enqueueing returns that job
	// instead of a new one.
	UniqueKey string
	// Tags for filtering; at most 20, each 1–100 characters of letters,
	// digits and ._:-
	Tags []string
}

// EnqueueParams is one job of EnqueueMany.
type EnqueueParams struct {
	Args JobArgs
	Opts *EnqueueOpts
}

// EnqueueResult is the outcome of one enqueue.
type EnqueueResult struct {
	Job *JobRow
	// Existing is true when the unique key matched a live job, which Job
	// then is; nothing new was enqueued.
	Existing bool
}

// Enqueue durably enqueues one job and returns it.
func (c *Client) Enqueue(ctx context.Context, args JobArgs, opts *EnqueueOpts) (*EnqueueResult, error) {
	res, err := c.EnqueueMany(ctx, []EnqueueParams{{Args: args, Opts: opts}})
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}

// EnqueueMany durably enqueues jobs in one transaction: all or none. If any
// job is invalid, nothing is written and the error names its index.
func (c *Client) EnqueueMany(ctx context.Context, jobs []EnqueueParams) ([]EnqueueResult, error) {
	params, err := c.insertParams(jobs)
	if err != nil {
		return nil, err
	}
	// job.enqueued goes out after the commit, but in its place before the
	// job.started of a worker that leases the job at once.
	release := c.events.Hold()
	res, err := c.store.Insert(ctx, params)
	if err != nil {
		release(nil)
		return nil, fmt.Errorf("switchyard: enqueue: %w", err)
	}
	release(enqueuedEvents(res))
	return c.results(res), nil
}

// enqueuedEvents announces the jobs an insert created (not those a unique
// key matched).
func enqueuedEvents(res []store.InsertResult) []queue.Event {
	evs := make([]queue.Event, 0, len(res))
	for _, r := range res {
		if !r.Existing {
			evs = append(evs, enqueuedEvent(r.Job))
		}
	}
	return evs
}

func enqueuedEvent(j *store.Job) queue.Event {
	ev := queue.JobEvent(EventJobEnqueued, j)
	if j.State == store.StateScheduled {
		ev.RunAt = j.RunAt
	}
	return ev
}

// EnqueueTx enqueues jobs inside the caller's PostgreSQL transaction: they
// exist if and only if tx commits, and workers hear of them at commit. The
// client must use PostgreSQL, and tx must be on the same database. No
// job.enqueued is published for them (the client cannot see the commit);
// their job.started and later events are.
func (c *Client) EnqueueTx(ctx context.Context, tx pgx.Tx, jobs ...EnqueueParams) ([]EnqueueResult, error) {
	pg, ok := store.Unwrap(c.store).(*postgres.Store)
	if !ok {
		return nil, fmt.Errorf("switchyard: enqueue in transaction: %w: needs the PostgreSQL backend, this client uses %s", ErrUnsupported, c.store.Backend())
	}
	params, err := c.insertParams(jobs)
	if err != nil {
		return nil, err
	}
	res, err := pg.InsertTx(ctx, tx, params)
	if err != nil {
		return nil, fmt.Errorf("switchyard: enqueue in transaction: %w", err)
	}
	return c.results(res), nil
}

func (c *Client) results(res []store.InsertResult) []EnqueueResult {
	out := make([]EnqueueResult, len(res))
	for i, r := range res {
		if !r.Existing {
			c.metrics.Enqueued(r.Job.Queue, r.Job.Kind)
		}
		out[i] = EnqueueResult{Job: rowFromStore(r.Job), Existing: r.Existing}
	}
	return out
}

func (c *Client) insertParams(jobs []EnqueueParams) ([]store.InsertParams, error) {
	if len(jobs) == 0 {
		return nil, fmt.Errorf("switchyard: enqueue: %w: no jobs given", ErrInvalidArgument)
	}
	params := make([]store.InsertParams, len(jobs))
	for i, j := range jobs {
		p, err := c.validate(j)
		if err != nil {
			if len(jobs) > 1 {
				return nil, fmt.Errorf("switchyard: enqueue: job %d: %w", i, err)
			}
			return nil, fmt.Errorf("switchyard: enqueue: %w", err)
		}
		params[i] = p
	}
	return params, nil
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, a...))
}

// validate checks one job at the edge, so that bad input writes nothing.
func (c *Client) validate(j EnqueueParams) (store.InsertParams, error) {
	if j.Args == nil {
		return store.InsertParams{}, invalid("args are required")
	}
	var o EnqueueOpts
	if j.Opts != nil {
		o = *j.Opts
	}
	kind := j.Args.Kind()
	if err := validName("kind", kind); err != nil {
		return store.InsertParams{}, err
	}
	k := c.registry.Lookup(kind)
	if k == nil && !c.external[kind] {
		return store.InsertParams{}, invalid("unknown kind %q: no handler is registered for it (register one with Handle, or list it in Config.ExternalKinds)", kind)
	}
	if o.Queue == "" {
		o.Queue = "default"
	}
	if err := validName("queue", o.Queue); err != nil {
		return store.InsertParams{}, err
	}
	if o.Priority == 0 {
		o.Priority = 2
	}
	if o.Priority < 1 || o.Priority > 4 {
		return store.InsertParams{}, invalid("priority must be between 1 (highest) and 4, got %d", o.Priority)
	}
	if o.Delay < 0 {
		return store.InsertParams{}, invalid("delay must not be negative, got %s", o.Delay)
	}
	if o.Delay > 0 && !o.RunAt.IsZero() {
		return store.InsertParams{}, invalid("give run_at or delay, not both")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = c.cfg.DefaultMaxAttempts
	}
	if o.MaxAttempts < 1 || o.MaxAttempts > 10000 {
		return store.InsertParams{}, invalid("max_attempts must be between 1 and 10000, got %d", o.MaxAttempts)
	}
	if o.Timeout < 0 {
		return store.InsertParams{}, invalid("timeout must not be negative, got %s", o.Timeout)
	}
	if o.UniqueKey != store.CleanText(o.UniqueKey) {
		return store.InsertParams{}, invalid("unique_key must be UTF-8 text without NUL characters")
	}
	if len(o.UniqueKey) > 255 {
		return store.InsertParams{}, invalid("unique_key is %d bytes; the limit is 255", len(o.UniqueKey))
	}
	if len(o.Tags) > 20 {
		return store.InsertParams{}, invalid("%d tags; the limit is 20", len(o.Tags))
	}
	for _, t := range o.Tags {
		if err := validName("tag", t); err != nil {
			return store.InsertParams{}, err
		}
	}
	args, err := json.Marshal(j.Args)
	if err != nil {
		return store.InsertParams{}, invalid("args: %v", err)
	}
	if len(args) > c.cfg.MaxArgsBytes {
		return store.InsertParams{}, invalid("args are %d bytes; the limit is %d", len(args), c.cfg.MaxArgsBytes)
	}
	if t := bytes.TrimLeft(args, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return store.InsertParams{}, invalid("args must be a JSON object")
	}
	if store.HasNULEscape(args) {
		return store.InsertParams{}, invalid("args must not contain the NUL character (\\u0000)")
	}
	if k != nil && k.Validate != nil {
		if err := k.Validate(j.Args, args); err != nil {
			return store.InsertParams{}, invalid("args for kind %q: %v", kind, err)
		}
	}
	tags := o.Tags
	if tags == nil {
		tags = []string{}
	}
	return store.InsertParams{
		TenantID:    c.cfg.TenantID,
		Queue:       o.Queue,
		Kind:        kind,
		Args:        args,
		Priority:    o.Priority,
		RunAt:       o.RunAt,
		Delay:       o.Delay,
		MaxAttempts: o.MaxAttempts,
		Timeout:     o.Timeout,
		UniqueKey:   o.UniqueKey,
		Tags:        tags,
	}, nil
}

// validName checks a kind, queue or tag: 1–100 characters of letters,
// digits and . _ : -
func validName(what, s string) error {
	if s == "" {
		return invalid("%s must not be empty", what)
	}
	if len(s) > 100 {
		return invalid("%s is %d characters; the limit is 100", what, len(s))
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-'
		if !ok {
			return invalid("%s %q: only letters, digits and . _ : - are allowed", what, s)
		}
	}
	return nil
}
