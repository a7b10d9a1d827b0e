// Package store defines the persistence contract of Switchyard's engine: the
// Store interface, its parameter and result types, and the errors every
// driver returns. The drivers live in sub-packages named after what they wrap
// (sqlite, postgres); all SQL lives there. The conformance suite in storetest
// holds both drivers to the same behaviour.
package store

import (
	"context"
	"errors"
	"time"
)

// Job states. See DESIGN.md § Job states.
const (
	StateScheduled = "scheduled" // run_at in the future (delayed, snoozed)
	StateAvailable = "available" // ready to be leased
	StateRunning   = "running"   // leased by a worker
	StateRetryable = "retryable" // failed, waiting for run_at (the backoff time)
	StateSucceeded = "succeeded"
	StateDead      = "dead"
	StateCancelled = "cancelled"
)

// LiveStates are the states in which a job still holds its unique key.
var LiveStates = []string{StateScheduled, StateAvailable, StateRunning, StateRetryable}

// AllStates lists every state in lifecycle order.
var AllStates = []string{StateScheduled, StateAvailable, StateRunning, StateRetryable, StateSucceeded, StateDead, StateCancelled}

// Errors drivers return; callers test them with errors.Is.
var (
	// ErrNotFound: no row with that id in that tenant.
	ErrNotFound = errors.New("not found")
	// ErrStaleLease: the lease token does not match the job's current lease
	// (the job was rescued, cancelled, released or re-leased meanwhile).
	ErrStaleLease = errors.New("stale lease: the job is no longer leased with this token")
	// ErrConflict: the operation does not apply to the job's current state.
	ErrConflict = errors.New("conflict")
)

// Job is a job row as stored.
type Job struct {
	ID          int64
	TenantID    string
	Queue       string
	Kind        string
	Args        []byte // JSON
	Priority    int    // 1 (highest) .. 4
	State       string
	Attempt     int
	MaxAttempts int
	RunAt       time.Time
	CreatedAt   time.Time
	StartedAt   time.Time // zero if never started
	FinishedAt  time.Time // zero unless in a final state
	Timeout     time.Duration
	UniqueKey   string   // "" for none
	Tags        []string // never nil
	Result      []byte   // JSON or nil
	Errors      []byte   // JSON array of {"attempt","at","message"}; "[]" when none
	Progress    []byte   // JSON or nil
	// Lease, valid while State is running.
	LeaseToken     int64
	LeaseExpiresAt time.Time
	LeasedBy       string
}

// Lease identifies one lease of a job: the fencing token. An operation carrying
// a Lease succeeds only if the job is running with exactly this attempt and token.
type Lease struct {
	JobID   int64
	Attempt int
	Token   int64
}

// InsertParams describes one job to insert. Drivers do not validate it beyond
// what the schema enforces; the engine validates at the edge.
type InsertParams struct {
	TenantID    string
	Queue       string
	Kind        string
	Args        []byte // JSON
	Priority    int
	RunAt       time.Time     // if set, the job runs at this time
	Delay       time.Duration // if RunAt is zero: run at database now() + Delay
	MaxAttempts int
	Timeout     time.Duration // 0: no per-job timeout
	UniqueKey   string        // "" for none; unique per tenant among live jobs
	Tags        []string
}

// InsertResult is the outcome of one InsertParams, in input order.
type InsertResult struct {
	Job *Job
	// Existing is true when UniqueKey matched a live job, which Job then is;
	// nothing was inserted.
	Existing bool
}

// LeaseParams asks for up to Limit available jobs of one queue.
type LeaseParams struct {
	TenantID string
	Queue    string
	Limit    int
	LeasedBy string        // worker/node id, recorded on the job
	Duration time.Duration // lease length, from the database clock
}

// Outcome is what a finished attempt turns into.
type Outcome int

const (
	// OutcomeSucceeded: state succeeded, Result stored.
	OutcomeSucceeded Outcome = iota + 1
	// OutcomeFailed: error recorded; state retryable at RetryAt if attempts
	// remain (Attempt < MaxAttempts), dead otherwise.
	OutcomeFailed
	// OutcomeDead: error recorded; state dead whatever the attempts left.
	OutcomeDead
	// OutcomeSnoozed: state scheduled at now()+Delay, the attempt given back
	// (attempt decremented), no error recorded.
	OutcomeSnoozed
	// OutcomeReleased: state available at once, the attempt given back. Used
	// on shutdown for jobs that did not finish.
	OutcomeReleased
	// OutcomeCancelled: state cancelled (the handler saw its job cancelled).
	OutcomeCancelled
)

// Completion reports the end of one leased attempt.
type Completion struct {
	Lease   Lease
	Outcome Outcome
	Result  []byte        // OutcomeSucceeded: JSON or nil
	Error   string        // OutcomeFailed, OutcomeDead: the message recorded
	RetryIn time.Duration // OutcomeFailed: delay from database now() to the retry
	Delay   time.Duration // OutcomeSnoozed: delay from database now()
}

