package switchyard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

type eventArgs struct {
	Fail bool `json:"fail,omitempty"`
}

func (eventArgs) Kind() string { return "test.event" }

// subscribe returns a subscriber of c's tenant to topic, closed when t
// ends.
func subscribe(t *testing.T, c *switchyard.Client, topic string) *switchyard.Subscriber {
	t.Helper()
	s := c.NewSubscriber()
	t.Cleanup(s.Close)
	if _, err := s.Subscribe(topic, nil); err != nil {
		t.Fatalf("subscribe to %s: %v", topic, err)
	}
	return s
}

// nextMessage returns s's next message.
func nextMessage(t *testing.T, s *switchyard.Subscriber, what string) *switchyard.Message {
	t.Helper()
	select {
	case m := <-s.C():
		return m
	case <-s.Done():
		t.Fatalf("%s: subscriber closed: %v", what, s.Err())
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	return nil
}

// jobEvent is a job event as a subscriber sees it.
type jobEvent struct {
	typ   string
	topic string
	data  switchyard.JobEventData
}

func (e jobEvent) String() string {
	return fmt.Sprintf("%s %s attempt %d", e.typ, e.data.State, e.data.Attempt)
}

func nextJobEvent(t *testing.T, s *switchyard.Subscriber, what string) jobEvent {
	t.Helper()
	m := nextMessage(t, s, what)
	e := jobEvent{typ: m.Type, topic: m.Topic}
	if err := json.Unmarshal(m.Data, &e.data); err != nil {
		t.Fatalf("%s: %s data %s: %v", what, m.Type, m.Data, err)
	}
	return e
}

// expectJobEvents reads len(want) job events from s and checks their types
// and states, in order, and that they are job's.
func expectJobEvents(t *testing.T, s *switchyard.Subscriber, job *switchyard.JobRow, want ...string) []jobEvent {
	t.Helper()
	return expectJobEventsAfter(t, s, job, "", want...)
}

// expectJobEventsAfter is expectJobEvents skipping a first event of type
// skip if one comes: a subscription made right after a change may or may
// not see its event (it is published after the commit, on its own
// goroutine), and a client that must know reads the job instead.
func expectJobEventsAfter(t *testing.T, s *switchyard.Subscriber, job *switchyard.JobRow, skip string, want ...string) []jobEvent {
	t.Helper()
	var got []jobEvent
	for i, w := range want {
		e := nextJobEvent(t, s, fmt.Sprintf("event %d (%s)", i, w))
		if i == 0 && skip != "" && e.typ == skip {
			e = nextJobEvent(t, s, fmt.Sprintf("event %d (%s)", i, w))
		}
		got = append(got, e)
		typ, state, _ := strings.Cut(w, " ")
		if e.typ != typ || e.data.State != state {
			t.Fatalf("events so far %v: want %q next", got, w)
		}
		if e.data.ID != job.ID || e.data.Queue != job.Queue || e.data.Kind != job.Kind || e.data.MaxAttempts != job.MaxAttempts {
			t.Fatalf("%s on %s = %+v, want job %s (queue %s, kind %s, max_attempts %d)", e.typ, e.topic, e.data, job.ID, job.Queue, job.Kind, job.MaxAttempts)
		}
	}
	return got
}

// A job run by a handler is announced on jobs, queue.{name} and job.{id}:
// enqueued, started, progress, succeeded, in that order.
func TestEventsJobLifecycle(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.Queues = map[string]switchyard.QueueConfig{"events": {}}
		c := open(t, cfg)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[eventArgs]) error {
			return j.SetProgress(ctx, map[string]int{"done": 1, "total": 2})
		})
		jobs := subscribe(t, c, switchyard.TopicJobs)
		q := subscribe(t, c, switchyard.QueueTopic("events"))
		job := enqueue(t, c, eventArgs{}, &switchyard.EnqueueOpts{Queue: "events", MaxAttempts: 3})
		// The job is known only now; it runs once the client starts.
		one := subscribe(t, c, switchyard.JobTopic(job.ID))
		start(t, c)

		all := []string{"job.enqueued available", "job.started running", "job.progress running", "job.succeeded succeeded"}
		for _, s := range []*switchyard.Subscriber{jobs, q} {
			got := expectJobEvents(t, s, job, all...)
			if got[0].data.Attempt != 0 || got[1].data.Attempt != 1 || got[3].data.Attempt != 1 {
				t.Errorf("attempts = %v, want 0 when enqueued, then 1", got)
			}
			if string(got[2].data.Progress) != `{"done":1,"total":2}` {
				t.Errorf("progress data = %s", got[2].data.Progress)
			}
			if got[0].data.RunAt != nil || got[0].data.Error != "" {
				t.Errorf("enqueued data = %+v, want no run_at (available now) and no error", got[0].data)
			}
		}
		expectJobEventsAfter(t, one, job, switchyard.EventJobEnqueued, all[1:]...)
	})
}

