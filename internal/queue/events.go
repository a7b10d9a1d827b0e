package queue

import (
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Lifecycle event types (DESIGN.md § Events the system emits). The runner
// emits the job events of the attempts it runs and rescues, and the worker
// events of its node and of the nodes its leader finds dead; the client
// emits the rest (enqueues, management).
const (
	EventJobEnqueued   = "job.enqueued"
	EventJobStarted    = "job.started"
	EventJobProgress   = "job.progress"
	EventJobSucceeded  = "job.succeeded"
	EventJobRetrying   = "job.retrying"
	EventJobDead       = "job.dead"
	EventJobCancelled  = "job.cancelled"
	EventJobDeleted    = "job.deleted"
	EventQueuePaused   = "queue.paused"
	EventQueueResumed  = "queue.resumed"
	EventWorkerOnline  = "worker.online"
	EventWorkerOffline = "worker.offline"
)

// Event is one lifecycle change that has committed. Job events fill the job
// fields, queue events Queue, worker events Node. Small by design: no args,
// results or error histories.
type Event struct {
	Type     string
	TenantID string

	JobID       int64
	Queue       string
	Kind        string
	State       string
	Attempt     int
	MaxAttempts int
	Error       string    // job.retrying, job.dead: the attempt's error
	RunAt       time.Time // job.retrying, and jobs enqueued scheduled
	Progress    []byte    // job.progress: JSON

	Node *store.NodeInfo // worker events
}

// JobEvent returns the event of type typ for job j as it is now.
func JobEvent(typ string, j *store.Job) Event {
	return Event{
		Type: typ, TenantID: j.TenantID, JobID: j.ID, Queue: j.Queue, Kind: j.Kind,
		State: j.State, Attempt: j.Attempt, MaxAttempts: j.MaxAttempts,
	}
}

// EventSink takes the lifecycle events the runner commits, in the order the
// changes happened, and publishes them. Its methods run on the job path and
// must never block.
type EventSink interface {
	// Add queues events that have committed.
	Add(evs ...Event)
	// Hold reserves the place of events about to be committed, before the
	// write that commits them, so that they keep their order with what
	// that write makes happen next (a job enqueued is published before it
	// starts, even though a worker may start it before the enqueuer hears
	// of the commit). The returned function must be called exactly once,
	// with the events once committed, or nil if the write failed.
	Hold() (release func(evs []Event))
}

func (r *Runner) emit(evs ...Event) {
	if r.cfg.Events != nil && len(evs) > 0 {
		r.cfg.Events.Add(evs...)
	}
}

func (r *Runner) holdEvents() func([]Event) {
	if r.cfg.Events == nil {
		return func([]Event) {}
	}
	return r.cfg.Events.Hold()
}

// outcomeEvent is the event a recorded completion announces, if any: the
// attempt's end. Snoozes and releases give the attempt back and are not
// announced.
func outcomeEvent(j *store.Job, c *store.Completion, now time.Time) (Event, bool) {
	ev := JobEvent("", j)
	switch c.Outcome {
	case store.OutcomeSucceeded:
		ev.Type, ev.State = EventJobSucceeded, store.StateSucceeded
	case store.OutcomeFailed:
		if j.Attempt < j.MaxAttempts {
			// The store computes run_at from its own now; the process clock
			// is close enough for a live event.
			ev.Type, ev.State, ev.RunAt = EventJobRetrying, store.StateRetryable, now.Add(c.RetryIn)
		} else {
			ev.Type, ev.State = EventJobDead, store.StateDead
		}
		ev.Error = c.Error
	case store.OutcomeDead:
		ev.Type, ev.State, ev.Error = EventJobDead, store.StateDead, c.Error
	default:
		return ev, false
	}
	return ev, true
}

// CompletionEvent is the event a remote worker's recorded completion
// announces, if any, for job j as it was while running.
func CompletionEvent(j *store.Job, c store.Completion) (Event, bool) {
	return outcomeEvent(j, &c, time.Now())
}
