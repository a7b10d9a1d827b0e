package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// HandlerFunc runs one attempt of a job. It returns nil on success, a
// *SnoozeError to reschedule without using an attempt, a *DiscardError to end
// the job dead at once, or any other error to fail the attempt.
type HandlerFunc func(ctx context.Context, exec *Execution) error

// Kind is what the runner knows about one job kind.
type Kind struct {
	Name    string
	Handler HandlerFunc // nil for kinds handled by workers elsewhere
	// Validate checks args at enqueue, given both as the caller's value and
	// encoded; nil accepts any JSON object.
	Validate func(value any, encoded []byte) error
	// Retry computes backoff for this kind; nil uses the runner's default.
	Retry RetryPolicy
	// Timeout applies when a job has none of its own; 0 means none.
	Timeout time.Duration
}

// Registry maps kind names to kinds. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]*Kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]*Kind{}} }

// Add registers k, replacing any kind of the same name.
func (r *Registry) Add(k *Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds[k.Name] = k
}

// Lookup returns the kind named name, or nil.
func (r *Registry) Lookup(name string) *Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kinds[name]
}

// RetryPolicy decides how long a failed attempt waits before the next.
type RetryPolicy interface {
	// NextRetry returns the delay after attempt (1-based) failed.
	NextRetry(attempt int) time.Duration
}

// ExponentialBackoff is exponential backoff with full jitter: the delay after
// attempt n is uniformly random in [0, min(Max, Base·2^(n-1))]. Full jitter
// spreads retries of jobs that failed together (an outage) instead of
// stampeding the recovered dependency in lockstep.
type ExponentialBackoff struct {
	Base time.Duration // default 1s
	Max  time.Duration // default 1h
}

// NextRetry implements RetryPolicy.
func (b ExponentialBackoff) NextRetry(attempt int) time.Duration {
	base, ceiling := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if ceiling <= 0 {
		ceiling = time.Hour
	}
	limit := ceiling
	if attempt < 1 {
		attempt = 1
	}
	if attempt-1 < 62 {
		if d := base << (attempt - 1); d > 0 && d < ceiling && d>>(attempt-1) == base {
			limit = d
		}
	}
	return rand.N(limit + 1)
}

// SnoozeError reschedules a job Delay from now without using an attempt.
type SnoozeError struct{ Delay time.Duration }

func (e *SnoozeError) Error() string { return fmt.Sprintf("snooze for %s", e.Delay) }

// RetryAfterError fails the attempt like any error, but the retry (if
// attempts remain) waits Delay instead of the retry policy's backoff: for a
// remote service that said when to come back (HTTP Retry-After).
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("retry after %s", e.Delay)
	}
	return e.Err.Error()
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// DiscardError ends a job dead at once, recording Err.
type DiscardError struct{ Err error }

func (e *DiscardError) Error() string {
	if e.Err == nil {
		return "discarded"
	}
	return e.Err.Error()
}

func (e *DiscardError) Unwrap() error { return e.Err }

// Why a job's context was cancelled by the runner rather than by its handler.
var (
	errJobCancelled = errors.New("job cancelled")
	errShutdown     = errors.New("worker shutting down")
	errLeaseLost    = errors.New("lease lost: the job was rescued or re-leased elsewhere")
)

// ErrJobCancelled is the context cause a handler sees when its job was
// cancelled or discarded while running.
var ErrJobCancelled = errJobCancelled

// ErrShutdown is the context cause a handler sees when the worker's graceful
// shutdown deadline passed; the job will be released to run again.
var ErrShutdown = errShutdown

// ErrLeaseLost is the context cause a handler sees when a heartbeat found its
// lease stale; its outcome will not be recorded.
var ErrLeaseLost = errLeaseLost

// Execution is one running attempt, handed to the handler.
type Execution struct {
	Job    *store.Job
	Result []byte // set by the handler; recorded on success
	store  store.Store
	r      *Runner // nil outside a runner
}

// Lease returns the attempt's fencing lease.
func (e *Execution) Lease() store.Lease {
	return store.Lease{JobID: e.Job.ID, Attempt: e.Job.Attempt, Token: e.Job.LeaseToken}
}

// SetProgress stores progress JSON on the job at once.
func (e *Execution) SetProgress(ctx context.Context, progress []byte) error {
	progress = store.CleanJSON(progress)
	if err := e.store.SetProgress(ctx, e.Lease(), progress); err != nil {
		return err
	}
	e.Job.Progress = progress
	if e.r != nil {
		ev := JobEvent(EventJobProgress, e.Job)
		ev.Progress = progress
		e.r.emit(ev)
	}
	return nil
}

// Len reports how many kinds have a handler in this process.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, k := range r.kinds {
		if k.Handler != nil {
			n++
		}
	}
	return n
}