// A job enqueued scheduled is announced with its run_at.
func TestEventsScheduledEnqueue(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.ExternalKinds = []string{eventArgs{}.Kind()}
		c := open(t, cfg)
		jobs := subscribe(t, c, switchyard.TopicJobs)
		runAt := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
		job := enqueue(t, c, eventArgs{}, &switchyard.EnqueueOpts{RunAt: runAt})
		got := expectJobEvents(t, jobs, job, "job.enqueued scheduled")
		if got[0].data.RunAt == nil || !got[0].data.RunAt.Equal(runAt) {
			t.Errorf("run_at = %v, want %v", got[0].data.RunAt, runAt)
		}
	})
}

// A job that keeps failing is announced retrying after each failed attempt
// but the last, with the error and the retry time, then dead.
func TestEventsRetryingThenDead(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[eventArgs]) error {
			return fmt.Errorf("boom %d", j.Attempt)
		})
		job := enqueue(t, c, eventArgs{Fail: true}, &switchyard.EnqueueOpts{MaxAttempts: 2})
		s := subscribe(t, c, switchyard.JobTopic(job.ID))
		start(t, c)
		got := expectJobEventsAfter(t, s, job, switchyard.EventJobEnqueued, "job.started running", "job.retrying retryable", "job.started running", "job.dead dead")
		if r := got[1].data; r.Attempt != 1 || r.Error != "boom 1" || r.RunAt == nil {
			t.Errorf("retrying data = %+v, want attempt 1, error boom 1, a run_at", r)
		}
		if d := got[3].data; d.Attempt != 2 || d.Error != "boom 2" || d.RunAt != nil {
			t.Errorf("dead data = %+v, want attempt 2, error boom 2, no run_at", d)
		}
	})
}

// Cancelling a running job announces it cancelled (and not its handler's
// late outcome); retrying it announces it enqueued again; deleting it,
// deleted.
func TestEventsCancelRetryDelete(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		returned := make(chan error, 4)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[eventArgs]) error {
			<-ctx.Done()
			returned <- context.Cause(ctx)
			return context.Cause(ctx)
		})
		job := enqueue(t, c, eventArgs{}, nil)
		s := subscribe(t, c, switchyard.JobTopic(job.ID))
		start(t, c)
		expectJobEventsAfter(t, s, job, switchyard.EventJobEnqueued, "job.started running")
		if _, err := c.CancelJob(context.Background(), job.ID); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if err := wait(t, returned, "handler to see the cancel"); !errors.Is(err, switchyard.ErrJobCancelled) {
			t.Fatalf("handler's cause = %v", err)
		}
		expectJobEvents(t, s, job, "job.cancelled cancelled")

		if err := c.PauseQueue(context.Background(), "default"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.RetryJob(context.Background(), job.ID); err != nil {
			t.Fatalf("retry: %v", err)
		}
		expectJobEvents(t, s, job, "job.enqueued available")
		if _, err := c.DeleteJob(context.Background(), job.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		expectJobEvents(t, s, job, "job.deleted available")
	})
}

// Pausing and resuming a queue is announced on its topic.
func TestEventsQueuePausedResumed(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		s := subscribe(t, c, switchyard.QueueTopic("mail"))
		if err := c.PauseQueue(context.Background(), "mail"); err != nil {
			t.Fatal(err)
		}
		if err := c.ResumeQueue(context.Background(), "mail"); err != nil {
			t.Fatal(err)
		}
		for _, want := range []switchyard.QueueEventData{{Queue: "mail", Paused: true}, {Queue: "mail", Paused: false}} {
			m := nextMessage(t, s, "queue event")
			var got switchyard.QueueEventData
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatal(err)
			}
			wantType := map[bool]string{true: switchyard.EventQueuePaused, false: switchyard.EventQueueResumed}[want.Paused]
			if m.Type != wantType || got != want {
				t.Fatalf("got %s %+v, want %s %+v", m.Type, got, wantType, want)
			}
		}
	})
}

// nextWorkerEvent returns the next worker event about node id, skipping
// others'.
func nextWorkerEvent(t *testing.T, s *switchyard.Subscriber, id, what string) (string, switchyard.Worker) {
	t.Helper()
	for {
		m := nextMessage(t, s, what)
		var w switchyard.Worker
		if err := json.Unmarshal(m.Data, &w); err != nil {
			t.Fatalf("%s: %s data %s: %v", what, m.Type, m.Data, err)
		}
		if w.ID == id {
			return m.Type, w
		}
	}
}