// ListParams filters a job listing. Results are ordered by id descending
// (newest first); After continues from a previous page (ids < After).
type ListParams struct {
	TenantID string
	Queue    string // "" for any
	State    string // "" for any
	Kind     string // "" for any
	Tag      string // "" for any
	Before   int64  // 0 for the first page; else only ids < Before
	Limit    int    // 0 for no limit
}

// Queue is a queue's stored settings and its job counts per state.
type Queue struct {
	TenantID string
	Name     string
	Paused   bool
	// Concurrency overrides, on every node, how many of the queue's jobs
	// run at once per node; 0 leaves each node's configured default.
	Concurrency int
	Counts      map[string]int64 // state -> count; every state present
	UpdatedAt   time.Time
}

// QueueSettings are a queue's stored settings; the zero value for a queue
// without a settings row.
type QueueSettings struct {
	Paused      bool
	Concurrency int // 0: the node's default
}

// APIKey is a stored API key. Only a hash of the secret is kept; the secret
// is shown once, when the key is created.
type APIKey struct {
	ID         string
	TenantID   string
	Name       string
	Role       string
	Prefix     string // the secret's first characters, to recognise it by
	Hash       []byte // SHA-256 of the whole secret; unique
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: not revoked
}

// RetentionParams: delete jobs finished before these ages (0 keeps them).
type RetentionParams struct {
	Succeeded time.Duration
	Cancelled time.Duration
	Dead      time.Duration
	Limit     int // rows per call
}

// Notification kinds.
const (
	// NotifyInsert: jobs became available in (TenantID, Queue).
	NotifyInsert = "insert"
	// NotifyScheduled: jobs were scheduled or made retryable; At is the
	// earliest run_at. One per write; TenantID and Queue are empty.
	NotifyScheduled = "scheduled"
	// NotifyCancel: job JobID was cancelled or discarded while running.
	NotifyCancel = "cancel"
	// NotifyQueue: queue (TenantID, Queue) was paused or resumed.
	NotifyQueue = "queue"
	// NotifyLeader: the leader resigned; others may try to lead at once.
	NotifyLeader = "leader"
	// NotifyKeys: a credential, membership or role changed (a key or a
	// refresh family revoked, a role changed); caches of them must be dropped.
	NotifyKeys = "keys"
	// NotifyResync: notifications may have been lost (the listener
	// reconnected); every consumer should re-check its state.
	NotifyResync = "resync"
)

// Notification is a wake-up delivered to every process sharing the store,
// the sender included, after the change it announces has committed. Each
// reaches a Listen function once; one may be lost when a process crashes
// or a connection drops, which is why consumers also poll (rarely) or
// re-check on NotifyResync.
type Notification struct {
	Kind     string    `json:"k"`
	TenantID string    `json:"t,omitempty"`
	Queue    string    `json:"q,omitempty"`
	JobID    int64     `json:"j,omitempty"`
	At       time.Time `json:"a,omitzero"`
	// Payload is a NotifyHub's inline payload. A string rather than bytes
	// so that a Notification stays comparable and immutable: one copy is
	// shared by every receiver.
	Payload string `json:"p,omitempty"`
	// HubRef is a NotifyHub's stored payload id, for Hub.HubPayload, when
	// the payload did not travel inline.
	HubRef int64 `json:"r,omitempty"`
}