// A client announces its node online when it starts and offline when it
// stops; Workers lists it while it runs.
func TestEventsWorkerOnlineOffline(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.NodeID = "worker-a"
		cfg.Queues = map[string]switchyard.QueueConfig{"q1": {}, "q2": {}}
		// Generous: a loaded test machine must not make it look dead.
		cfg.WorkerTimeout = time.Minute
		c := open(t, cfg)
		s := subscribe(t, c, switchyard.TopicWorkers)
		start(t, c)
		typ, w := nextWorkerEvent(t, s, "worker-a", "worker.online")
		if typ != switchyard.EventWorkerOnline || w.State != switchyard.WorkerOnline || !slices.Equal(w.Queues, []string{"q1", "q2"}) ||
			w.StartedAt.IsZero() || w.OfflineAt != nil {
			t.Fatalf("got %s %+v, want worker.online of worker-a, online, queues q1 q2", typ, w)
		}
		ws, err := c.Workers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 1 || ws[0].ID != "worker-a" || ws[0].State != switchyard.WorkerOnline {
			t.Fatalf("Workers = %+v, want worker-a online", ws)
		}
		// Another tenant's view does not list it.
		if ws, err := c.ForTenant("other").Workers(context.Background()); err != nil || len(ws) != 0 {
			t.Fatalf("Workers of another tenant = %+v, %v; want none", ws, err)
		}

		stop(t, c)
		typ, w = nextWorkerEvent(t, s, "worker-a", "worker.offline")
		if typ != switchyard.EventWorkerOffline || w.State != switchyard.WorkerOffline || w.OfflineAt == nil {
			t.Fatalf("got %s %+v, want worker.offline of worker-a, offline", typ, w)
		}
		if ws, err := c.Workers(context.Background()); err != nil || len(ws) != 0 {
			t.Fatalf("Workers after a graceful stop = %+v, %v; want none", ws, err)
		}
	})
}

// The maintenance leader declares offline a node whose heartbeats stopped
// (here, one that registered and died at once) and announces it.
func TestEventsDeadWorkerOffline(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.NodeID = "leader"
		// The leader's own heartbeats come every LeaderTTL/3 (300ms): a
		// second of silence is a dead node, not a slow one.
		cfg.WorkerTimeout = 2 * time.Second
		c := open(t, cfg)
		s := subscribe(t, c, switchyard.TopicWorkers)
		if err := switchyard.RegisterSilentNode(context.Background(), c, "ghost"); err != nil {
			t.Fatal(err)
		}
		start(t, c)
		typ, w := nextWorkerEvent(t, s, "ghost", "worker.offline of the silent node")
		if typ != switchyard.EventWorkerOffline || w.State != switchyard.WorkerOffline || w.OfflineAt == nil || w.Hostname != "ghost" {
			t.Fatalf("got %s %+v, want worker.offline of ghost", typ, w)
		}
		ws, err := c.Workers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		for _, w := range ws {
			states[w.ID] = w.State
		}
		// The leader is listed too (online, unless this machine stalled it
		// for longer than its WorkerTimeout).
		if _, ok := states["leader"]; states["ghost"] != switchyard.WorkerOffline || !ok {
			t.Fatalf("Workers = %+v, want ghost offline, and the leader", ws)
		}
	})
}

// A second node on the same PostgreSQL database sees the events of jobs the
// first one enqueues and runs.
func TestEventsCrossNode(t *testing.T) {
	t.Parallel()
	db := testdb.PostgresURL(t)
	cfg := testConfig(db)
	cfg.NodeID = "runner"
	a := open(t, cfg)
	switchyard.Handle(a, func(ctx context.Context, j *switchyard.Job[eventArgs]) error { return nil })
	cfg = testConfig(db)
	cfg.NodeID = "watcher"
	b := open(t, cfg)

	jobs := subscribe(t, b, switchyard.TopicJobs)
	workers := subscribe(t, b, switchyard.TopicWorkers)
	job := enqueue(t, a, eventArgs{}, nil)
	start(t, a)
	expectJobEvents(t, jobs, job, "job.enqueued available", "job.started running", "job.succeeded succeeded")
	if typ, _ := nextWorkerEvent(t, workers, "runner", "the runner's worker.online"); typ != switchyard.EventWorkerOnline {
		t.Fatalf("got %s, want worker.online", typ)
	}
}