// Store is what the engine needs from a database. Methods are safe for
// concurrent use. Times that must agree across nodes (run_at, lease expiry,
// promotion, retention) are computed with the database clock.
type Store interface {
	Access
	Hub
	Workers
	Events

	// Backend names the driver: "sqlite" or "postgres".
	Backend() string

	// Migrate applies pending embedded migrations. Open applies them unless
	// told not to.
	Migrate(ctx context.Context) error

	// Insert inserts jobs in one transaction: all or nothing. A job whose
	// RunAt (or now()+Delay) is in the future is scheduled, else available.
	// A job with a UniqueKey that matches a live job of the same tenant is
	// not inserted; its result carries the live job with Existing set. This
	// holds under any number of concurrent inserts of the same key.
	Insert(ctx context.Context, jobs []InsertParams) ([]InsertResult, error)

	// Lease moves up to Limit available jobs of a queue, in order of
	// priority, run_at, id, to running: attempt+1, a new random token,
	// lease_expires_at = now()+Duration, started_at = now(). Jobs of a paused
	// queue are not leased.
	Lease(ctx context.Context, p LeaseParams) ([]*Job, error)

	// Complete applies completions in one transaction. The returned slice
	// holds, per completion in input order, nil or ErrStaleLease. Every way
	// out of running clears the lease: token 0, no expiry, no LeasedBy.
	Complete(ctx context.Context, cs []Completion) ([]error, error)

	// Heartbeat extends the listed leases to now()+extend. It returns the
	// leases that are stale (those jobs must stop).
	Heartbeat(ctx context.Context, leases []Lease, extend time.Duration) (stale []Lease, err error)

	// SetProgress stores progress JSON on a running job (fenced).
	SetProgress(ctx context.Context, l Lease, progress []byte) error

	// Get returns one job; ErrNotFound for an unknown id or another tenant's.
	Get(ctx context.Context, tenantID string, id int64) (*Job, error)

	// List returns a page of jobs, newest first.
	List(ctx context.Context, p ListParams) ([]*Job, error)

	// Cancel moves a live job to cancelled. A running job's lease is voided
	// (its token no longer matches) and a NotifyCancel is sent. A job already
	// in a final state answers ErrConflict with the job.
	Cancel(ctx context.Context, tenantID string, id int64) (*Job, error)

	// Discard moves a live job to dead, like Cancel otherwise.
	Discard(ctx context.Context, tenantID string, id int64) (*Job, error)

	// Retry makes a dead or cancelled job available now. If its attempts are
	// used up, max_attempts becomes attempt+1 so it gets one more try. Other
	// states answer ErrConflict with the job.
	Retry(ctx context.Context, tenantID string, id int64) (*Job, error)

	// SetQueuePaused pauses or resumes a queue (creating its row if needed)
	// and sends a NotifyQueue.
	SetQueuePaused(ctx context.Context, tenantID, queue string, paused bool) error

	// SetQueueConcurrency sets a queue's per-node concurrency (0 restores
	// each node's default), creating its row if needed, and sends a
	// NotifyQueue.
	SetQueueConcurrency(ctx context.Context, tenantID, queue string, concurrency int) error

	// Queues lists a tenant's queues: those with a settings row or any job.
	Queues(ctx context.Context, tenantID string) ([]Queue, error)

	// QueueSettings reads a queue's settings; the zero value if it has no
	// settings row.
	QueueSettings(ctx context.Context, tenantID, queue string) (QueueSettings, error)

	// QueueNames lists, in no particular order, a tenant's queues that have
	// a settings row or jobs waiting to run (available, scheduled,
	// retryable): the queues a worker should serve.
	QueueNames(ctx context.Context, tenantID string) ([]string, error)

	// Delete removes a job that is not running and returns it as it was;
	// a running job answers ErrConflict (cancel it first).
	Delete(ctx context.Context, tenantID string, id int64) (*Job, error)

	// CreateAPIKey stores k. With onlyIfNone it stores k only if no key
	// exists at all, atomically across processes, and reports whether it
	// did; a first-start admin key is created exactly once.
	CreateAPIKey(ctx context.Context, k APIKey, onlyIfNone bool) (created bool, err error)

	// APIKeyByHash finds a key by the hash of its secret, revoked and
	// expired ones included (the caller decides); ErrNotFound if none.
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)

	// TouchAPIKey records that a key was used now (database clock);
	// ErrNotFound for an unknown id. Losing it in a crash is harmless.
	TouchAPIKey(ctx context.Context, id string) error

	// RevokeAPIKey ends a key of the tenant now and sends a NotifyKeys;
	// ErrNotFound for an unknown id or another tenant's, ErrConflict if it
	// is revoked already.
	RevokeAPIKey(ctx context.Context, tenantID, id string) error

	// RescueExpired turns up to limit running jobs whose lease expired into
	// retryable (at retryAt(job) from now) or dead when out of attempts,
	// recording the error "lease expired". It returns how many it moved and
	// the time from the database's now to the earliest lease expiry still
	// pending: zero if none, a small positive duration if one has already
	// expired (beyond limit, or held by a concurrent rescuer).
	RescueExpired(ctx context.Context, limit int, retryAt func(*Job) time.Duration) (n int, next time.Duration, err error)

	// PromoteScheduled makes up to limit scheduled and retryable jobs whose
	// run_at has come available, notifying their queues. It returns how many
	// and the time until the next one is due (-1 if none), from the
	// database's now.
	PromoteScheduled(ctx context.Context, limit int) (n int, next time.Duration, err error)

	// DeleteFinished deletes finished jobs older than the retention ages.
	DeleteFinished(ctx context.Context, p RetentionParams) (int, error)

	// PurgeQueue deletes every job of a queue that is not running and
	// returns how many.
	PurgeQueue(ctx context.Context, tenantID, queue string) (int, error)

	// TryLead claims or renews the leadership named name for nodeID for ttl
	// (database clock). It returns true while nodeID leads.
	TryLead(ctx context.Context, name, nodeID string, ttl time.Duration) (bool, error)

	// Resign gives up leadership if nodeID holds it, and sends NotifyLeader.
	Resign(ctx context.Context, name, nodeID string) error

	// Listen registers fn to receive every notification, from this process and
	// (on a shared database) from others. fn must not block. It may be called
	// once, before the store is used.
	Listen(fn func(Notification))

	// Now is the database clock.
	Now(ctx context.Context) (time.Time, error)

	// Ping checks the database is reachable.
	Ping(ctx context.Context) error

	// PendingMigrations counts the embedded migrations not yet applied to
	// the database; a server is not ready while any is.
	PendingMigrations(ctx context.Context) (int, error)

	// Close releases the store's resources. Idempotent.
	Close() error
}
